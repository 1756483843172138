import {
  createCipheriv,
  createDecipheriv,
  createPrivateKey,
  createPublicKey,
  diffieHellman,
  KeyObject,
  randomBytes,
} from 'node:crypto';
import type { RecipientContext, SenderContext } from '@hpke/core';
import { TresorError } from '@tresor/protocol';
import {
  cryptoKeyPairOf,
  HPKE_AEAD,
  HPKE_KEM,
  HpkeKeyPair,
  wrapHpkeRecipientContext,
  wrapHpkeSenderContext,
  type HpkeRecipientContext,
  type HpkeSenderContext,
  type HpkeSuite,
} from '../hpke.js';
import type { OhttpHpkeBackend } from '../ohttp-aead.js';
import { hkdfExpand, hkdfExtract } from './hkdf-sha256.js';

/**
 * HPKE base mode (RFC 9180 §4.1, §5.1.1, §5.2, §5.3) for DHKEM(X25519, HKDF-SHA256),
 * HKDF-SHA256 and AES-128/256-GCM on node:crypto, synchronously. The HPKE library runs the same
 * key agreement and key schedule as about twenty WebCrypto jobs per request (HMAC imports and
 * signatures, X25519), each a thread-pool round trip; here they are plain calls (two X25519
 * operations and a dozen HMACs). Other suites (X-Wing, export-only) and the IKM form of test
 * ephemeral keys go to the library. The RFC 9180 vectors and a round trip against the library
 * check it (hpke-x25519.test.ts).
 */

const EMPTY = new Uint8Array(0);
const HPKE_V1 = Buffer.from('HPKE-v1');
const NH = 32; // SHA-256
const encoder = new TextEncoder();

function i2osp(value: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let rest = value;
  for (let i = length - 1; i >= 0 && rest > 0; i--) {
    out[i] = rest & 0xff;
    rest = Math.floor(rest / 256);
  }
  return out;
}

/** The labels of RFC 9180 as bytes, encoded once (a fixed handful). */
const labels = new Map<string, Uint8Array>();
function labelBytes(label: string): Uint8Array {
  let bytes = labels.get(label);
  if (bytes === undefined) {
    bytes = encoder.encode(label);
    labels.set(label, bytes);
  }
  return bytes;
}

/** The two-byte I2OSP(L, 2) prefixes of LabeledExpand for the lengths the schedule asks for. */
const lengthPrefixes = new Map<number, Buffer>();
function lengthPrefix(length: number): Buffer {
  let prefix = lengthPrefixes.get(length);
  if (prefix === undefined) {
    prefix = i2osp(length, 2);
    if (lengthPrefixes.size < 64) lengthPrefixes.set(length, prefix);
  }
  return prefix;
}

/**
 * RFC 9180 §4 LabeledExtract / LabeledExpand under `suiteId`. The labeled input is handed to the
 * HMAC in its parts rather than concatenated first.
 */
function labeledExtract(suiteId: Buffer, salt: Uint8Array, label: string, ikm: Uint8Array): Buffer {
  return hkdfExtract(salt, HPKE_V1, suiteId, labelBytes(label), ikm);
}
function labeledExpand(
  suiteId: Buffer,
  prk: Uint8Array,
  label: string,
  info: Uint8Array,
  length: number,
): Buffer {
  return hkdfExpand(prk, [lengthPrefix(length), HPKE_V1, suiteId, labelBytes(label), info], length);
}

const KEM_SUITE_ID = Buffer.concat([Buffer.from('KEM'), i2osp(HPKE_KEM.X25519_HKDF_SHA256, 2)]);

// Raw X25519 keys go in and out as JWK (RFC 8037 "OKP"): Node maps that straight to OpenSSL's raw
// key functions, while DER (SPKI) runs OpenSSL 3's decoder/encoder machinery, about 5x slower per
// call (measured: ~110 µs against ~20 µs to import, 115 against 1.5 µs to export, under load).
function x25519PublicKey(raw: Uint8Array): KeyObject {
  return createPublicKey({
    key: {
      kty: 'OKP',
      crv: 'X25519',
      x: Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('base64url'),
    },
    format: 'jwk',
  });
}

// Recipient public keys seen by senders: a gateway seals every request to the few keys its
// replicas' evidence binds, so re-importing one per request is wasted work (~1.5 % of gateway CPU).
// Small and bounded: least recently used key out first. Ephemeral `enc` keys are never cached.
const RECIPIENT_KEY_CACHE_SIZE = 16;
const recipientKeys = new Map<string, KeyObject>();

