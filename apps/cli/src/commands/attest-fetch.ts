import { basename, join, resolve } from 'node:path';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { TresorError } from '@tresor/protocol';
import { SNP_PRODUCTS, type SnpProduct, type TeeKind } from '@tresor/attestation';
import {
  fetchNvidiaRim,
  fetchSnpCollateral,
  fetchTdxCollateral,
  type CollateralEndpoints,
  type CollateralFetchEvent,
  type CollateralFetchOptions,
  type FetchedCollateral,
  type FetchedCollateralFile,
} from '@tresor/attestation/node';
import type { CliIo } from '../io.js';
import { parseTeeKind, readInputFile } from './attest-inputs.js';

/**
 * `tresor attest fetch`: fills a directory with the collateral `tresor attest verify` takes, from
 * AMD KDS, Intel PCS or the NVIDIA RIM service, reusing what is there while it is still valid
 * (issue #4). The only attestation command that uses the network; nothing it fetches is trusted
 * until `attest verify` has checked it against the pinned vendor roots.
 */

interface FetchFlags {
  readonly tee?: string;
  readonly report?: string;
  readonly quote?: string;
  readonly rimId?: readonly string[];
  readonly out: string;
  readonly product?: SnpProduct;
  readonly crl: boolean;
  readonly refresh?: boolean;
  readonly kdsUrl?: string;
  readonly pcsUrl?: string;
  readonly intelRootCaCrlUrl?: string;
  readonly rimUrl?: string;
  readonly timeout?: number;
  readonly retries?: number;
  readonly json?: boolean;
}

/** Service URL flags, the environment variables that stand in for them, and the endpoint they set. */
const SERVICE_FLAGS = [
  { key: 'kdsUrl', flag: '--kds-url', env: 'TRESOR_AMD_KDS_URL', endpoint: 'amdKds' },
  { key: 'pcsUrl', flag: '--pcs-url', env: 'TRESOR_INTEL_PCS_URL', endpoint: 'intelPcs' },
  {
    key: 'intelRootCaCrlUrl',
    flag: '--intel-root-ca-crl-url',
    env: 'TRESOR_INTEL_ROOT_CA_CRL_URL',
    endpoint: 'intelRootCaCrl',
  },
  { key: 'rimUrl', flag: '--rim-url', env: 'TRESOR_NVIDIA_RIM_URL', endpoint: 'nvidiaRim' },
] as const satisfies readonly {
  key: keyof FetchFlags;
  flag: string;
  env: string;
  endpoint: keyof CollateralEndpoints;
}[];

/** What `--json` prints. */
export interface AttestFetchOutput {
  readonly tee: 'snp' | 'tdx' | 'nvidia';
  readonly files: readonly {
    readonly role: FetchedCollateralFile['role'];
    readonly path: string;
    readonly source: 'network' | 'cache';
    readonly url: string;
    readonly validUntil: string | null;
    readonly current: boolean;
  }[];
  readonly notes: readonly string[];
  /** The `tresor attest verify` command line for these files, or null where there is none (RIMs). */
  readonly verify: readonly string[] | null;
}

export function registerAttestFetch(attest: Command, io: CliIo): void {
  attest
    .command('fetch')
    .description(
      'fetch the collateral `attest verify` needs (AMD KDS, Intel PCS, NVIDIA RIM service) into a directory that caches it',
    )
    .addOption(new Option('--tee <kind>', 'snp, tdx or nvidia (default: from --report, --quote or --rim-id)'))
    .option('--report <file>', 'SEV-SNP report (raw, hex, Azure HCL report or az-snp-vtpm JSON)')
    .option('--quote <file>', 'TDX quote (raw or hex)')
    .option('--rim-id <id>', 'NVIDIA RIM ID, e.g. NV_GPU_DRIVER_GH100_550.90.07 (repeatable)', collect)
    .requiredOption('--out <dir>', 'directory to write to; files in it still valid are reused')
    .option(
      '--product <name>',
      `SEV-SNP: processor product (${SNP_PRODUCTS.join(', ')}) for version-2 reports`,
      parseProduct,
    )
    .option('--no-crl', 'SEV-SNP: do not fetch the AMD CRL')
    .option('--refresh', 'fetch again even what the directory holds and is still valid')
    .option('--kds-url <url>', 'AMD KDS base URL (env TRESOR_AMD_KDS_URL; default https://kdsintf.amd.com)')
    .option(
      '--pcs-url <url>',
      'Intel PCS v4 or PCCS base URL (env TRESOR_INTEL_PCS_URL; default https://api.trustedservices.intel.com)',
    )
    .option(
      '--intel-root-ca-crl-url <url>',
      "Intel SGX Root CA CRL URL (env TRESOR_INTEL_ROOT_CA_CRL_URL; default: the root certificate's CRL distribution point)",
    )
    .option(
      '--rim-url <url>',
      'NVIDIA RIM service base URL (env TRESOR_NVIDIA_RIM_URL; default https://rim.attestation.nvidia.com)',
    )
    .option('--timeout <seconds>', 'per request attempt (default 30)', parseSeconds)
    .option('--retries <n>', 'further attempts after a network error, 429 or 5xx (default 3)', parseCount)
    .option('--json', 'print {"tee","files","notes","verify"} as JSON')
    .addHelpText(
      'after',
      `
Examples:
  tresor attest fetch --report report.bin --out collateral/
  tresor attest fetch --quote quote.bin --out collateral/
  tresor attest fetch --rim-id NV_GPU_DRIVER_GH100_550.90.07 --out collateral/

Exit codes: 0 fetched (or reused), 1 a service failed or refused (COLLATERAL_*), 2 unusable input or flags.
Docs: docs/attestation.md#fetching-collateral`,
    )
    .action(async (flags: FetchFlags) => {
      const output = await attestFetch(flags, io);
      io.stdout.write(
        flags.json === true ? `${JSON.stringify(output, null, 2)}\n` : renderAttestFetch(output),
      );
    });
}

