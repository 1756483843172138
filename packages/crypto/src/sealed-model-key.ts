import { TresorError } from '@tresor/protocol';
import { bytesToHex, hexToBytes } from './bytes.js';
import { KEY_FINGERPRINT_LENGTH, SALT_LENGTH } from './sealed-model-format.js';

/** A model key is 256 bits: AES-256 strength after HKDF (RFC 5869). */
export const MODEL_KEY_LENGTH = 32;

/**
 * HKDF `info` labels (RFC 5869 §3.2): one per derived key, so no two uses of the model key can
 * ever produce the same bytes.
 */
const label = (text: string): Uint8Array<ArrayBuffer> => new TextEncoder().encode(text);
const INFO = {
  fingerprint: label('tresor sealed-model v1 key-fingerprint'),
  chunkKey: label('tresor sealed-model v1 chunk-key'),
  headerMacKey: label('tresor sealed-model v1 header-mac-key'),
} as const;

/** The keys one sealed file uses, derived from the model key and the file's random salt. */
export interface SealedModelFileKeys {
  /** AES-256-GCM key for the chunks. */
  readonly chunkKey: CryptoKey;
  /** HMAC-SHA256 key for the header MAC, which doubles as the key commitment. */
  readonly headerMacKey: CryptoKey;
}

const REDACTED = Symbol.for('nodejs.util.inspect.custom');

/**
 * A 256-bit model key, held as a non-extractable WebCrypto key: the raw bytes are not kept in the
 * JavaScript heap after import, and the object prints and serialises as its fingerprint only.
 */
export class ModelKey {
  /** Non-secret identifier of the key (hex), equal across files sealed with it. */
  readonly fingerprint: string;
  readonly #ikm: CryptoKey;

  private constructor(ikm: CryptoKey, fingerprint: string) {
    this.#ikm = ikm;
    this.fingerprint = fingerprint;
  }

  /** Imports 32 raw key bytes (the caller's buffer is not modified; zero it when done). */
  static async import(raw: Uint8Array): Promise<ModelKey> {
    if (raw.length !== MODEL_KEY_LENGTH) {
      throw new TresorError(
        'SEALED_MODEL_KEY_INVALID',
        `a model key is ${String(MODEL_KEY_LENGTH)} bytes; got ${String(raw.length)}`,
      );
    }
    const copy = new Uint8Array(raw);
    try {
      const ikm = await crypto.subtle.importKey('raw', copy, 'HKDF', false, ['deriveBits', 'deriveKey']);
      // Empty salt: the fingerprint must be the same for every file (RFC 5869 §2.2 then uses zeros).
      const fingerprint = await crypto.subtle.deriveBits(
        { name: 'HKDF', hash: 'SHA-256', salt: new Uint8Array(0), info: INFO.fingerprint },
        ikm,
        KEY_FINGERPRINT_LENGTH * 8,
      );
      return new ModelKey(ikm, bytesToHex(new Uint8Array(fingerprint)));
    } finally {
      copy.fill(0);
    }
  }

  /**
   * Derives the keys of one file. The per-file random salt makes every file's chunk key unique,
   * so random 7-byte nonce prefixes can never collide across files sealed with one model key.
   */
  async deriveFileKeys(salt: Uint8Array): Promise<SealedModelFileKeys> {
    if (salt.length !== SALT_LENGTH)
      throw new TresorError('INTERNAL_ERROR', 'sealed model salt has the wrong length');
    const params = (info: Uint8Array<ArrayBuffer>): HkdfParams => ({
      name: 'HKDF',
      hash: 'SHA-256',
      salt: new Uint8Array(salt),
      info,
    });
    const [chunkKey, headerMacKey] = await Promise.all([
      crypto.subtle.deriveKey(params(INFO.chunkKey), this.#ikm, { name: 'AES-GCM', length: 256 }, false, [
        'encrypt',
        'decrypt',
      ]),
      crypto.subtle.deriveKey(
        params(INFO.headerMacKey),
        this.#ikm,
        { name: 'HMAC', hash: 'SHA-256', length: 256 },
        false,
        ['sign', 'verify'],
      ),
    ]);
    return { chunkKey, headerMacKey };
  }

  toString(): string {
    return `ModelKey(fingerprint ${this.fingerprint})`;
  }

  toJSON(): string {
    return this.toString();
  }

  [REDACTED](): string {
    return this.toString();
  }
}

const HEX_KEY = /^[0-9a-fA-F]{64}$/;

/**
 * Parses the contents of a key file: exactly 32 raw bytes, or 64 hex digits optionally followed
 * by one newline. Anything else is refused rather than guessed at (a truncated or padded key
 * must not silently become another key).
 */
export function parseModelKeyFile(contents: Uint8Array): Uint8Array {
  if (contents.length === MODEL_KEY_LENGTH) return new Uint8Array(contents);
  const hexLength = contents.length === 65 && contents[64] === 0x0a ? 64 : contents.length;
  if (hexLength === 64) {
    const text = String.fromCharCode(...contents.subarray(0, 64));
    if (HEX_KEY.test(text)) return hexToBytes(text);
  }
  throw new TresorError(
    'SEALED_MODEL_KEY_INVALID',
    `the key file holds ${String(contents.length)} bytes that are neither 32 raw bytes nor 64 hex digits (plus an optional newline)`,
  );
}

/** Parses a key file's contents and imports the key, zeroing the intermediate copy. */
export async function importModelKeyFile(contents: Uint8Array): Promise<ModelKey> {
  const raw = parseModelKeyFile(contents);
  try {
    return await ModelKey.import(raw);
  } finally {
    raw.fill(0);
  }
}