/** The KeyObject of a recipient's raw X25519 public key, from a small LRU cache. */
export function cachedX25519PublicKey(raw: Uint8Array): KeyObject {
  const id = Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('hex');
  let key = recipientKeys.get(id);
  if (key !== undefined) {
    recipientKeys.delete(id);
  } else {
    key = x25519PublicKey(raw);
    if (recipientKeys.size >= RECIPIENT_KEY_CACHE_SIZE) {
      const oldest = recipientKeys.keys().next();
      if (oldest.done !== true) recipientKeys.delete(oldest.value);
    }
  }
  recipientKeys.set(id, key);
  return key;
}

/** How many recipient keys the cache holds (for tests). */
export function cachedX25519PublicKeyCount(): number {
  return recipientKeys.size;
}

function rawPublicKey(key: KeyObject): Buffer {
  const { x } = key.export({ format: 'jwk' });
  if (typeof x !== 'string') throw new Error('an X25519 public key exported no "x"');
  return Buffer.from(x, 'base64url');
}

/**
 * A fresh X25519 key pair (RFC 9180 GenerateKeyPair: any 32 random bytes are a private key, the
 * function clamps them), made without node:crypto's key generation. In Node 20 every
 * `generateKeyPair[Sync]` leaves a job object for V8 to collect, and the job's destructor takes
 * the generated key's mutex; exporting that key to JWK holds the same mutex while it allocates
 * strings. When the allocation triggers a collection that frees the job, the thread waits on a
 * mutex it holds itself, for ever: a gateway and a load generator stopped for good under
 * concurrency-64 load (gdb: KeyObjectHandle::ExportJWK → ExportJWKEdKey → GC →
 * ~KeyGenJob → pthread_mutex_lock), within seconds with a small young generation. Importing the
 * bytes creates no job (OpenSSL derives the public key at import); the export below then runs
 * with no other owner of the key's mutex alive or dying. hpke-x25519.test.ts reproduces both.
 */
function generateX25519KeyPair(): { readonly privateKey: KeyObject; readonly publicKey: Buffer } {
  const d = randomBytes(32);
  // JWK as everywhere here (see x25519PublicKey): `x` must be a string and is not read for a
  // private key; the public key is OpenSSL's own, derived from `d`.
  const privateKey = createPrivateKey({
    key: { kty: 'OKP', crv: 'X25519', d: d.toString('base64url'), x: '' },
    format: 'jwk',
  });
  d.fill(0);
  return { privateKey, publicKey: rawPublicKey(createPublicKey(privateKey)) };
}

/** DH then ExtractAndExpand (RFC 9180 §4.1); an all-zero DH output is refused (§7.1.4). */
function sharedSecret(privateKey: KeyObject, publicKey: KeyObject, kemContext: Uint8Array): Buffer {
  const dh = diffieHellman({ privateKey, publicKey });
  if (dh.every((b) => b === 0)) throw new Error('X25519 produced the all-zero value');
  const eaePrk = labeledExtract(KEM_SUITE_ID, EMPTY, 'eae_prk', dh);
  dh.fill(0);
  return labeledExpand(KEM_SUITE_ID, eaePrk, 'shared_secret', kemContext, NH);
}

/** The key, base nonce and exporter secret of KeySchedule (RFC 9180 §5.1, mode_base). */
interface ScheduledKeys {
  readonly algorithm: 'aes-128-gcm' | 'aes-256-gcm';
  readonly key: Buffer;
  readonly baseNonce: Buffer;
  readonly exporterSecret: Buffer;
  readonly suiteId: Buffer;
}

/**
 * mode_base || psk_id_hash || info_hash (RFC 9180 §5.1). Nothing in it is secret and OHTTP's
 * `info` is fixed per key configuration and message type, so it is computed once per suite and
 * info (a bounded cache: a gateway has a few keys and two labels).
 */
const scheduleContexts = new Map<string, Buffer>();
function keyScheduleContext(suiteId: Buffer, info: Uint8Array): Buffer {
  const cacheKey = `${suiteId.toString('hex')}/${Buffer.from(info.buffer, info.byteOffset, info.length).toString('hex')}`;
  let context = scheduleContexts.get(cacheKey);
  if (context === undefined) {
    const pskIdHash = labeledExtract(suiteId, EMPTY, 'psk_id_hash', EMPTY);
    const infoHash = labeledExtract(suiteId, EMPTY, 'info_hash', info);
    context = Buffer.concat([Buffer.from([0]), pskIdHash, infoHash]);
    if (scheduleContexts.size >= 64) scheduleContexts.clear();
    scheduleContexts.set(cacheKey, context);
  }
  return context;
}

