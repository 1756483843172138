import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import {
  base64ToBytes,
  bytesToBase64,
  canonicalJson,
  concatBytes,
  hexToBytes,
  utf8Decode,
  utf8Encode,
} from '@tresor/crypto';

/**
 * Evidence of the sample TEE, the software stand-in for local runs. The JSON shape is Trustee's
 * sample evidence (`{"svn": "1", "report_data": "<standard base64>"}`, deps/verifier/src/sample),
 * so Trustee-style tooling reads it, plus optional Tresor members:
 *
 * - `measurement`: 96 hex digits, what the local stack reports it runs (a SHA-384 of its build);
 * - `init_data`: Trustee's optional init-data string, carried verbatim;
 * - `signature`: standard base64 of an Ed25519 signature (RFC 8032) by the installation's sample key
 *   over `SAMPLE_SIGNATURE_CONTEXT || 0x00 || JCS(evidence without "signature")` (RFC 8785).
 *
 * The context string keeps a sample signature from being replayed as any other Tresor signature.
 */
export const SAMPLE_SIGNATURE_CONTEXT = 'tresor sample evidence v1';

/** Report data is zero-padded to 64 bytes, like SNP REPORT_DATA and TDX REPORTDATA. */
export const SAMPLE_REPORT_DATA_LENGTH = 64;
/** A sample measurement is a SHA-384 digest. */
export const SAMPLE_MEASUREMENT_LENGTH = 48;
const SIGNATURE_LENGTH = 64;
/** Sample evidence is a few hundred bytes; anything far larger is not sample evidence. */
const MAX_EVIDENCE_BYTES = 16 * 1024;

export interface SampleEvidence {
  /** Security version number (Trustee sends it as a decimal string). */
  readonly svn: number;
  /** The bound report data, zero-padded to 64 bytes. */
  readonly reportData: Uint8Array;
  readonly measurement: Uint8Array | null;
  readonly initData: string | null;
  /** The Ed25519 signature, or null for unsigned Trustee-style evidence. */
  readonly signature: Uint8Array | null;
  /** The exact bytes the signature covers. */
  readonly signedMessage: Uint8Array;
}

const svnSchema = z.union([
  z.string().regex(/^(0|[1-9][0-9]{0,14})$/, 'a decimal number'),
  z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
]);
const evidenceSchema = z.strictObject({
  svn: svnSchema,
  report_data: z.string().max(128),
  measurement: z
    .string()
    .regex(/^[0-9a-f]{96}$/, '96 lowercase hex digits')
    .optional(),
  init_data: z.string().max(4096).optional(),
  signature: z.string().max(128).optional(),
});

/** Parses sample evidence JSON. Throws ATTESTATION_EVIDENCE_MALFORMED for anything else. */
export function parseSampleEvidence(bytes: Uint8Array): SampleEvidence {
  if (bytes.length > MAX_EVIDENCE_BYTES) {
    throw malformed(`it is ${bytes.length} bytes; sample evidence is at most ${MAX_EVIDENCE_BYTES}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(utf8Decode(bytes));
  } catch (cause) {
    throw malformed('it is not UTF-8 JSON', cause);
  }
  const parsed = evidenceSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '' : ` at "${issue.path.join('.')}"`;
    throw malformed(`${issue?.message ?? 'wrong shape'}${where}`);
  }
  const members = parsed.data;
  const reportData = decodeBase64(members.report_data, 'report_data');
  if (reportData.length > SAMPLE_REPORT_DATA_LENGTH) {
    throw malformed(`report_data is ${reportData.length} bytes; at most ${SAMPLE_REPORT_DATA_LENGTH}`);
  }
  const signature = members.signature === undefined ? null : decodeBase64(members.signature, 'signature');
  if (signature !== null && signature.length !== SIGNATURE_LENGTH) {
    throw malformed(`signature is ${signature.length} bytes; an Ed25519 signature is ${SIGNATURE_LENGTH}`);
  }
  const padded = new Uint8Array(SAMPLE_REPORT_DATA_LENGTH);
  padded.set(reportData);
  return {
    svn: typeof members.svn === 'number' ? members.svn : Number(members.svn),
    reportData: padded,
    measurement: members.measurement === undefined ? null : hexToBytes(members.measurement),
    initData: members.init_data ?? null,
    signature,
    signedMessage: sampleSignedMessage(members),
  };
}

/** The bytes an installation key signs: context, a zero byte, then JCS of the unsigned members. */
export function sampleSignedMessage(
  members: Readonly<Record<string, string | number | undefined>>,
): Uint8Array {
  const { signature: _signature, ...unsigned } = members;
  return concatBytes(
    utf8Encode(SAMPLE_SIGNATURE_CONTEXT),
    new Uint8Array([0]),
    utf8Encode(canonicalJson(unsigned)),
  );
}

/**
 * Standard base64 with padding, in its canonical form only (RFC 4648 §3.5: unused bits zero), as
 * Trustee's Rust `STANDARD` engine writes it; a second spelling of the same bytes is refused.
 */
function decodeBase64(text: string, member: string): Uint8Array {
  let bytes: Uint8Array;
  try {
    bytes = base64ToBytes(text);
  } catch (cause) {
    throw malformed(`${member} is not base64`, cause);
  }
  if (bytesToBase64(bytes) !== text) throw malformed(`${member} is not canonical padded standard base64`);
  return bytes;
}

function malformed(why: string, cause?: unknown): TresorError {
  return new TresorError(
    'ATTESTATION_EVIDENCE_MALFORMED',
    `the sample TEE evidence is malformed: ${why}`,
    cause === undefined ? {} : { cause },
  );
}
