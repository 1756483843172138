import { readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { utf8Decode } from '@tresor/crypto';
import type { AttestationFiles, AttestationRole, TeeKind } from '@tresor/attestation';
import type { CliIo } from '../io.js';

/** Files larger than this are no attestation input (the largest real one, an 8-GPU list, is ~120 KiB). */
const MAX_INPUT_FILE = 16 << 20;

/** The `tresor attest verify` flags that name files, by role (testdata `inputs` names). */
export const FILE_FLAGS: readonly {
  readonly role: AttestationRole;
  readonly flag: string;
  readonly help: string;
}[] = [
  {
    role: 'report',
    flag: '--report <file>',
    help: 'SEV-SNP report: raw, hex, Azure HCL report or az-snp-vtpm JSON',
  },
  { role: 'quote', flag: '--quote <file>', help: 'TDX quote: raw or hex' },
  {
    role: 'evidence',
    flag: '--evidence <file>',
    help: 'NVIDIA GPU evidence (hex report or JSON list) or sample evidence',
  },
  { role: 'signer_cert', flag: '--signer-cert <file>', help: 'SEV-SNP: the VCEK or VLEK (PEM or DER)' },
  {
    role: 'ca_chain',
    flag: '--ca-chain <file>',
    help: 'SEV-SNP: ASK/ASVK + ARK (PEM or DER; default: pinned AMD roots)',
  },
  { role: 'crl', flag: '--crl <file>', help: 'SEV-SNP: an AMD CRL to check the chain against' },
  {
    role: 'collateral',
    flag: '--collateral <file>',
    help: 'TDX: collateral JSON (TCB info, QE identity, CRLs)',
  },
  {
    role: 'intel_root_ca',
    flag: '--intel-root-ca <file>',
    help: 'TDX: Intel SGX Root CA (must equal the pinned one)',
  },
  {
    role: 'cert_chain',
    flag: '--cert-chain <file>',
    help: 'NVIDIA: device certificate chain (PEM) for a hex report',
  },
  {
    role: 'nvidia_device_root',
    flag: '--nvidia-device-root <file>',
    help: 'NVIDIA: device identity root (must equal the pinned one)',
  },
  {
    role: 'sample_key',
    flag: '--sample-key <file>',
    help: "sample TEE: the installation's public key (JWK or hex)",
  },
];

/** camelCase option name commander gives a role's flag (`signer_cert` → `signerCert`). */
export function optionKey(role: AttestationRole): string {
  return role.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Reads a file named on the command line; INPUT_UNREADABLE names the flag and path. */
export function readInputFile(io: CliIo, path: string, flag: string): Uint8Array {
  const full = resolve(io.cwd, path);
  try {
    const size = statSync(full).size;
    if (size > MAX_INPUT_FILE) {
      throw new TresorError(
        'INPUT_MALFORMED',
        `${flag} ${path} is ${size} bytes; attestation inputs are far smaller`,
      );
    }
    return new Uint8Array(readFileSync(full));
  } catch (cause) {
    if (cause instanceof TresorError) throw cause;
    throw new TresorError('INPUT_UNREADABLE', `cannot read ${flag} ${path}`, { cause });
  }
}

/** Reads every file flag that was given. */
export function readAttestationFiles(
  io: CliIo,
  options: Readonly<Record<string, unknown>>,
): AttestationFiles {
  const files: Partial<Record<AttestationRole, Uint8Array>> = {};
  for (const { role, flag } of FILE_FLAGS) {
    const path = options[optionKey(role)];
    if (typeof path === 'string') files[role] = readInputFile(io, path, flag.split(' ')[0]!);
  }
  return files;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$/;

/** Parses an RFC 3339 date-time (§5.6: offset required); USAGE_INVALID otherwise. */
export function parseRfc3339(text: string, flag: string): Date {
  const date = new Date(text);
  if (!RFC3339.test(text) || Number.isNaN(date.getTime())) {
    throw new TresorError(
      'USAGE_INVALID',
      `${flag} must be an RFC 3339 time such as 2025-06-01T00:00:00Z, not "${text}"`,
    );
  }
  return date;
}

const TEE_KINDS: readonly TeeKind[] = ['snp', 'tdx', 'nvidia', 'sample'];

export function parseTeeKind(text: string): TeeKind {
  const tee = TEE_KINDS.find((k) => k === text);
  if (tee === undefined) {
    throw new TresorError(
      'ATTESTATION_TEE_UNSUPPORTED',
      `--tee ${text} is not a TEE kind Tresor verifies (${TEE_KINDS.join(', ')})`,
    );
  }
  return tee;
}

/** Reads a JSON file (runtime data); INPUT_MALFORMED when it is not JSON. */
export function readJsonFile(io: CliIo, path: string, flag: string): unknown {
  const bytes = readInputFile(io, path, flag);
  try {
    return JSON.parse(utf8Decode(bytes)) as unknown;
  } catch (cause) {
    throw new TresorError('INPUT_MALFORMED', `${flag} ${path} is not UTF-8 JSON`, { cause });
  }
}