/** suite_id = "HPKE" || I2OSP(kem_id, 2) || I2OSP(kdf_id, 2) || I2OSP(aead_id, 2) (RFC 9180 §5.1), once per suite. */
const suiteIds = new Map<number, Buffer>();
function suiteIdOf(suite: HpkeSuite): Buffer {
  const key = suite.kem * 2 ** 32 + suite.kdf * 2 ** 16 + suite.aead;
  let suiteId = suiteIds.get(key);
  if (suiteId === undefined) {
    suiteId = Buffer.concat([
      Buffer.from('HPKE'),
      i2osp(suite.kem, 2),
      i2osp(suite.kdf, 2),
      i2osp(suite.aead, 2),
    ]);
    suiteIds.set(key, suiteId);
  }
  return suiteId;
}

function keySchedule(suite: HpkeSuite, shared: Buffer, info: Uint8Array): ScheduledKeys {
  const suiteId = suiteIdOf(suite);
  const context = keyScheduleContext(suiteId, info);
  const secret = labeledExtract(suiteId, shared, 'secret', EMPTY);
  shared.fill(0);
  return {
    algorithm: suite.keySize === 16 ? 'aes-128-gcm' : 'aes-256-gcm',
    key: labeledExpand(suiteId, secret, 'key', context, suite.keySize),
    baseNonce: labeledExpand(suiteId, secret, 'base_nonce', context, suite.nonceSize),
    exporterSecret: labeledExpand(suiteId, secret, 'exp', context, NH),
    suiteId,
  };
}

/** An encryption context (RFC 9180 §5.2) with the HPKE library's interface. */
class NodeHpkeContext implements SenderContext, RecipientContext {
  readonly enc: ArrayBuffer;
  readonly #keys: ScheduledKeys;
  #seq = 0;

  constructor(keys: ScheduledKeys, enc: Uint8Array) {
    this.#keys = keys;
    this.enc = new Uint8Array(enc).buffer;
  }

  #nonce(): Buffer {
    if (this.#seq >= Number.MAX_SAFE_INTEGER) throw new Error('HPKE sequence number overflow');
    const nonce = Buffer.from(this.#keys.baseNonce);
    const seq = i2osp(this.#seq, nonce.length);
    for (let i = 0; i < nonce.length; i++) nonce[i]! ^= seq[i]!;
    return nonce;
  }

  seal(
    data: ArrayBufferLike | ArrayBufferView,
    aad: ArrayBufferLike | ArrayBufferView = EMPTY,
  ): Promise<ArrayBuffer> {
    return settle(() => {
      const cipher = createCipheriv(this.#keys.algorithm, this.#keys.key, this.#nonce(), {
        authTagLength: 16,
      });
      cipher.setAAD(bytesOf(aad));
      const sealed = Buffer.concat([cipher.update(bytesOf(data)), cipher.final(), cipher.getAuthTag()]);
      this.#seq++;
      return copyOut(sealed);
    });
  }

  open(
    data: ArrayBufferLike | ArrayBufferView,
    aad: ArrayBufferLike | ArrayBufferView = EMPTY,
  ): Promise<ArrayBuffer> {
    return settle(() => {
      const bytes = bytesOf(data);
      if (bytes.length < 16) throw new Error('the ciphertext is shorter than an AES-GCM tag');
      const decipher = createDecipheriv(this.#keys.algorithm, this.#keys.key, this.#nonce(), {
        authTagLength: 16,
      });
      decipher.setAAD(bytesOf(aad));
      decipher.setAuthTag(bytes.subarray(bytes.length - 16));
      const plaintext = decipher.update(bytes.subarray(0, bytes.length - 16));
      decipher.final(); // verifies the tag; the sequence number advances only after success
      this.#seq++;
      return copyOut(plaintext);
    });
  }

  export(exporterContext: ArrayBufferLike | ArrayBufferView, length: number): Promise<ArrayBuffer> {
    return settle(() => {
      if (!Number.isSafeInteger(length) || length < 1 || length > 255 * NH) {
        throw new RangeError(`an HPKE export length must be 1..${255 * NH}`);
      }
      const keys = this.#keys;
      return copyOut(
        labeledExpand(keys.suiteId, keys.exporterSecret, 'sec', bytesOf(exporterContext), length),
      );
    });
  }
}

