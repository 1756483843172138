import {
  Aes128Gcm,
  Aes256Gcm,
  CipherSuite,
  DhkemX25519HkdfSha256,
  ExportOnly,
  HkdfSha256,
  type AeadInterface,
  type KemInterface,
  type RecipientContext,
  type SenderContext,
} from '@hpke/core';
import { XWing } from '@hpke/hybridkem-x-wing';
import { TresorError } from '@tresor/protocol';
import { bytesToHex } from './bytes.js';

/**
 * The HPKE (RFC 9180) suites Tresor speaks, named by their IANA identifiers, over the `@hpke/*`
 * libraries (WebCrypto underneath, so the same code runs in Node and in browsers).
 *
 * Key material never leaves this module as bytes except through the explicit
 * `HpkeKeyPair.exportPrivateKey()`: key objects keep their CryptoKeys in private fields, print
 * and serialise as their public half only.
 */

/** KEM identifiers (RFC 9180 §7.1; X-Wing's code point from the IANA HPKE registry). */
export const HPKE_KEM = {
  /** DHKEM(X25519, HKDF-SHA256): Nenc = Npk = Nsk = 32. The default. */
  X25519_HKDF_SHA256: 0x0020,
  /** X-Wing hybrid ML-KEM-768 + X25519 (post-quantum): Nenc 1120, Npk 1216, Nsk 32. */
  X_WING: 0x647a,
} as const;
export type HpkeKemId = (typeof HPKE_KEM)[keyof typeof HPKE_KEM];

/** KDF identifiers (RFC 9180 §7.2). */
export const HPKE_KDF = { HKDF_SHA256: 0x0001 } as const;
export type HpkeKdfId = (typeof HPKE_KDF)[keyof typeof HPKE_KDF];

/**
 * AEAD identifiers (RFC 9180 §7.3). AES-256-GCM is Tresor's choice; AES-128-GCM is accepted
 * because the RFC 9180 and RFC 9458 test vectors use it; export-only (§5.3) has no Seal/Open and
 * serves only exporter-based protocols.
 */
export const HPKE_AEAD = { AES_128_GCM: 0x0001, AES_256_GCM: 0x0002, EXPORT_ONLY: 0xffff } as const;
export type HpkeAeadId = (typeof HPKE_AEAD)[keyof typeof HPKE_AEAD];

/** A suite named by identifiers, as they appear on the wire (OHTTP headers, key configurations). */
export interface HpkeSuiteIds {
  readonly kem: number;
  readonly kdf: number;
  readonly aead: number;
}

/** DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-256-GCM (DESIGN.md §3). */
export const DEFAULT_HPKE_SUITE: Readonly<{ kem: HpkeKemId; kdf: HpkeKdfId; aead: HpkeAeadId }> =
  Object.freeze({
    kem: HPKE_KEM.X25519_HKDF_SHA256,
    kdf: HPKE_KDF.HKDF_SHA256,
    aead: HPKE_AEAD.AES_256_GCM,
  });

function hex16(id: number): string {
  return `0x${id.toString(16).padStart(4, '0')}`;
}

function isKemId(id: number): id is HpkeKemId {
  return id === HPKE_KEM.X25519_HKDF_SHA256 || id === HPKE_KEM.X_WING;
}

function isKdfId(id: number): id is HpkeKdfId {
  return id === HPKE_KDF.HKDF_SHA256;
}

function isAeadId(id: number): id is HpkeAeadId {
  return id === HPKE_AEAD.AES_128_GCM || id === HPKE_AEAD.AES_256_GCM || id === HPKE_AEAD.EXPORT_ONLY;
}

/** Narrows a wire KEM id to one Tresor supports, or refuses with HPKE_SUITE_UNSUPPORTED. */
export function requireKem(id: number): HpkeKemId {
  if (!isKemId(id)) {
    throw new TresorError(
      'HPKE_SUITE_UNSUPPORTED',
      `HPKE KEM ${hex16(id)} is not supported (supported: 0x0020 X25519, 0x647a X-Wing)`,
    );
  }
  return id;
}

function newKem(id: HpkeKemId): KemInterface {
  return id === HPKE_KEM.X_WING ? new XWing() : new DhkemX25519HkdfSha256();
}

function newAead(id: HpkeAeadId): AeadInterface {
  switch (id) {
    case HPKE_AEAD.AES_128_GCM:
      return new Aes128Gcm();
    case HPKE_AEAD.AES_256_GCM:
      return new Aes256Gcm();
    case HPKE_AEAD.EXPORT_ONLY:
      return new ExportOnly();
  }
}

