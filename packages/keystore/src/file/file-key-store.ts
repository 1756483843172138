import {
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  generateKeyPairSync,
  randomBytes,
  sign as nodeSign,
  type KeyObject,
} from 'node:crypto';
import { promisify } from 'node:util';
import { TresorError } from '@tresor/protocol';
import { aesKeyUnwrap, aesKeyWrap } from '../aes-key-wrap.js';
import { IMPORT_KEY_BITS, importParametersFor, unwrapImportPayload, type ImportParameters } from '../byok.js';
import { curveFor } from '../ec-keys.js';
import { requireDataKeyLength, requireNotDestroyed, requireUsable } from '../key-access.js';
import { newKeyId, type KeyId } from '../key-id.js';
import { checkLabel } from '../key-metadata.js';
import type {
  CreateKeyOptions,
  EcPublicJwk,
  KeyKind,
  KeyMetadata,
  KeyStore,
  SigningAlgorithm,
} from '../key-store.js';
import { SecretKeyBytes } from '../secret-key-bytes.js';
import { WRAPPED_DATA_KEY_LENGTH, type WrappedKey } from '../wrapped-key.js';
import {
  EMPTY_KEY_SET,
  parseKeySet,
  serializeKeySet,
  type FileKeyEntry,
  type FileKeySet,
} from './key-set.js';
import {
  deriveSealingKey,
  newScryptParameters,
  openEnvelope,
  readEnvelope,
  writeEnvelope,
  type FileSealingKey,
} from './sealed-file.js';

/** `production` makes the file keystore refuse to start: production keys belong in an HSM or KYOK. */
export type DeploymentMode = 'development' | 'production';

export interface FileKeyStoreOptions {
  readonly path: string;
  readonly passphrase: SecretKeyBytes;
  readonly mode: DeploymentMode;
  /** Create an empty keystore when the file does not exist (otherwise INPUT_UNREADABLE). */
  readonly createIfMissing?: boolean;
  /** scrypt cost for a new file, log2(N) from 14 to 20; default 17 (see sealed-file.ts). */
  readonly scryptLog2N?: number;
  readonly now?: () => Date;
}

const MIN_PASSPHRASE_BYTES = 8;
const generateKeyPairAsync = promisify(generateKeyPair);

/**
 * Keys for local use, sealed in one 0600 file under a passphrase-derived key. Key material is held
 * in memory as SecretKeyBytes while the store is open; every change rewrites the file atomically.
 * One process writes a given file at a time (changes inside the process are serialised).
 */
export class FileKeyStore implements KeyStore {
  readonly backend = 'file' as const;
  readonly #path: string;
  readonly #sealing: FileSealingKey;
  readonly #now: () => Date;
  #set: FileKeySet;
  #writes: Promise<unknown> = Promise.resolve();
  #closed = false;
  /**
   * Parsed private keys, by the material they were made from. Parsing PKCS#8 DER into a KeyObject
   * costs more than the ECDSA signature itself, and the trust service signs a token per
   * attestation. An entry is only reached after `#usable` has checked the key's current state, so a
   * disabled key refuses at once; destroy and close drop entries together with the material.
   */
  #privateKeys = new Map<SecretKeyBytes, KeyObject>();

  private constructor(path: string, sealing: FileSealingKey, set: FileKeySet, now: () => Date) {
    this.#path = path;
    this.#sealing = sealing;
    this.#set = set;
    this.#now = now;
  }

  static async open(options: FileKeyStoreOptions): Promise<FileKeyStore> {
    if (options.mode === 'production') {
      throw new TresorError(
        'KEYSTORE_PRODUCTION_REFUSED',
        'the file keystore protects keys with a passphrase only; it does not run in production mode',
      );
    }
    if (options.passphrase.length < MIN_PASSPHRASE_BYTES) {
      throw new TresorError(
        'CONFIG_INVALID',
        `the keystore passphrase must be at least ${MIN_PASSPHRASE_BYTES} bytes`,
      );
    }
    const now = options.now ?? (() => new Date());
    const envelope = await readEnvelope(options.path);
    if (envelope === null) {
      if (options.createIfMissing !== true) {
        throw new TresorError('INPUT_UNREADABLE', `no keystore file at ${options.path}`);
      }
      const sealing = await deriveSealingKey(options.passphrase, newScryptParameters(options.scryptLog2N));
      const store = new FileKeyStore(options.path, sealing, EMPTY_KEY_SET, now);
      await store.#persist(EMPTY_KEY_SET);
      return store;
    }
    const sealing = await deriveSealingKey(options.passphrase, envelope.kdf);
    let plaintext: Uint8Array | undefined;
    try {
      plaintext = openEnvelope(envelope, sealing);
      return new FileKeyStore(options.path, sealing, parseKeySet(plaintext), now);
    } catch (err) {
      sealing.key.dispose();
      throw err;
    } finally {
      plaintext?.fill(0);
    }
  }