/** The library's interface is promise-based: a synchronous result or throw, as a promise. */
function settle<T>(run: () => T): Promise<T> {
  return new Promise((resolve) => {
    resolve(run());
  });
}

function bytesOf(value: ArrayBufferLike | ArrayBufferView): Uint8Array {
  return ArrayBuffer.isView(value)
    ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
    : new Uint8Array(value);
}

/** A fresh ArrayBuffer holding exactly `bytes` (a Buffer may sit in a shared pool). */
function copyOut(bytes: Uint8Array): ArrayBuffer {
  return new Uint8Array(bytes).buffer;
}

function handles(suite: HpkeSuite): boolean {
  return (
    suite.kem === HPKE_KEM.X25519_HKDF_SHA256 &&
    (suite.aead === HPKE_AEAD.AES_128_GCM || suite.aead === HPKE_AEAD.AES_256_GCM)
  );
}

/** The X25519 private key of a key pair as a KeyObject (cached: the gateway's key serves every request). */
const privateKeys = new WeakMap<HpkeKeyPair, { readonly key: KeyObject; readonly publicKey: Uint8Array }>();
function privateKeyOf(pair: HpkeKeyPair): { readonly key: KeyObject; readonly publicKey: Uint8Array } {
  let entry = privateKeys.get(pair);
  if (entry === undefined) {
    entry = { key: KeyObject.from(cryptoKeyPairOf(pair).privateKey), publicKey: pair.publicKey.toBytes() };
    privateKeys.set(pair, entry);
  }
  return entry;
}

function setupBaseSender(
  suite: HpkeSuite,
  recipientPublicKey: Uint8Array,
  info: Uint8Array,
  ephemeral: HpkeKeyPair | Uint8Array | undefined,
): HpkeSenderContext | undefined {
  if (!handles(suite) || ephemeral instanceof Uint8Array) return undefined;
  if (recipientPublicKey.length !== suite.publicKeySize) {
    throw new TresorError(
      'HPKE_KEY_INVALID',
      `an HPKE public key for KEM 0x0020 must be 32 bytes, not ${recipientPublicKey.length}`,
    );
  }
  try {
    const pkR = cachedX25519PublicKey(recipientPublicKey);
    let skE: KeyObject;
    let enc: Uint8Array;
    if (ephemeral === undefined) {
      ({ privateKey: skE, publicKey: enc } = generateX25519KeyPair());
    } else {
      ({ key: skE, publicKey: enc } = privateKeyOf(ephemeral));
    }
    const shared = sharedSecret(skE, pkR, Buffer.concat([enc, recipientPublicKey]));
    return wrapHpkeSenderContext(suite, new NodeHpkeContext(keySchedule(suite, shared, info), enc));
  } catch (cause) {
    throw new TresorError('HPKE_KEY_INVALID', 'HPKE encapsulation to the recipient public key failed', {
      cause,
    });
  }
}

function setupBaseRecipient(
  suite: HpkeSuite,
  keyPair: HpkeKeyPair,
  enc: Uint8Array,
  info: Uint8Array,
): HpkeRecipientContext | undefined {
  if (!handles(suite) || keyPair.kem !== HPKE_KEM.X25519_HKDF_SHA256) return undefined;
  if (enc.length !== suite.encSize) {
    throw new TresorError(
      'OHTTP_MESSAGE_MALFORMED',
      `the encapsulated key must be ${suite.encSize} bytes, not ${enc.length}`,
    );
  }
  try {
    const { key: skR, publicKey: pkRm } = privateKeyOf(keyPair);
    const shared = sharedSecret(skR, x25519PublicKey(enc), Buffer.concat([enc, pkRm]));
    return wrapHpkeRecipientContext(suite, new NodeHpkeContext(keySchedule(suite, shared, info), enc));
  } catch (cause) {
    // As in setupRecipient: an unusable `enc` means nothing can be decrypted (RFC 9180 §7.1.4).
    throw new TresorError('OHTTP_DECRYPT_FAILED', 'HPKE decapsulation of the encapsulated key failed', {
      cause,
    });
  }
}

/** HPKE base-mode setup for OHTTP requests on node:crypto (part of `nodeOhttpAead`). */
export const nodeOhttpHpke: OhttpHpkeBackend = Object.freeze({ setupBaseSender, setupBaseRecipient });
