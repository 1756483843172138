import { createCipheriv, createDecipheriv, randomBytes, scrypt } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { TresorError } from '@tresor/protocol';
import { base64ToBytes, bytesToBase64, utf8Encode } from '@tresor/crypto';
import { writeFileAtomic } from '../atomic-file.js';
import { SecretKeyBytes } from '../secret-key-bytes.js';

/**
 * The file keystore on disk: one JSON envelope holding the key set sealed with AES-256-GCM under a key
 * derived from the passphrase with scrypt (RFC 7914). The KDF parameters sit in the clear and are
 * bound into the GCM AAD, so nobody can weaken them without the passphrase.
 *
 * Default scrypt cost: N = 2^17, r = 8, p = 1 (128 MiB, about 0.4 s on one core) — the OWASP
 * password-storage recommendation for scrypt. Files may carry N from 2^14 to 2^20; anything else is
 * refused before deriving, so a planted file cannot make the process allocate gigabytes.
 */
export const FILE_FORMAT = 'tresor-keystore';
export const FILE_VERSION = 1;
export const DEFAULT_SCRYPT_LOG2_N = 17;
const MIN_LOG2_N = 14;
const MAX_LOG2_N = 20;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** A keystore of thousands of keys is far below this; larger files are refused unread. */
const MAX_FILE_BYTES = 16 * 1024 * 1024;

export interface ScryptParameters {
  readonly log2N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Uint8Array;
}

/** The sealing key for one file, derived once per open and zeroed on close. */
export interface FileSealingKey {
  readonly kdf: ScryptParameters;
  readonly key: SecretKeyBytes;
}

export function newScryptParameters(log2N: number = DEFAULT_SCRYPT_LOG2_N): ScryptParameters {
  checkLog2N(log2N, 'CONFIG_INVALID');
  return { log2N, r: SCRYPT_R, p: SCRYPT_P, salt: randomBytes(SALT_BYTES) };
}

export async function deriveSealingKey(
  passphrase: SecretKeyBytes,
  kdf: ScryptParameters,
): Promise<FileSealingKey> {
  const N = 2 ** kdf.log2N;
  const derived = await new Promise<Buffer>((resolve, reject) => {
    passphrase.expose((pw) => {
      // scrypt needs 128 * N * r bytes; allow exactly that plus slack.
      scrypt(
        pw,
        kdf.salt,
        32,
        { N, r: kdf.r, p: kdf.p, maxmem: 129 * N * kdf.r + 1024 * 1024 },
        (err, key) => {
          if (err) reject(new TresorError('INTERNAL_ERROR', 'scrypt failed', { cause: err }));
          else resolve(key);
        },
      );
    });
  });
  return { kdf, key: SecretKeyBytes.takeFrom(derived) };
}

interface Envelope {
  readonly kdf: ScryptParameters;
  readonly nonce: Uint8Array;
  readonly sealed: Uint8Array;
}

/** The AAD: the envelope's clear-text header in a fixed field order. */
function headerAad(kdf: ScryptParameters): Uint8Array {
  return utf8Encode(
    JSON.stringify([FILE_FORMAT, FILE_VERSION, 'scrypt', kdf.log2N, kdf.r, kdf.p, bytesToBase64(kdf.salt)]),
  );
}

/**
 * Reads the envelope of an existing file after checking it is a regular file that only its owner can
 * read or write (mode 0600 or stricter). Returns null if the file does not exist.
 */
export async function readEnvelope(path: string): Promise<Envelope | null> {
  let info;
  try {
    info = await stat(path);
  } catch (cause) {
    if (isNotFound(cause)) return null;
    throw new TresorError('INPUT_UNREADABLE', `cannot read keystore file ${path}`, { cause });
  }
  if (!info.isFile()) throw new TresorError('KEYSTORE_FILE_MALFORMED', `${path} is not a regular file`);
  if ((info.mode & 0o077) !== 0) {
    throw new TresorError(
      'KEYSTORE_FILE_INSECURE',
      `keystore file ${path} has mode ${(info.mode & 0o777).toString(8)}; it must be 600`,
    );
  }
  if (info.size > MAX_FILE_BYTES) {
    throw new TresorError(
      'KEYSTORE_FILE_MALFORMED',
      `${path} is larger than any keystore (${info.size} bytes)`,
    );
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new TresorError('INPUT_UNREADABLE', `cannot read keystore file ${path}`, { cause });
  }
  return parseEnvelope(text);
}

