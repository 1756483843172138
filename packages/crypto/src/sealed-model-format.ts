import { TresorError } from '@tresor/protocol';
import { utf8Decode, utf8Encode } from './bytes.js';

/**
 * Byte layout of a sealed model (`.tresor`), format version 1 (docs/crypto.md, "Sealed models"):
 *
 *   offset  size  field
 *   0       8     magic 89 54 52 45 53 4f 52 0a ("\x89TRESOR\n")
 *   8       1     format version (1)
 *   9       4     header length N, unsigned big-endian, 2 <= N <= MAX_HEADER_JSON_BYTES
 *   13      N     header: UTF-8 JSON object in RFC 8785 canonical form (SealedModelHeader minus `version`)
 *   13+N    32    header MAC: HMAC-SHA256(header MAC key, bytes [0, 13+N))
 *   45+N    ...   chunks: AES-256-GCM(chunk key, nonce_i, AAD = SHA-256(bytes [0, 13+N)), plaintext_i) || tag
 *
 * This module holds the constants, the typed header and its strict encoding and parsing; the
 * cryptography lives in sealed-model-key.ts and sealed-model-chunks.ts.
 */

/**
 * "\x89TRESOR\n". Like PNG's signature (PNG spec §5.2), the high-bit first byte breaks on 7-bit
 * channels and the newline breaks on text-mode newline conversion, so a mangled copy is refused
 * as malformed instead of failing later as tampering.
 */
export const SEALED_MODEL_MAGIC: Uint8Array = Uint8Array.of(0x89, 0x54, 0x52, 0x45, 0x53, 0x4f, 0x52, 0x0a);
export const SEALED_MODEL_FORMAT_VERSION = 1;
/** AES-256-GCM chunks under an HKDF-SHA256 per-file key, in the STREAM construction. */
export const SEALED_MODEL_ALGORITHM = 'AES-256-GCM-HKDF-SHA256-STREAM';

/** Bytes before the header JSON: magic, version, 32-bit header length. */
export const SEALED_MODEL_PREAMBLE_LENGTH = 13;
/** Hard limit on the header JSON; a larger declared length is refused before anything is allocated. */
export const MAX_HEADER_JSON_BYTES = 64 * 1024;
export const HEADER_MAC_LENGTH = 32;
export const GCM_TAG_LENGTH = 16;
export const SALT_LENGTH = 32;
/** STREAM nonce = 7-byte prefix || 32-bit chunk counter || 1-byte last-chunk flag (12 bytes). */
export const NONCE_PREFIX_LENGTH = 7;
export const KEY_FINGERPRINT_LENGTH = 16;

export const DEFAULT_CHUNK_SIZE = 4 * 1024 * 1024;
export const MIN_CHUNK_SIZE = 1;
/** Bounds the memory a reader allocates per chunk, whatever a header claims. */
export const MAX_CHUNK_SIZE = 64 * 1024 * 1024;
/** The chunk counter is 32 bits wide. */
export const MAX_CHUNK_COUNT = 2 ** 32;

export const MAX_KEY_ID_LENGTH = 256;
export const MAX_METADATA_ENTRIES = 64;
export const MAX_METADATA_VALUE_LENGTH = 1024;

/** The header of a sealed model, as `tresor model inspect --json` prints it. Binary values are lowercase hex. */
export interface SealedModelHeader {
  /** Format version, from the preamble (not repeated in the JSON). */
  readonly version: typeof SEALED_MODEL_FORMAT_VERSION;
  readonly algorithm: typeof SEALED_MODEL_ALGORITHM;
  /** Names the key for whoever releases it (e.g. `kbs:///repo/type/tag`); never the key itself. */
  readonly keyId: string;
  /** HKDF-SHA256 of the key with a fixed label: tells a wrong key apart from a tampered header. */
  readonly keyFingerprint: string;
  readonly chunkSize: number;
  readonly plaintextLength: number;
  readonly plaintextSha256: string;
  /** Per-file HKDF salt (32 bytes). */
  readonly salt: string;
  /** Per-file STREAM nonce prefix (7 bytes). */
  readonly noncePrefix: string;
  /** Model metadata (name, revision, licence, ...): printable text, never secret. */
  readonly metadata: Readonly<Record<string, string>>;
}

