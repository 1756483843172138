/**
 * Attestation verification rate per core, against the physical floor measured in the same run
 * (issue #4): one ECDSA P-384 verify per SEV-SNP report; per TDX quote two ECDSA P-256 verifies
 * (quote signature by the attestation key, QE report by the PCK key), of which a warm cache keeps
 * the second (the QE report is the same for every quote of a platform).
 *
 *   npm run bench:attestation                   (tsc -b && tsx bench/attestation.ts)
 *   BENCH_SECONDS=1 npm run bench:attestation   (shorter rows)
 *
 * Each verifier runs with both SignatureVerifiers: `node:crypto` (what servers and the CLI use, via
 * `@tresor/attestation/node`) and WebCrypto (the default, what browsers use). Rates are
 * verifications per CPU-second of this process (all threads: WebCrypto runs its work on the libuv
 * pool), i.e. per core, comparable with `openssl speed` (one core). The run is split into
 * BENCH_ROUNDS rounds (default 9): each runs `openssl speed -seconds 1`, then every case for its
 * share of BENCH_SECONDS; a case's ratio is the median over rounds of its rate over its own round's
 * openssl rate, so background load that drifts during the run affects both sides alike. Targets
 * with cached chains: SNP >= 0.9x the openssl P-384 verify rate, TDX >= 0.4x the P-256 rate.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import {
  createSnpVerifier,
  createTdxVerifier,
  webCryptoSignatureVerifier,
  type SignatureVerifier,
  type SnpEndorsements,
  type TdxEndorsements,
  type VerificationResult,
  type Verifier,
} from '@tresor/attestation';
import { nodeSignatureVerifier } from '@tresor/attestation/node';

const SECONDS = Number(process.env.BENCH_SECONDS ?? '3');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? '9');
const TESTDATA = fileURLToPath(new URL('../../shared/testdata/attestation/', import.meta.url));
const read = (rel: string): Uint8Array => new Uint8Array(readFileSync(TESTDATA + rel));

interface Rate {
  readonly perCpuSecond: number;
  readonly perWallSecond: number;
}

interface Floor {
  readonly p256: number;
  readonly p384: number;
}

/** `openssl speed -seconds N ecdsap384 ecdsap256`: verify/s per curve (one core). */
function opensslEcdsaVerifyRates(seconds: number): Floor {
  const result = spawnSync('openssl', ['speed', '-seconds', String(seconds), 'ecdsap384', 'ecdsap256'], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`openssl speed failed: ${result.stderr}`);
  const rate = (curve: string): number => {
    // " 256 bits ecdsa (nistp256)   0.0000s   0.0001s  52565.6  16849.2": the last column is verify/s.
    const row = result.stdout.split('\n').find((l) => l.includes(`ecdsa (${curve})`));
    const verify = Number(row?.trim().split(/\s+/).at(-1));
    if (!Number.isFinite(verify) || verify <= 0)
      throw new Error(`unexpected openssl speed output:\n${result.stdout}`);
    return verify;
  };
  return { p256: rate('nistp256'), p384: rate('nistp384') };
}

async function measure(once: () => Promise<boolean>, seconds: number): Promise<Rate> {
  const warmUntil = performance.now() + Math.min(200, seconds * 100);
  while (performance.now() < warmUntil) await once(); // warm-up: JIT, caches
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  let count = 0;
  let elapsed = 0;
  while (elapsed < seconds) {
    if (!(await once())) throw new Error('a verification failed during the bench');
    count++;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  }
  const used = process.cpuUsage(cpu);
  return { perCpuSecond: count / ((used.user + used.system) / 1e6), perWallSecond: count / elapsed };
}

/** One parse + verify of real evidence, checked valid. */
function verification<R, E>(
  verifier: Verifier<R, E>,
  evidence: Uint8Array,
  endorsements: E,
  now: Date,
): () => Promise<boolean> {
  return async () => {
    const result: VerificationResult = await verifier.verify(verifier.parse(evidence), endorsements, { now });
    if (!result.valid) throw new Error(`verification failed during the bench: ${result.error}`);
    return true;
  };
}

/** One signature check alone through `signatures`, key imported once: a verifier's ceiling. */
async function signatureAlone(
  signatures: SignatureVerifier,
  namedCurve: 'P-256' | 'P-384',
  messageLength: number,
): Promise<() => Promise<boolean>> {
  const hash = namedCurve === 'P-256' ? 'SHA-256' : 'SHA-384';
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve }, true, ['sign', 'verify']);
  const message = new Uint8Array(messageLength);
  const signature = new Uint8Array(
    await crypto.subtle.sign({ name: 'ECDSA', hash }, keys.privateKey, message),
  );
  const spki = new Uint8Array(await crypto.subtle.exportKey('spki', keys.publicKey));
  const key = await signatures.importPublicKey(spki, { name: 'ECDSA', namedCurve });
  if (key === undefined) throw new Error('the reference key does not import');
  const algorithm = { name: 'ECDSA', hash, encoding: 'ieee-p1363' } as const;
  return () => signatures.verify(key, algorithm, signature, message);
}

const fmt = (n: number, digits = 0): string => n.toFixed(digits);
const median = (values: readonly number[]): number => [...values].sort((a, b) => a - b)[values.length >> 1]!;

interface Case {
  readonly name: string;
  readonly once: () => Promise<boolean>;
  readonly curve: 'P-256' | 'P-384';
  readonly target: number | null;
  /** Index of the case that checks one signature of this curve alone, with the same implementation. */
  readonly alone?: number;
}