  async createKek(options: CreateKeyOptions = {}): Promise<KeyMetadata> {
    const label = checkLabel(options.label);
    return this.#add('kek', 'A256KW', SecretKeyBytes.takeFrom(randomBytes(32)), 'generated', label);
  }

  async createSigningKey(algorithm: SigningAlgorithm, options: CreateKeyOptions = {}): Promise<KeyMetadata> {
    const label = checkLabel(options.label);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: curveFor(algorithm).namedCurve });
    const der = privateKey.export({ format: 'der', type: 'pkcs8' });
    return this.#add('signing', algorithm, SecretKeyBytes.takeFrom(der), 'generated', label);
  }

  async importParameters(): Promise<ImportParameters> {
    const key = await this.#importKey();
    return importParametersFor(createPublicKey(key), 'RSA_AES_KEY_WRAP_SHA_256');
  }

  async importKek(wrappedKeyMaterial: Uint8Array, options: CreateKeyOptions = {}): Promise<KeyMetadata> {
    const label = checkLabel(options.label);
    const importKey = await this.#importKey();
    const kek = unwrapImportPayload(importKey, wrappedKeyMaterial, 'RSA_AES_KEY_WRAP_SHA_256');
    return this.#add('kek', 'A256KW', kek, 'imported', label);
  }

  async wrapKey(kekId: KeyId, dataKey: SecretKeyBytes): Promise<WrappedKey> {
    const entry = this.#usable(kekId, 'kek');
    requireDataKeyLength(dataKey.length);
    const ciphertext = entry.material.expose((kek) => dataKey.expose((dk) => aesKeyWrap(kek, dk)));
    return Promise.resolve({ kekId, algorithm: 'A256KW', ciphertext });
  }

  async unwrapKey(wrapped: WrappedKey): Promise<SecretKeyBytes> {
    const entry = this.#usable(wrapped.kekId, 'kek');
    if (wrapped.ciphertext.length !== WRAPPED_DATA_KEY_LENGTH) {
      throw new TresorError('KEY_UNWRAP_FAILED', `a wrapped data key is ${WRAPPED_DATA_KEY_LENGTH} bytes`);
    }
    const plain = entry.material.expose((kek) => aesKeyUnwrap(kek, wrapped.ciphertext));
    return Promise.resolve(SecretKeyBytes.takeFrom(plain));
  }

  async sign(keyId: KeyId, message: Uint8Array): Promise<Uint8Array> {
    const entry = this.#usable(keyId, 'signing');
    const curve = curveFor(entry.meta.algorithm as SigningAlgorithm);
    const signature = nodeSign(curve.hash, message, {
      key: this.#privateKey(entry.material),
      dsaEncoding: 'ieee-p1363',
    });
    return Promise.resolve(new Uint8Array(signature));
  }

  async publicKey(keyId: KeyId): Promise<EcPublicJwk> {
    const entry = this.#entry(keyId);
    requireNotDestroyed(entry.meta);
    if (entry.meta.kind !== 'signing') {
      throw new TresorError(
        'KEY_USAGE_INVALID',
        `key ${keyId} is a key-encryption key; it has no public key`,
      );
    }
    const jwk = createPublicKey(privateKeyOf(entry)).export({ format: 'jwk' });
    const curve = curveFor(entry.meta.algorithm as SigningAlgorithm);
    if (typeof jwk.x !== 'string' || typeof jwk.y !== 'string') {
      throw new TresorError('INTERNAL_ERROR', 'the EC public key has no coordinates');
    }
    return Promise.resolve({
      kty: 'EC',
      crv: curve.crv,
      x: jwk.x,
      y: jwk.y,
      kid: keyId,
      alg: curve.algorithm,
      use: 'sig',
    });
  }

  async describe(keyId: KeyId): Promise<KeyMetadata> {
    return Promise.resolve(this.#entry(keyId).meta);
  }

  async list(): Promise<readonly KeyMetadata[]> {
    this.#open();
    return Promise.resolve([...this.#set.keys.values()].map((e) => e.meta));
  }

  async disable(keyId: KeyId): Promise<KeyMetadata> {
    return this.#setState(keyId, 'disabled');
  }

  async enable(keyId: KeyId): Promise<KeyMetadata> {
    return this.#setState(keyId, 'enabled');
  }

  async destroy(keyId: KeyId): Promise<KeyMetadata> {
    return this.#change((set) => {
      const entry = entryIn(set, keyId);
      if (entry.meta.state === 'destroyed') return { set, result: entry.meta };
      const meta: KeyMetadata = { ...entry.meta, state: 'destroyed' };
      const next = withEntry(set, { meta, material: null });
      return {
        set: next,
        result: meta,
        // The material is zeroed only once the file no longer holds it.
        after: () => {
          if (entry.material !== null) this.#privateKeys.delete(entry.material);
          entry.material?.dispose();
        },
      };
    });
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#writes.catch(() => undefined);
    this.#closed = true;
    this.#privateKeys = new Map();
    for (const entry of this.#set.keys.values()) entry.material?.dispose();
    this.#set.importKey?.dispose();
    this.#sealing.key.dispose();
  }

  #open(): void {
    if (this.#closed) throw new TresorError('KEYSTORE_UNAVAILABLE', 'the file keystore is closed');
  }

  #entry(keyId: KeyId): FileKeyEntry {
    this.#open();
    return entryIn(this.#set, keyId);
  }

  #privateKey(material: SecretKeyBytes): KeyObject {
    let key = this.#privateKeys.get(material);
    if (key === undefined) {
      key = material.expose((der) => createPrivateKey(pkcs8(der)));
      this.#privateKeys.set(material, key);
    }
    return key;
  }

  #usable(keyId: KeyId, kind: KeyKind): FileKeyEntry & { readonly material: SecretKeyBytes } {
    const entry = this.#entry(keyId);
    requireUsable(entry.meta, kind);
    if (entry.material === null) throw new TresorError('KEY_DESTROYED', `key ${keyId} was destroyed`);
    return { meta: entry.meta, material: entry.material };
  }

  async #setState(keyId: KeyId, state: 'enabled' | 'disabled'): Promise<KeyMetadata> {
    return this.#change((set) => {
      const entry = entryIn(set, keyId);
      requireNotDestroyed(entry.meta);
      const meta: KeyMetadata = { ...entry.meta, state };
      return { set: withEntry(set, { meta, material: entry.material }), result: meta };
    });
  }

  async #add(
    kind: KeyKind,
    algorithm: KeyMetadata['algorithm'],
    material: SecretKeyBytes,
    origin: KeyMetadata['origin'],
    label: string,
  ): Promise<KeyMetadata> {
    const meta: KeyMetadata = {
      id: newKeyId(kind === 'kek' ? 'kek' : 'sig'),
      kind,
      algorithm,
      state: 'enabled',
      origin,
      created: this.#now().toISOString(),
      label,
    };
    try {
      return await this.#change((set) => ({ set: withEntry(set, { meta, material }), result: meta }));
    } catch (err) {
      material.dispose();
      throw err;
    }
  }

  /** The RSA import key, created (and persisted) on first use. */
  async #importKey(): Promise<KeyObject> {
    this.#open();
    const existing = this.#set.importKey;
    if (existing !== null) return existing.expose((der) => createPrivateKey(pkcs8(der)));
    await this.#change(async (set) => {
      if (set.importKey !== null) return { set, result: undefined };
      const { privateKey } = await generateKeyPairAsync('rsa', { modulusLength: IMPORT_KEY_BITS });
      const der = SecretKeyBytes.takeFrom(privateKey.export({ format: 'der', type: 'pkcs8' }));
      return { set: { keys: set.keys, importKey: der }, result: undefined };
    });
    const created = this.#set.importKey;
    if (created === null) throw new TresorError('INTERNAL_ERROR', 'the import key was not created');
    return created.expose((der) => createPrivateKey(pkcs8(der)));
  }

  /**
   * Applies one change: computes the next key set, writes it, and only then makes it current, so a
   * failed write leaves memory and disk in agreement. Changes run one after another.
   */
  async #change<T>(step: (set: FileKeySet) => KeySetChange<T> | Promise<KeySetChange<T>>): Promise<T> {
    this.#open();
    const run = async (): Promise<T> => {
      const { set, result, after } = await step(this.#set);
      if (set !== this.#set) {
        await this.#persist(set);
        this.#set = set;
      }
      after?.();
      return result;
    };
    const next = this.#writes.then(run, run);
    this.#writes = next.catch(() => undefined);
    return next;
  }

  async #persist(set: FileKeySet): Promise<void> {
    const plaintext = serializeKeySet(set);
    try {
      await writeEnvelope(this.#path, this.#sealing, plaintext);
    } finally {
      plaintext.fill(0);
    }
  }
}

interface KeySetChange<T> {
  readonly set: FileKeySet;
  readonly result: T;
  /** Runs once the new set is on disk and current. */
  readonly after?: () => void;
}

function entryIn(set: FileKeySet, keyId: KeyId): FileKeyEntry {
  const entry = set.keys.get(keyId);
  if (entry === undefined) throw new TresorError('KEY_NOT_FOUND', `no key ${keyId} in this keystore`);
  return entry;
}

function withEntry(set: FileKeySet, entry: FileKeyEntry): FileKeySet {
  const keys = new Map(set.keys);
  keys.set(entry.meta.id, entry);
  return { keys, importKey: set.importKey };
}

function pkcs8(der: Uint8Array): { key: Buffer; format: 'der'; type: 'pkcs8' } {
  return { key: Buffer.from(der), format: 'der', type: 'pkcs8' };
}

function privateKeyOf(entry: FileKeyEntry): KeyObject {
  if (entry.material === null) throw new TresorError('KEY_DESTROYED', `key ${entry.meta.id} was destroyed`);
  return entry.material.expose((der) => createPrivateKey(pkcs8(der)));
}
