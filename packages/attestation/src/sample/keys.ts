import { ed25519 } from '@noble/curves/ed25519.js';
import { TresorError } from '@tresor/protocol';
import { base64ToBytes, bytesToBase64Url, bytesToHex, hexToBytes, utf8Decode } from '@tresor/crypto';
import {
  bufferSource,
  ed25519Verifier,
  importEd25519SigningKey,
  platformSubtle,
  type Ed25519Verify,
} from './ed25519.js';

/**
 * Keys of the sample TEE: one Ed25519 key pair per installation (RFC 8032). The trust service is
 * configured with the public key; the local stack (`tresor up`) holds the signing key and signs the
 * evidence it produces. Keys travel as JWK (RFC 8037 §2: kty OKP, crv Ed25519, x = public key,
 * d = 32-byte seed), so standard JOSE tools read them.
 */

const KEY_LENGTH = 32;

interface OkpJwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
  readonly d?: string;
}

/** The public key that verifies sample evidence signatures. */
export class SampleVerifyKey {
  readonly #bytes: Uint8Array;
  readonly #verify: Ed25519Verify;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#verify = ed25519Verifier(bytes);
  }

  /** A raw 32-byte Ed25519 public key. */
  static fromBytes(bytes: Uint8Array): SampleVerifyKey {
    if (bytes.length !== KEY_LENGTH) {
      throw new TresorError(
        'INPUT_MALFORMED',
        `a sample TEE public key is ${KEY_LENGTH} bytes, got ${bytes.length}`,
      );
    }
    return new SampleVerifyKey(Uint8Array.from(bytes));
  }

  /**
   * Reads a public key file: a JWK (`{"kty":"OKP","crv":"Ed25519","x":…}`, a private JWK is accepted
   * and only its public half kept), or the 32-byte key as 64 hex digits. Throws INPUT_MALFORMED.
   */
  static parse(input: Uint8Array | string): SampleVerifyKey {
    const text = (typeof input === 'string' ? input : decodeKeyText(input)).trim();
    if (/^[0-9a-fA-F]{64}$/.test(text)) return SampleVerifyKey.fromBytes(hexToBytes(text));
    const jwk = parseJwk(text);
    return SampleVerifyKey.fromBytes(decodeJwkMember(jwk.x, 'x'));
  }

  get bytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }

  /** Lowercase hex of the key, for logs and policy files (a public value). */
  get hex(): string {
    return bytesToHex(this.#bytes);
  }

  toJwk(): OkpJwk {
    return { kty: 'OKP', crv: 'Ed25519', x: bytesToBase64Url(this.#bytes) };
  }

  /**
   * Verifies an Ed25519 signature (RFC 8032 §5.1.7, strict: no ZIP-215 leniency), natively where
   * WebCrypto has Ed25519 (ed25519.ts). Never rejects.
   */
  verify(signature: Uint8Array, message: Uint8Array): Promise<boolean> {
    return this.#verify(signature, message);
  }
}

const REDACTED = '[SampleSigningKey: redacted]';

/**
 * The per-installation signing key. Holds secret material: it refuses to serialise (JSON, string,
 * util.inspect all print a placeholder); export it only with `exportJwk()` into a key file.
 */
export class SampleSigningKey {
  #seed: Uint8Array;
  /** The seed as a non-extractable WebCrypto key, imported by the first `signAsync` (resolves to undefined without native Ed25519). */
  #native: Promise<CryptoKey | undefined> | undefined;
  readonly verifyKey: SampleVerifyKey;

  private constructor(seed: Uint8Array) {
    this.#seed = seed;
    this.verifyKey = SampleVerifyKey.fromBytes(ed25519.getPublicKey(seed));
  }

  /** A new random key; `randomBytes` is injectable so tests can fix it. */
  static generate(
    randomBytes: (length: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n)),
  ): SampleSigningKey {
    const seed = randomBytes(KEY_LENGTH);
    if (seed.length !== KEY_LENGTH) {
      throw new TresorError('INTERNAL_ERROR', 'the random source returned the wrong number of bytes');
    }
    return new SampleSigningKey(Uint8Array.from(seed));
  }

  /** Reads a private JWK (RFC 8037) written by `exportJwk()`. Throws INPUT_MALFORMED. */
  static parse(input: Uint8Array | string): SampleSigningKey {
    const jwk = parseJwk(typeof input === 'string' ? input : decodeKeyText(input));
    if (jwk.d === undefined) {
      throw new TresorError('INPUT_MALFORMED', 'the sample TEE key file holds no private key ("d")');
    }
    const key = new SampleSigningKey(decodeJwkMember(jwk.d, 'd'));
    if (key.verifyKey.hex !== bytesToHex(decodeJwkMember(jwk.x, 'x'))) {
      throw new TresorError('INPUT_MALFORMED', 'the sample TEE key file\'s "x" does not match its "d"');
    }
    return key;
  }

  sign(message: Uint8Array): Uint8Array {
    return ed25519.sign(message, this.#liveSeed());
  }

  /**
   * The same signature as `sign` (Ed25519 is deterministic), made by WebCrypto's native Ed25519
   * where the platform has it, ten times faster than `sign`; with @noble elsewhere.
   */
  async signAsync(message: Uint8Array): Promise<Uint8Array> {
    const key = await (this.#native ??= importEd25519SigningKey(this.#liveSeed()));
    // The key may have been destroyed while it was being imported.
    const seed = this.#liveSeed();
    const subtle = platformSubtle();
    if (key === undefined || subtle === null) return ed25519.sign(message, seed);
    return new Uint8Array(await subtle.sign({ name: 'Ed25519' }, key, bufferSource(message)));
  }

  #liveSeed(): Uint8Array {
    if (this.#seed.length === 0) {
      throw new TresorError('INTERNAL_ERROR', 'the sample signing key was destroyed');
    }
    return this.#seed;
  }

  /** The private JWK, for writing the installation's key file (mode 0600). */
  exportJwk(): Required<OkpJwk> {
    return { ...this.verifyKey.toJwk(), d: bytesToBase64Url(this.#seed) };
  }

  /** Overwrites the seed; the key cannot sign afterwards. */
  destroy(): void {
    this.#seed.fill(0);
    this.#seed = new Uint8Array(0);
    this.#native = undefined;
  }

  toJSON(): string {
    return REDACTED;
  }

  toString(): string {
    return REDACTED;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return REDACTED;
  }
}

function decodeKeyText(bytes: Uint8Array): string {
  try {
    return utf8Decode(bytes);
  } catch (cause) {
    throw new TresorError('INPUT_MALFORMED', 'the sample TEE key file is not UTF-8 text', { cause });
  }
}

function parseJwk(text: string): OkpJwk {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new TresorError(
      'INPUT_MALFORMED',
      'the sample TEE key is neither an Ed25519 JWK nor 64 hex digits',
      { cause },
    );
  }
  if (typeof value !== 'object' || value === null) {
    throw new TresorError('INPUT_MALFORMED', 'the sample TEE key JWK must be a JSON object');
  }
  const { kty, crv, x, d } = value as Record<string, unknown>;
  if (kty !== 'OKP' || crv !== 'Ed25519' || typeof x !== 'string') {
    throw new TresorError(
      'INPUT_MALFORMED',
      'the sample TEE key JWK must have kty "OKP", crv "Ed25519" and a string "x" (RFC 8037)',
    );
  }
  if (d !== undefined && typeof d !== 'string') {
    throw new TresorError('INPUT_MALFORMED', 'the sample TEE key JWK member "d" must be a string');
  }
  return d === undefined ? { kty, crv, x } : { kty, crv, x, d };
}

function decodeJwkMember(value: string, name: string): Uint8Array {
  const bytes = base64ToBytes(value);
  if (bytes.length !== KEY_LENGTH) {
    throw new TresorError(
      'INPUT_MALFORMED',
      `the sample TEE key JWK member "${name}" must encode ${KEY_LENGTH} bytes, got ${bytes.length}`,
    );
  }
  return bytes;
}