/** Nenc and Npk of a KEM (RFC 9180 §7.1), which framing code needs before it has a suite. */
export function kemSizes(id: HpkeKemId): { readonly encSize: number; readonly publicKeySize: number } {
  const kem = newKem(id);
  return { encSize: kem.encSize, publicKeySize: kem.publicKeySize };
}

/** HpkeSuite.of's instances, one per supported (KEM, KDF, AEAD): a handful at most. */
const suiteCache = new Map<string, HpkeSuite>();

// Module-private accessors, assigned in the static blocks below: they let this module reach the
// classes' #private fields (the library objects and CryptoKeys) while nothing outside it can.
let cipherSuiteOf: (suite: HpkeSuite) => CipherSuite;

/**
 * One HPKE ciphersuite (KEM, KDF, AEAD), with the sizes of RFC 9180 §7 that framing code needs.
 * Build it with `HpkeSuite.of(ids)`, which refuses identifiers Tresor does not support.
 */
export class HpkeSuite {
  readonly kem: HpkeKemId;
  readonly kdf: HpkeKdfId;
  readonly aead: HpkeAeadId;
  /** Nenc: length of the encapsulated key. */
  readonly encSize: number;
  /** Npk: length of a serialised public key. */
  readonly publicKeySize: number;
  /** Nk: AEAD key length (0 for export-only). */
  readonly keySize: number;
  /** Nn: AEAD nonce length (0 for export-only). */
  readonly nonceSize: number;
  /** Nt: AEAD tag length (0 for export-only). */
  readonly tagSize: number;
  readonly #cipherSuite: CipherSuite;

  static {
    cipherSuiteOf = (suite) => suite.#cipherSuite;
  }

  private constructor(kem: HpkeKemId, kdf: HpkeKdfId, aead: HpkeAeadId) {
    this.kem = kem;
    this.kdf = kdf;
    this.aead = aead;
    const kemImpl = newKem(kem);
    const aeadImpl = newAead(aead);
    this.encSize = kemImpl.encSize;
    this.publicKeySize = kemImpl.publicKeySize;
    this.keySize = aeadImpl.keySize;
    this.nonceSize = aeadImpl.nonceSize;
    this.tagSize = aeadImpl.tagSize;
    this.#cipherSuite = new CipherSuite({ kem: kemImpl, kdf: new HkdfSha256(), aead: aeadImpl });
  }

  /** The suite for wire identifiers; HPKE_SUITE_UNSUPPORTED names the first one Tresor lacks. */
  static of(ids: HpkeSuiteIds = DEFAULT_HPKE_SUITE): HpkeSuite {
    const kem = requireKem(ids.kem);
    if (!isKdfId(ids.kdf)) {
      throw new TresorError(
        'HPKE_SUITE_UNSUPPORTED',
        `HPKE KDF ${hex16(ids.kdf)} is not supported (supported: 0x0001 HKDF-SHA256)`,
      );
    }
    if (!isAeadId(ids.aead)) {
      throw new TresorError(
        'HPKE_SUITE_UNSUPPORTED',
        `HPKE AEAD ${hex16(ids.aead)} is not supported (supported: 0x0002 AES-256-GCM, 0x0001 AES-128-GCM)`,
      );
    }
    // Suites are immutable and the library's CipherSuite holds no per-context state, so one
    // instance per identifier triple serves every request (building one costs tens of µs).
    const cacheKey = `${kem}/${ids.kdf}/${ids.aead}`;
    let suite = suiteCache.get(cacheKey);
    if (suite === undefined) {
      suite = new HpkeSuite(kem, ids.kdf, ids.aead);
      suiteCache.set(cacheKey, suite);
    }
    return suite;
  }

  /** True when the AEAD can Seal/Open (every supported AEAD except export-only). */
  get canEncrypt(): boolean {
    return this.aead !== HPKE_AEAD.EXPORT_ONLY;
  }

  toJSON(): { kem: HpkeKemId; kdf: HpkeKdfId; aead: HpkeAeadId } {
    return { kem: this.kem, kdf: this.kdf, aead: this.aead };
  }
}

function requireLength(what: string, bytes: Uint8Array, expected: number, kem: HpkeKemId): void {
  if (bytes.length !== expected) {
    throw new TresorError(
      'HPKE_KEY_INVALID',
      `an HPKE ${what} for KEM ${hex16(kem)} must be ${expected} bytes, not ${bytes.length}`,
    );
  }
}

let publicCryptoKeyOf: (key: HpkePublicKey) => CryptoKey;
let wrapPublicKey: (kem: HpkeKemId, key: CryptoKey) => Promise<HpkePublicKey>;