/** Runs the fetch the flags ask for; throws TresorError for unusable flags and failed fetches. */
export async function attestFetch(flags: FetchFlags, io: CliIo): Promise<AttestFetchOutput> {
  const tee = teeOf(flags);
  const progress = fetchProgress(io);
  const options: CollateralFetchOptions = {
    directory: resolve(io.cwd, flags.out),
    endpoints: endpoints(flags, io),
    refresh: flags.refresh === true,
    now: () => io.now(),
    onProgress: progress.show,
    ...(flags.timeout === undefined ? {} : { timeoutMs: flags.timeout * 1000 }),
    ...(flags.retries === undefined ? {} : { retries: flags.retries }),
  };
  try {
    if (tee === 'snp') {
      const report = readInputFile(io, flags.report!, '--report');
      const fetched = await fetchSnpCollateral(report, {
        ...options,
        crl: flags.crl,
        ...(flags.product === undefined ? {} : { product: flags.product }),
      });
      return described(fetched, flags, snpVerifyLine(fetched, flags));
    }
    if (tee === 'tdx') {
      const fetched = await fetchTdxCollateral(readInputFile(io, flags.quote!, '--quote'), options);
      const collateral = fetched.files[0]!;
      return described(fetched, flags, [
        ...['tresor', 'attest', 'verify', '--tee', 'tdx', '--quote', flags.quote!],
        ...['--collateral', shown(collateral, flags)],
      ]);
    }
    const results: FetchedCollateral[] = [];
    for (const id of flags.rimId!) results.push(await fetchNvidiaRim(id, options));
    const merged: FetchedCollateral = {
      tee: 'nvidia',
      files: results.flatMap((r) => r.files),
      notes: [...new Set(results.flatMap((r) => r.notes))],
    };
    return described(merged, flags, null);
  } finally {
    progress.finish();
  }
}

/** The TEE from --tee or from the one input given; refuses none, several, or a mismatch. */
function teeOf(flags: FetchFlags): 'snp' | 'tdx' | 'nvidia' {
  const inputs: ['snp' | 'tdx' | 'nvidia', string][] = [];
  if (flags.report !== undefined) inputs.push(['snp', '--report']);
  if (flags.quote !== undefined) inputs.push(['tdx', '--quote']);
  if (flags.rimId !== undefined) inputs.push(['nvidia', '--rim-id']);
  const named: TeeKind | undefined = flags.tee === undefined ? undefined : parseTeeKind(flags.tee);
  if (named === 'sample') {
    throw new TresorError(
      'USAGE_INVALID',
      'the sample TEE has no vendor collateral to fetch; its key is written by `tresor up`',
    );
  }
  const [input, ...more] = inputs;
  if (input === undefined || more.length > 0) {
    throw new TresorError(
      'USAGE_INVALID',
      'give exactly one of --report (SEV-SNP), --quote (TDX) or --rim-id (NVIDIA), and --out <dir>',
    );
  }
  if (named !== undefined && named !== input[0]) {
    throw new TresorError('USAGE_INVALID', `${input[1]} is ${input[0]} input, not input for --tee ${named}`);
  }
  if (input[0] !== 'snp' && (flags.product !== undefined || !flags.crl)) {
    throw new TresorError('USAGE_INVALID', '--product and --no-crl apply to SEV-SNP (--report) only');
  }
  return input[0];
}