async function main(): Promise<void> {
  const snpDir = 'snp/azure-genoa-v3/';
  const snpEvidence = read(`${snpDir}report.bin`);
  const snpEndorsements: SnpEndorsements = {
    signerCert: read(`${snpDir}vcek.pem`),
    caChain: read(`${snpDir}ask_ark.pem`),
  };
  const snpAt = new Date('2025-06-01T00:00:00Z');
  const tdxDir = 'tdx/dcap-qvl-v4-uptodate/';
  const tdxEvidence = read(`${tdxDir}quote.bin`);
  const tdxEndorsements: TdxEndorsements = { collateral: read(`${tdxDir}collateral.json`) };
  const tdxAt = new Date('2025-07-01T00:00:00Z');
  const implementations: readonly [string, SignatureVerifier, boolean][] = [
    ['node:crypto', nodeSignatureVerifier, true],
    ['WebCrypto', webCryptoSignatureVerifier, false],
  ];

  const cases: Case[] = [];
  const alone = new Map<string, number>();
  for (const [label, signatures] of implementations) {
    alone.set(`${label} P-384`, cases.length).set(`${label} P-256`, cases.length + 1);
    cases.push(
      {
        name: `reference: ${label} ECDSA P-384 verify alone`,
        once: await signatureAlone(signatures, 'P-384', 672),
        curve: 'P-384',
        target: null,
      },
      {
        name: `reference: ${label} ECDSA P-256 verify alone`,
        once: await signatureAlone(signatures, 'P-256', 632),
        curve: 'P-256',
        target: null,
      },
    );
  }
  for (const cached of [true, false]) {
    for (const [label, signatures, targeted] of implementations) {
      const snp = createSnpVerifier(cached ? { signatures } : { signatures, chainCache: null });
      const tdx = createTdxVerifier(cached ? { signatures } : { signatures, cache: null });
      const how = cached ? 'cached' : 'uncached';
      cases.push(
        {
          name: `SEV-SNP report (Genoa, VCEK), chain ${how}, ${label}`,
          once: verification(snp, snpEvidence, snpEndorsements, snpAt),
          curve: 'P-384',
          target: cached && targeted ? 0.9 : null,
          alone: alone.get(`${label} P-384`)!,
        },
        {
          name: `TDX quote v4 + collateral, ${how}, ${label}`,
          once: verification(tdx, tdxEvidence, tdxEndorsements, tdxAt),
          curve: 'P-256',
          target: cached && targeted ? 0.4 : null,
          alone: alone.get(`${label} P-256`)!,
        },
      );
    }
  }

  // Rounds: openssl, then every case for its share of the time. Each case's ratio is taken against
  // the openssl figure of its own round, so load that drifts during the run affects both sides.
  const floors: Floor[] = [];
  const rates = cases.map((): Rate[] => []);
  const ratios = cases.map((): number[] => []);
  for (let round = 0; round < ROUNDS; round++) {
    const floor = opensslEcdsaVerifyRates(1);
    floors.push(floor);
    for (const [i, c] of cases.entries()) {
      const rate = await measure(c.once, SECONDS / ROUNDS);
      rates[i]!.push(rate);
      ratios[i]!.push(rate.perCpuSecond / (c.curve === 'P-256' ? floor.p256 : floor.p384));
    }
  }

  console.log(
    `attestation verification, ${SECONDS} s per case in ${ROUNDS} rounds; ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}; ` +
      `load at the end ${loadavg()
        .map((l) => l.toFixed(2))
        .join(' ')}`,
  );
  console.log(
    `node ${process.version}, OpenSSL ${process.versions.openssl}; openssl speed -seconds 1 ecdsap384 ecdsap256 per round: ` +
      `P-384 verify/s ${floors.map((f) => fmt(f.p384)).join(', ')}; P-256 verify/s ${floors.map((f) => fmt(f.p256)).join(', ')}`,
  );
  console.log('');
  console.log(
    '| case | verifications/CPU-s (median) | wall/s (1 in flight) | ratio to openssl verify/s (median, per-round range) | vs one signature check alone, same implementation | target |',
  );
  console.log('|---|---:|---:|---:|---:|---|');
  for (const [i, c] of cases.entries()) {
    const ratio = median(ratios[i]!);
    const digits = ratio < 0.1 ? 3 : 2;
    const range = `${fmt(Math.min(...ratios[i]!), digits)}–${fmt(Math.max(...ratios[i]!), digits)}`;
    const verdict = c.target === null ? '-' : `>= ${c.target}x ${ratio >= c.target ? 'met' : 'MISSED'}`;
    // Per round, against the signature check alone measured moments before: the share of a
    // verification's CPU time that is the signature itself (the rest is parsing, checks, claims).
    const share =
      c.alone === undefined
        ? '-'
        : fmt(
            median(rates[i]!.map((r, round) => r.perCpuSecond / rates[c.alone!]![round]!.perCpuSecond)),
            digits,
          );
    console.log(
      `| ${c.name} | ${fmt(median(rates[i]!.map((r) => r.perCpuSecond)))} | ${fmt(median(rates[i]!.map((r) => r.perWallSecond)))} | ${fmt(ratio, digits)}x ${c.curve} (${range}) | ${share} | ${verdict} |`,
    );
  }
}

await main();