/** A recipient's public key (RFC 9180 §7.1.1 SerializePublicKey form), validated on import. */
export class HpkePublicKey {
  readonly kem: HpkeKemId;
  readonly #bytes: Uint8Array;
  readonly #key: CryptoKey;

  static {
    publicCryptoKeyOf = (key) => key.#key;
    // Wraps a key the KEM produced itself (generation, derivation, private key import).
    wrapPublicKey = async (kem, key) =>
      new HpkePublicKey(kem, new Uint8Array(await newKem(kem).serializePublicKey(key)), key);
  }

  private constructor(kem: HpkeKemId, bytes: Uint8Array, key: CryptoKey) {
    this.kem = kem;
    this.#bytes = bytes;
    this.#key = key;
  }

  /** Imports a raw public key; HPKE_KEY_INVALID for a wrong length or an unusable point. */
  static async fromBytes(kem: number, bytes: Uint8Array): Promise<HpkePublicKey> {
    const id = requireKem(kem);
    const impl = newKem(id);
    requireLength('public key', bytes, impl.publicKeySize, id);
    const copy = bytes.slice();
    try {
      return new HpkePublicKey(id, copy, await impl.deserializePublicKey(copy));
    } catch (cause) {
      throw new TresorError('HPKE_KEY_INVALID', `the HPKE public key is not a valid ${hex16(id)} key`, {
        cause,
      });
    }
  }

  /** A copy of the raw public key. */
  toBytes(): Uint8Array {
    return this.#bytes.slice();
  }