/** Flags win over the environment, which wins over the defaults. */
function endpoints(flags: FetchFlags, io: CliIo): Partial<CollateralEndpoints> {
  const chosen: Partial<Record<keyof CollateralEndpoints, string>> = {};
  for (const { key, env, endpoint } of SERVICE_FLAGS) {
    const value = flags[key] ?? io.env[env];
    if (value !== undefined && value !== '') chosen[endpoint] = value;
  }
  return chosen;
}

function snpVerifyLine(fetched: FetchedCollateral, flags: FetchFlags): string[] {
  const line = ['tresor', 'attest', 'verify', '--tee', 'snp', '--report', flags.report!];
  const signer = fetched.files.find((f) => f.role === 'signer_cert');
  // A VLEK is never on KDS: the user supplies the one the cloud provider handed out.
  line.push('--signer-cert', signer === undefined ? '<VLEK from the cloud provider>' : shown(signer, flags));
  for (const file of fetched.files) {
    if (file.role === 'ca_chain') line.push('--ca-chain', shown(file, flags));
    if (file.role === 'crl') line.push('--crl', shown(file, flags));
  }
  if (flags.product !== undefined) line.push('--product', flags.product);
  return line;
}

/** A file's path as the user would type it: under --out as given. */
function shown(file: FetchedCollateralFile, flags: FetchFlags): string {
  return join(flags.out, basename(file.path));
}

function described(
  fetched: FetchedCollateral,
  flags: FetchFlags,
  verify: string[] | null,
): AttestFetchOutput {
  return {
    tee: fetched.tee,
    files: fetched.files.map((f) => ({
      role: f.role,
      path: shown(f, flags),
      source: f.source,
      url: f.url,
      validUntil: f.validUntil?.toISOString() ?? null,
      current: f.current,
    })),
    notes: fetched.notes,
    verify,
  };
}

/** The readable report: one line per file, the notes, and the command that verifies with them. */
export function renderAttestFetch(output: AttestFetchOutput): string {
  const width = Math.max(...output.files.map((f) => f.path.length));
  const lines = output.files.map((f) => {
    const until = f.validUntil === null ? 'no stated expiry' : `valid until ${f.validUntil}`;
    const origin = f.source === 'cache' ? 'reused' : 'fetched';
    return `${origin.padEnd(7)}  ${f.role.padEnd(11)}  ${f.path.padEnd(width)}  ${until}`;
  });
  for (const note of output.notes) lines.push(`note: ${note}`);
  if (output.verify !== null) lines.push('verify with:', `  ${output.verify.map(shellWord).join(' ')}`);
  return `${lines.join('\n')}\n`;
}

/** Quotes a word for POSIX shells when it needs it, so the printed command can be pasted. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** One status line on a terminal (which document, which attempt, why it waits); nothing otherwise. */
function fetchProgress(io: CliIo): { show: (event: CollateralFetchEvent) => void; finish: () => void } {
  if (io.stderr.isTTY !== true) return { show: () => undefined, finish: () => undefined };
  let drawn = false;
  const draw = (text: string): void => {
    io.stderr.write(`\r\x1b[2K${text}`);
    drawn = true;
  };
  return {
    show: (event) => {
      if (event.type === 'request')
        draw(`fetching ${event.what}${event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}…`);
      else if (event.type === 'retry')
        draw(`${event.what}: ${event.reason}, retrying in ${Math.ceil(event.delayMs / 1000)} s…`);
      else if (event.type === 'cached') draw(`${event.what}: still valid in ${event.path}`);
    },
    finish: () => {
      if (drawn) io.stderr.write('\r\x1b[2K');
      drawn = false;
    },
  };
}

function collect(value: string, previous: readonly string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function parseProduct(text: string): SnpProduct {
  const product = SNP_PRODUCTS.find((p) => p.toLowerCase() === text.toLowerCase());
  if (product === undefined) throw new InvalidArgumentError(`expected one of ${SNP_PRODUCTS.join(', ')}`);
  return product;
}

function parseSeconds(text: string): number {
  const seconds = Number(text);
  if (!/^\d+$/.test(text) || seconds < 1 || seconds > 600) {
    throw new InvalidArgumentError('expected whole seconds from 1 to 600');
  }
  return seconds;
}

function parseCount(text: string): number {
  if (!/^\d{1,2}$/.test(text)) throw new InvalidArgumentError('expected a whole number from 0 to 99');
  return Number(text);
}
