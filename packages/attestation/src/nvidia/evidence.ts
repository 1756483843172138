import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { base64ToBytes, hexToBytes, utf8Decode } from '@tresor/crypto';
import { parseCertificates, type Certificate } from '../certs.js';
import { parseGpuAttestationReport, type GpuAttestationReport } from './attestation-report.js';

/**
 * NVIDIA GPU evidence in the two shapes nvtrust produces:
 * - one GPU attestation report, raw or as hex text (the local verifier's sample); its device
 *   certificate chain then comes separately as an endorsement;
 * - a JSON list of per-GPU objects (the PPCIe verifier's `gpu_evidence.json`): base64 `evidence`,
 *   base64 of the PEM `certificate` chain, hex `nonce`, and unsigned `arch` / `driver_version` /
 *   `vbios_version` metadata from the host.
 */
export type NvidiaEvidence =
  | { readonly kind: 'report'; readonly report: GpuAttestationReport }
  | { readonly kind: 'list'; readonly gpus: readonly PublishedGpuEvidence[] };

/** One entry of the JSON list, decoded. The metadata besides the report is unsigned. */
export interface PublishedGpuEvidence {
  readonly report: GpuAttestationReport;
  /** The device chain, leaf first, as the host published it. */
  readonly certChain: readonly Certificate[];
  /** The nonce the host says it requested (lowercase hex); checked against the signed nonce. */
  readonly nonce?: string;
  readonly arch?: string;
  readonly driverVersion?: string;
  readonly vbiosVersion?: string;
}

/** An HGX board holds 8 GPUs; the bound only keeps a hostile list from costing unbounded work. */
const MAX_GPUS = 64;

const publishedSchema = z.object({
  evidence: z.string().min(1),
  certificate: z.string().min(1),
  nonce: z
    .string()
    .regex(/^[0-9a-fA-F]{64}$/, '64 hex digits')
    .optional(),
  arch: z.string().max(64).optional(),
  driver_version: z.string().max(64).optional(),
  vbios_version: z.string().max(64).optional(),
});
const listSchema = z.array(publishedSchema).min(1).max(MAX_GPUS);

/** Parses GPU evidence in either shape; throws ATTESTATION_EVIDENCE_MALFORMED for anything else. */
export function parseNvidiaEvidence(input: Uint8Array): NvidiaEvidence {
  const first = input.find((b) => !isAsciiWhitespace(b));
  if (first === 0x5b /* '[' */) return { kind: 'list', gpus: parseEvidenceList(input) };
  if (first !== undefined && input.every((b) => isAsciiWhitespace(b) || isHexDigit(b))) {
    const hex = new TextDecoder().decode(input.filter((b) => !isAsciiWhitespace(b)));
    if (hex.length % 2 !== 0) throw malformed('the hex text has an odd number of digits');
    return { kind: 'report', report: parseGpuAttestationReport(hexToBytes(hex)) };
  }
  return { kind: 'report', report: parseGpuAttestationReport(input) };
}

function parseEvidenceList(input: Uint8Array): PublishedGpuEvidence[] {
  let json: unknown;
  try {
    json = JSON.parse(utf8Decode(input));
  } catch (cause) {
    throw malformed('it starts like a JSON list but is not UTF-8 JSON', cause);
  }
  const parsed = listSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '' : ` at "${issue.path.join('.')}"`;
    throw malformed(
      `the JSON list does not hold nvtrust GPU evidence objects: ${issue?.message ?? 'wrong shape'}${where}`,
    );
  }
  return parsed.data.map((entry, i) => ({
    report: withGpuIndex(i, () => parseGpuAttestationReport(decodeBase64(entry.evidence, i, 'evidence'))),
    certChain: withGpuIndex(i, () =>
      parseCertificates(decodeBase64(entry.certificate, i, 'certificate'), `GPU ${i} certificate chain`),
    ),
    ...(entry.nonce === undefined ? {} : { nonce: entry.nonce.toLowerCase() }),
    ...(entry.arch === undefined ? {} : { arch: entry.arch }),
    ...(entry.driver_version === undefined ? {} : { driverVersion: entry.driver_version }),
    ...(entry.vbios_version === undefined ? {} : { vbiosVersion: entry.vbios_version }),
  }));
}

function decodeBase64(text: string, gpu: number, member: string): Uint8Array {
  try {
    return base64ToBytes(text);
  } catch (cause) {
    throw malformed(`GPU ${gpu} "${member}" is not base64`, cause);
  }
}

/** Re-throws any failure inside one list entry as malformed evidence naming the entry. */
function withGpuIndex<T>(gpu: number, parse: () => T): T {
  try {
    return parse();
  } catch (cause) {
    const reason = cause instanceof TresorError ? cause.message : 'it could not be decoded';
    throw malformed(`GPU ${gpu}: ${reason}`, cause);
  }
}

function malformed(reason: string, cause?: unknown): TresorError {
  return new TresorError(
    'ATTESTATION_EVIDENCE_MALFORMED',
    `The NVIDIA GPU evidence could not be parsed: ${reason}. Pass the nvtrust attestation report (raw or hex) or its JSON evidence list.`,
    cause === undefined ? {} : { cause },
  );
}

function isAsciiWhitespace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

function isHexDigit(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66);
}