/** Number of chunks: an empty model still has one (empty, final) chunk, so truncation to zero chunks is detectable. */
export function chunkCount(plaintextLength: number, chunkSize: number): number {
  return plaintextLength === 0 ? 1 : Math.ceil(plaintextLength / chunkSize);
}

/** Plaintext length of chunk `index`; every chunk but the last is exactly `chunkSize` long. */
export function chunkPlaintextLength(
  header: Pick<SealedModelHeader, 'chunkSize' | 'plaintextLength'>,
  index: number,
): number {
  return Math.min(header.chunkSize, header.plaintextLength - index * header.chunkSize);
}

/** Total size of the sealed file for a header whose JSON is `headerJsonLength` bytes long. */
export function sealedModelSize(header: SealedModelHeader, headerJsonLength: number): number {
  return (
    SEALED_MODEL_PREAMBLE_LENGTH +
    headerJsonLength +
    HEADER_MAC_LENGTH +
    header.plaintextLength +
    chunkCount(header.plaintextLength, header.chunkSize) * GCM_TAG_LENGTH
  );
}

const HEX = (length: number): RegExp => new RegExp(`^[0-9a-f]{${String(length * 2)}}$`);
const SHA256_HEX = HEX(32);
const SALT_HEX = HEX(SALT_LENGTH);
const NONCE_PREFIX_HEX = HEX(NONCE_PREFIX_LENGTH);
const FINGERPRINT_HEX = HEX(KEY_FINGERPRINT_LENGTH);
/** Visible ASCII only: key ids end up in URLs, logs and terminals. */
const KEY_ID = /^[\x21-\x7e]+$/;
const METADATA_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/**
 * C0/C1 controls, DEL and the Unicode bidirectional overrides: metadata is printed by `inspect`,
 * and these would let a crafted file rewrite the terminal or disguise text (CVE-2021-42574).
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the purpose
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/;

/** The JSON keys of a version 1 header, in RFC 8785 order (sorted by UTF-16 code units). */
const HEADER_KEYS = [
  'algorithm',
  'chunkSize',
  'keyFingerprint',
  'keyId',
  'metadata',
  'noncePrefix',
  'plaintextLength',
  'plaintextSha256',
  'salt',
] as const;

type HeaderJson = Omit<SealedModelHeader, 'version'>;

/**
 * Checks every field of a header, for both the writer (a bad option) and the reader (a bad file).
 * Returns the first problem as text, or undefined when the header is valid.
 */
export function sealedModelHeaderProblem(header: HeaderJson): string | undefined {
  if (
    !Number.isSafeInteger(header.chunkSize) ||
    header.chunkSize < MIN_CHUNK_SIZE ||
    header.chunkSize > MAX_CHUNK_SIZE
  ) {
    return `chunkSize must be an integer from ${String(MIN_CHUNK_SIZE)} to ${String(MAX_CHUNK_SIZE)}`;
  }
  if (!Number.isSafeInteger(header.plaintextLength) || header.plaintextLength < 0) {
    return 'plaintextLength must be a non-negative integer below 2^53';
  }
  if (chunkCount(header.plaintextLength, header.chunkSize) > MAX_CHUNK_COUNT) {
    return 'the model needs more than 2^32 chunks at this chunk size';
  }
  if (!SHA256_HEX.test(header.plaintextSha256)) return 'plaintextSha256 must be 64 lowercase hex digits';
  if (!SALT_HEX.test(header.salt)) return 'salt must be 64 lowercase hex digits';
  if (!NONCE_PREFIX_HEX.test(header.noncePrefix)) return 'noncePrefix must be 14 lowercase hex digits';
  if (!FINGERPRINT_HEX.test(header.keyFingerprint)) return 'keyFingerprint must be 32 lowercase hex digits';
  if (header.keyId.length > MAX_KEY_ID_LENGTH || !KEY_ID.test(header.keyId)) {
    return `keyId must be 1 to ${String(MAX_KEY_ID_LENGTH)} visible ASCII characters`;
  }
  const entries = Object.entries(header.metadata);
  if (entries.length > MAX_METADATA_ENTRIES) {
    return `metadata has more than ${String(MAX_METADATA_ENTRIES)} entries`;
  }
  for (const [key, value] of entries) {
    if (!METADATA_KEY.test(key)) {
      return `metadata key ${quoteForMessage(key)} must be 1 to 64 of A-Z a-z 0-9 . _ - (starting alphanumeric)`;
    }
    if (typeof value !== 'string' || value.length > MAX_METADATA_VALUE_LENGTH || UNPRINTABLE.test(value)) {
      return `metadata ${key} must be printable text of at most ${String(MAX_METADATA_VALUE_LENGTH)} characters`;
    }
  }
  return undefined;
}