/** Parses the clear-text envelope (untrusted: the file may have been replaced). */
export function parseEnvelope(text: string): Envelope {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new TresorError('KEYSTORE_FILE_MALFORMED', 'the keystore file is not JSON', { cause });
  }
  if (typeof json !== 'object' || json === null) throw malformed('not a JSON object');
  const o = json as Record<string, unknown>;
  if (o.format !== FILE_FORMAT) throw malformed(`format is not "${FILE_FORMAT}"`);
  if (o.version !== FILE_VERSION) throw malformed(`unsupported version ${JSON.stringify(o.version)}`);
  const kdf = o.kdf;
  if (typeof kdf !== 'object' || kdf === null) throw malformed('kdf missing');
  const k = kdf as Record<string, unknown>;
  if (k.algorithm !== 'scrypt') throw malformed('kdf algorithm is not scrypt');
  if (typeof k.log2N !== 'number') throw malformed('kdf log2N missing');
  checkLog2N(k.log2N, 'KEYSTORE_FILE_MALFORMED');
  if (k.r !== SCRYPT_R || k.p !== SCRYPT_P)
    throw malformed(`scrypt r and p must be ${SCRYPT_R} and ${SCRYPT_P}`);
  const salt = b64Field(k.salt, 'kdf salt');
  if (salt.length !== SALT_BYTES) throw malformed('kdf salt is not 16 bytes');
  const nonce = b64Field(o.nonce, 'nonce');
  if (nonce.length !== NONCE_BYTES) throw malformed('nonce is not 12 bytes');
  const sealed = b64Field(o.sealed, 'sealed');
  if (sealed.length < TAG_BYTES) throw malformed('sealed data is shorter than a GCM tag');
  return { kdf: { log2N: k.log2N, r: k.r, p: k.p, salt }, nonce, sealed };
}

/** Opens the sealed key set; a wrong passphrase and a modified file look the same to GCM. */
export function openEnvelope(envelope: Envelope, sealing: FileSealingKey): Uint8Array {
  const body = envelope.sealed.subarray(0, envelope.sealed.length - TAG_BYTES);
  const tag = envelope.sealed.subarray(envelope.sealed.length - TAG_BYTES);
  return sealing.key.expose((key) => {
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, envelope.nonce);
      decipher.setAAD(headerAad(envelope.kdf));
      decipher.setAuthTag(tag);
      const head = decipher.update(body);
      const tail = decipher.final();
      const out = new Uint8Array(head.length + tail.length);
      out.set(head);
      out.set(tail, head.length);
      head.fill(0);
      return out;
    } catch (cause) {
      throw new TresorError(
        'KEYSTORE_AUTH_FAILED',
        'the keystore file does not open with this passphrase (or it was modified)',
        { cause },
      );
    }
  });
}

/** Seals `plaintext` with a fresh nonce and replaces the file atomically (see writeFileAtomic). */
export async function writeEnvelope(
  path: string,
  sealing: FileSealingKey,
  plaintext: Uint8Array,
): Promise<void> {
  const nonce = randomBytes(NONCE_BYTES);
  const sealed = sealing.key.expose((key) => {
    const cipher = createCipheriv('aes-256-gcm', key, nonce);
    cipher.setAAD(headerAad(sealing.kdf));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return body;
  });
  const text = JSON.stringify(
    {
      format: FILE_FORMAT,
      version: FILE_VERSION,
      kdf: {
        algorithm: 'scrypt',
        log2N: sealing.kdf.log2N,
        r: sealing.kdf.r,
        p: sealing.kdf.p,
        salt: bytesToBase64(sealing.kdf.salt),
      },
      nonce: bytesToBase64(nonce),
      sealed: bytesToBase64(sealed),
    },
    null,
    2,
  );
  await writeFileAtomic(path, `${text}\n`);
}

function checkLog2N(log2N: number, code: 'CONFIG_INVALID' | 'KEYSTORE_FILE_MALFORMED'): void {
  if (!Number.isInteger(log2N) || log2N < MIN_LOG2_N || log2N > MAX_LOG2_N) {
    throw new TresorError(code, `scrypt cost log2(N) must be an integer from ${MIN_LOG2_N} to ${MAX_LOG2_N}`);
  }
}

function b64Field(value: unknown, name: string): Uint8Array {
  if (typeof value !== 'string') throw malformed(`${name} missing`);
  try {
    return base64ToBytes(value);
  } catch (cause) {
    throw new TresorError('KEYSTORE_FILE_MALFORMED', `keystore file: ${name} is not base64`, { cause });
  }
}

function malformed(detail: string): TresorError {
  return new TresorError('KEYSTORE_FILE_MALFORMED', `keystore file: ${detail}`);
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'ENOENT';
}