  toJSON(): { kem: HpkeKemId; publicKey: string } {
    return { kem: this.kem, publicKey: bytesToHex(this.#bytes) };
  }
}

let keyPairOf: (pair: HpkeKeyPair) => CryptoKeyPair;

/**
 * A KEM key pair. The private key stays inside: it is not enumerable, is left out of JSON and
 * `util.inspect`, and comes out as bytes only through `exportPrivateKey()` (for a key store).
 */
export class HpkeKeyPair {
  readonly kem: HpkeKemId;
  readonly publicKey: HpkePublicKey;
  readonly #pair: CryptoKeyPair;

  static {
    keyPairOf = (pair) => pair.#pair;
  }

  private constructor(kem: HpkeKemId, publicKey: HpkePublicKey, pair: CryptoKeyPair) {
    this.kem = kem;
    this.publicKey = publicKey;
    this.#pair = pair;
  }

  private static async wrap(kem: HpkeKemId, pair: CryptoKeyPair): Promise<HpkeKeyPair> {
    return new HpkeKeyPair(kem, await wrapPublicKey(kem, pair.publicKey), pair);
  }

  /** A fresh random key pair (RFC 9180 §4 GenerateKeyPair). */
  static async generate(kem: number = HPKE_KEM.X25519_HKDF_SHA256): Promise<HpkeKeyPair> {
    const id = requireKem(kem);
    return HpkeKeyPair.wrap(id, await newKem(id).generateKeyPair());
  }

  /** The deterministic key pair for `ikm` (RFC 9180 §7.1.3 DeriveKeyPair; X-Wing: SHAKE256 seed). */
  static async derive(kem: number, ikm: Uint8Array): Promise<HpkeKeyPair> {
    const id = requireKem(kem);
    if (ikm.length < 32) {
      // RFC 9180 §7.1.3: ikm SHOULD carry at least Nsk bytes of entropy.
      throw new TresorError('HPKE_KEY_INVALID', 'HPKE DeriveKeyPair needs at least 32 bytes of key material');
    }
    return HpkeKeyPair.wrap(id, await newKem(id).deriveKeyPair(ikm.slice()));
  }

  /** Rebuilds a key pair from its raw private key (as `exportPrivateKey()` wrote it). */
  static async fromPrivateKey(kem: number, privateKey: Uint8Array): Promise<HpkeKeyPair> {
    const id = requireKem(kem);
    const impl = newKem(id);
    requireLength('private key', privateKey, impl.privateKeySize, id);
    try {
      if (impl instanceof XWing) {
        // An X-Wing private key is the 32-byte seed both halves are expanded from. The library
        // keeps a view of the bytes it is given, so it gets a copy of its own.
        return await HpkeKeyPair.wrap(id, await impl.generateKeyPairDerand(privateKey.slice()));
      }
      const raw = privateKey.slice();
      try {
        const sk = await impl.deserializePrivateKey(raw);
        return await HpkeKeyPair.wrap(id, { privateKey: sk, publicKey: await x25519PublicKey(sk) });
      } finally {
        raw.fill(0); // WebCrypto imported its own copy (PKCS #8)
      }
    } catch (cause) {
      throw new TresorError('HPKE_KEY_INVALID', `the HPKE private key is not a valid ${hex16(id)} key`, {
        cause,
      });
    }
  }

  /** The raw private key (RFC 9180 §7.1.2 SerializePrivateKey). Store it only in a key store. */
  async exportPrivateKey(): Promise<Uint8Array> {
    // A copy: X-Wing would otherwise hand out a view of the key it keeps.
    return new Uint8Array(await newKem(this.kem).serializePrivateKey(this.#pair.privateKey)).slice();
  }

  toJSON(): { kem: HpkeKemId; publicKey: string } {
    return this.publicKey.toJSON();
  }
}

/** pk = X25519(sk, 9) (RFC 7748 §6.1), the one derivation every WebCrypto implementation allows. */
async function x25519PublicKey(privateKey: CryptoKey): Promise<CryptoKey> {
  const basePoint = new Uint8Array(32);
  basePoint[0] = 9;
  const base = await crypto.subtle.importKey('raw', basePoint, { name: 'X25519' }, true, []);
  const pk = await crypto.subtle.deriveBits({ name: 'X25519', public: base }, privateKey, 256);
  return crypto.subtle.importKey('raw', pk, { name: 'X25519' }, true, []);
}

/** A pre-shared key for the PSK modes (RFC 9180 §5.1.2). */
export interface HpkePsk {
  readonly id: Uint8Array;
  readonly key: Uint8Array;
}

/** Options for `setupSender`. Base mode unless `psk` and/or `senderKeyPair` are given. */
export interface HpkeSenderOptions {
  readonly psk?: HpkePsk;
  /** Authenticates the sender (Auth modes, RFC 9180 §5.1.3). */
  readonly senderKeyPair?: HpkeKeyPair;
  /**
   * FOR KNOWN-ANSWER TESTS ONLY: fixes the ephemeral key (a key pair, or the IKM of DeriveKeyPair
   * for DHKEM, or X-Wing's 64-byte encapsulation seed). Reusing an ephemeral key reuses the
   * shared secret, so production code never sets this.
   */
  readonly testEphemeralKey?: HpkeKeyPair | Uint8Array;
}

/** Options for `setupRecipient`, matching the sender's mode. */
export interface HpkeRecipientOptions {
  readonly psk?: HpkePsk;
  readonly senderPublicKey?: HpkePublicKey;
}

function requireSameKem(suite: HpkeSuite, kem: HpkeKemId): void {
  if (suite.kem !== kem) {
    throw new TresorError(
      'HPKE_KEY_INVALID',
      `the key is for KEM ${hex16(kem)} but the suite uses KEM ${hex16(suite.kem)}`,
    );
  }
}

let newSenderContext: (suite: HpkeSuite, context: SenderContext) => HpkeSenderContext;
let newRecipientContext: (suite: HpkeSuite, context: RecipientContext) => HpkeRecipientContext;

/**
 * The sending side of an HPKE context (RFC 9180 §5.2): Seal in sequence, Export secrets.
 * Tresor uses HPKE only to carry OHTTP messages, so failures carry OHTTP codes.
 */
export class HpkeSenderContext {
  readonly suite: HpkeSuite;
  /** The encapsulated key to send to the recipient. */
  readonly enc: Uint8Array;
  readonly #context: SenderContext;

  static {
    newSenderContext = (suite, context) => new HpkeSenderContext(suite, context);
  }

  private constructor(suite: HpkeSuite, context: SenderContext) {
    this.suite = suite;
    this.enc = new Uint8Array(context.enc);
    this.#context = context;
  }

  /** Seals the next message; the nonce comes from the context's sequence number (§5.2). */
  async seal(plaintext: Uint8Array, aad: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
    try {
      return new Uint8Array(await this.#context.seal(plaintext, aad));
    } catch (cause) {
      throw new TresorError('INTERNAL_ERROR', 'HPKE Seal failed', { cause });
    }
  }

  /** RFC 9180 §5.3 Export. */
  async export(exporterContext: Uint8Array, length: number): Promise<Uint8Array> {
    return exportSecret(this.#context, exporterContext, length);
  }
}

/** The receiving side of an HPKE context: Open in sequence, Export secrets. */
export class HpkeRecipientContext {
  readonly suite: HpkeSuite;
  readonly #context: RecipientContext;

  static {
    newRecipientContext = (suite, context) => new HpkeRecipientContext(suite, context);
  }

  private constructor(suite: HpkeSuite, context: RecipientContext) {
    this.suite = suite;
    this.#context = context;
  }

  /** Opens the next message; OHTTP_DECRYPT_FAILED when it does not authenticate. */
  async open(ciphertext: Uint8Array, aad: Uint8Array = new Uint8Array(0)): Promise<Uint8Array> {
    try {
      return new Uint8Array(await this.#context.open(ciphertext, aad));
    } catch (cause) {
      throw new TresorError(
        'OHTTP_DECRYPT_FAILED',
        'HPKE Open failed: the ciphertext was altered, reordered or sealed to another key',
        { cause },
      );
    }
  }

  /** RFC 9180 §5.3 Export. */
  async export(exporterContext: Uint8Array, length: number): Promise<Uint8Array> {
    return exportSecret(this.#context, exporterContext, length);
  }
}

async function exportSecret(
  context: SenderContext | RecipientContext,
  exporterContext: Uint8Array,
  length: number,
): Promise<Uint8Array> {
  try {
    return new Uint8Array(await context.export(exporterContext, length));
  } catch (cause) {
    throw new TresorError('INTERNAL_ERROR', 'HPKE Export failed', { cause });
  }
}

/**
 * For platform HPKE implementations inside this package only (src/node: base mode on
 * node:crypto, OhttpHpkeBackend), not exported from the package index: a context with the HPKE
 * library's interface wrapped like the library's own, and the CryptoKeys of a key pair.
 */
export function wrapHpkeSenderContext(suite: HpkeSuite, context: SenderContext): HpkeSenderContext {
  return newSenderContext(suite, context);
}
export function wrapHpkeRecipientContext(suite: HpkeSuite, context: RecipientContext): HpkeRecipientContext {
  return newRecipientContext(suite, context);
}
export function cryptoKeyPairOf(pair: HpkeKeyPair): CryptoKeyPair {
  return keyPairOf(pair);
}

/** SetupBaseS / SetupPSKS / SetupAuthS / SetupAuthPSKS (RFC 9180 §5.1) to `recipient`. */
export async function setupSender(
  suite: HpkeSuite,
  recipient: HpkePublicKey,
  info: Uint8Array,
  options: HpkeSenderOptions = {},
): Promise<HpkeSenderContext> {
  requireSameKem(suite, recipient.kem);
  const ephemeral = options.testEphemeralKey;
  try {
    const context = await cipherSuiteOf(suite).createSenderContext({
      recipientPublicKey: publicCryptoKeyOf(recipient),
      info,
      ...(options.psk === undefined ? {} : { psk: { id: options.psk.id, key: options.psk.key } }),
      ...(options.senderKeyPair === undefined ? {} : { senderKey: keyPairOf(options.senderKeyPair) }),
      ...(ephemeral === undefined
        ? {}
        : { ekm: ephemeral instanceof HpkeKeyPair ? keyPairOf(ephemeral) : ephemeral }),
    });
    return newSenderContext(suite, context);
  } catch (cause) {
    // Encap fails only when DH with the recipient key yields the all-zero value (RFC 9180
    // §7.1.4) or the key is otherwise unusable: the key configuration is bad.
    throw new TresorError('HPKE_KEY_INVALID', 'HPKE encapsulation to the recipient public key failed', {
      cause,
    });
  }
}

/** SetupBaseR and the other modes (RFC 9180 §5.1) with `keyPair` for the received `enc`. */
export async function setupRecipient(
  suite: HpkeSuite,
  keyPair: HpkeKeyPair,
  enc: Uint8Array,
  info: Uint8Array,
  options: HpkeRecipientOptions = {},
): Promise<HpkeRecipientContext> {
  requireSameKem(suite, keyPair.kem);
  if (enc.length !== suite.encSize) {
    throw new TresorError(
      'OHTTP_MESSAGE_MALFORMED',
      `the encapsulated key must be ${suite.encSize} bytes, not ${enc.length}`,
    );
  }
  try {
    const context = await cipherSuiteOf(suite).createRecipientContext({
      recipientKey: keyPairOf(keyPair),
      enc,
      info,
      ...(options.psk === undefined ? {} : { psk: { id: options.psk.id, key: options.psk.key } }),
      ...(options.senderPublicKey === undefined
        ? {}
        : { senderPublicKey: publicCryptoKeyOf(options.senderPublicKey) }),
    });
    return newRecipientContext(suite, context);
  } catch (cause) {
    // A low-order or otherwise invalid `enc` fails Decap (RFC 9180 §7.1.4): nothing can be
    // decrypted, exactly as if the message had been sealed to another key.
    throw new TresorError('OHTTP_DECRYPT_FAILED', 'HPKE decapsulation of the encapsulated key failed', {
      cause,
    });
  }
}