/**
 * The header JSON in RFC 8785 canonical form. JSON.stringify serialises strings and safe integers
 * exactly as RFC 8785 §3.2.2 requires; the keys are inserted in §3.2.3 order, metadata keys sorted.
 */
function canonicalHeaderJson(header: HeaderJson): string {
  const metadata: Record<string, string> = {};
  for (const key of Object.keys(header.metadata).sort(compareCodeUnits))
    metadata[key] = header.metadata[key]!;
  const ordered: Record<string, unknown> = {};
  for (const key of HEADER_KEYS) ordered[key] = key === 'metadata' ? metadata : header[key];
  return JSON.stringify(ordered);
}

/**
 * Quotes a value read from an untrusted header for an error message: short printable ASCII only,
 * so a crafted file cannot put escape sequences or megabytes of text on the user's terminal.
 */
function quoteForMessage(value: unknown): string {
  return typeof value === 'string' && /^[\x20-\x7e]{0,64}$/.test(value) ? `"${value}"` : '(not shown)';
}

function compareCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Encodes magic, version, length and header JSON: the bytes the header MAC and the chunk AAD cover.
 * Throws USAGE_INVALID for a header that a reader would refuse.
 */
export function encodeSealedModelHeader(header: SealedModelHeader): Uint8Array<ArrayBuffer> {
  const problem = sealedModelHeaderProblem(header);
  if (problem !== undefined) throw new TresorError('USAGE_INVALID', `cannot seal: ${problem}`);
  const json = utf8Encode(canonicalHeaderJson(header));
  if (json.length > MAX_HEADER_JSON_BYTES) {
    throw new TresorError(
      'USAGE_INVALID',
      `cannot seal: the header would be ${String(json.length)} bytes; the limit is ${String(MAX_HEADER_JSON_BYTES)} (shorten the metadata)`,
    );
  }
  const out = new Uint8Array(SEALED_MODEL_PREAMBLE_LENGTH + json.length);
  out.set(SEALED_MODEL_MAGIC, 0);
  out[8] = SEALED_MODEL_FORMAT_VERSION;
  new DataView(out.buffer).setUint32(9, json.length);
  out.set(json, SEALED_MODEL_PREAMBLE_LENGTH);
  return out;
}

/** What the 13-byte preamble declares. */
export interface SealedModelPreamble {
  readonly version: number;
  readonly headerLength: number;
}

/**
 * Parses the preamble. `bytes` may be shorter than 13 only at the end of the input. A file is
 * recognised as a sealed model by its full 8-byte magic: shorter or different is MALFORMED, and
 * once the magic matched, any early end is TRUNCATED.
 */
export function parseSealedModelPreamble(bytes: Uint8Array): SealedModelPreamble {
  if (bytes.length < SEALED_MODEL_MAGIC.length || !SEALED_MODEL_MAGIC.every((b, i) => bytes[i] === b)) {
    throw new TresorError('SEALED_MODEL_MALFORMED', 'the file does not start with the .tresor magic bytes');
  }
  if (bytes.length < SEALED_MODEL_PREAMBLE_LENGTH) {
    throw new TresorError('SEALED_MODEL_TRUNCATED', 'the file ends inside the sealed model preamble');
  }
  const version = bytes[8]!;
  if (version !== SEALED_MODEL_FORMAT_VERSION) {
    throw new TresorError(
      'SEALED_MODEL_VERSION_UNSUPPORTED',
      `sealed model format version ${String(version)} is not supported (this build reads version ${String(SEALED_MODEL_FORMAT_VERSION)})`,
      { details: { version } },
    );
  }
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(9);
  if (headerLength < 2 || headerLength > MAX_HEADER_JSON_BYTES) {
    throw new TresorError(
      'SEALED_MODEL_MALFORMED',
      `declared header length ${String(headerLength)} is outside 2..${String(MAX_HEADER_JSON_BYTES)} bytes`,
      { details: { headerLength } },
    );
  }
  return { version, headerLength };
}

/**
 * Parses and validates the header JSON. Refuses anything but the exact RFC 8785 canonical bytes,
 * so two readers can never disagree about a header (duplicate keys, escapes, whitespace).
 */
export function parseSealedModelHeaderJson(json: Uint8Array): SealedModelHeader {
  let value: unknown;
  try {
    value = JSON.parse(utf8Decode(json));
  } catch (cause) {
    throw new TresorError('SEALED_MODEL_MALFORMED', 'the header is not valid UTF-8 JSON', { cause });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TresorError('SEALED_MODEL_MALFORMED', 'the header is not a JSON object');
  }
  const fields = value as Record<string, unknown>;
  // The algorithm decides which fields exist, so an unknown one is reported before the schema check.
  if (fields.algorithm !== SEALED_MODEL_ALGORITHM) {
    throw new TresorError(
      'SEALED_MODEL_ALGORITHM_UNSUPPORTED',
      `sealed model algorithm ${quoteForMessage(fields.algorithm)} is not supported (this build implements ${SEALED_MODEL_ALGORITHM})`,
    );
  }
  const keys = Object.keys(fields).sort(compareCodeUnits);
  if (keys.length !== HEADER_KEYS.length || keys.some((k, i) => k !== HEADER_KEYS[i])) {
    throw new TresorError(
      'SEALED_MODEL_MALFORMED',
      `the header must have exactly the fields ${HEADER_KEYS.join(', ')}`,
    );
  }
  const metadata = fields.metadata;
  if (
    typeof fields.keyId !== 'string' ||
    typeof fields.keyFingerprint !== 'string' ||
    typeof fields.chunkSize !== 'number' ||
    typeof fields.plaintextLength !== 'number' ||
    typeof fields.plaintextSha256 !== 'string' ||
    typeof fields.salt !== 'string' ||
    typeof fields.noncePrefix !== 'string' ||
    typeof metadata !== 'object' ||
    metadata === null ||
    Array.isArray(metadata)
  ) {
    throw new TresorError('SEALED_MODEL_MALFORMED', 'a header field has the wrong JSON type');
  }
  const header: SealedModelHeader = {
    version: SEALED_MODEL_FORMAT_VERSION,
    algorithm: SEALED_MODEL_ALGORITHM,
    keyId: fields.keyId,
    keyFingerprint: fields.keyFingerprint,
    chunkSize: fields.chunkSize,
    plaintextLength: fields.plaintextLength,
    plaintextSha256: fields.plaintextSha256,
    salt: fields.salt,
    noncePrefix: fields.noncePrefix,
    metadata: metadata as Record<string, string>,
  };
  const problem = sealedModelHeaderProblem(header);
  if (problem !== undefined) throw new TresorError('SEALED_MODEL_MALFORMED', `invalid header: ${problem}`);
  const canonical = utf8Encode(canonicalHeaderJson(header));
  if (canonical.length !== json.length || canonical.some((b, i) => b !== json[i])) {
    throw new TresorError('SEALED_MODEL_MALFORMED', 'the header is not in RFC 8785 canonical form');
  }
  return header;
}
