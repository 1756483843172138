import { createHash, createPublicKey, publicEncrypt, randomBytes, constants } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { TresorError, type ErrorCode } from '@tresor/protocol';
import { bytesToBase64Url, utf8Decode } from '@tresor/crypto';
import {
  IMPORT_KEY_BITS,
  importParametersFor,
  oaepHashOf,
  splitImportPayload,
  type ImportParameters,
  type ImportWrappingAlgorithm,
} from '../byok.js';
import { curveFor, ecPointToJwk } from '../ec-keys.js';
import { requireDataKeyLength, requireNotDestroyed, requireUsable } from '../key-access.js';
import { isKeyId, newKeyId, type KeyId } from '../key-id.js';
import { checkLabel, parseKeyMetadata } from '../key-metadata.js';
import type {
  CreateKeyOptions,
  EcPublicJwk,
  KeyAlgorithm,
  KeyKind,
  KeyMetadata,
  KeyStore,
  SigningAlgorithm,
} from '../key-store.js';
import { SecretKeyBytes } from '../secret-key-bytes.js';
import { WRAPPED_DATA_KEY_LENGTH, type WrappedKey } from '../wrapped-key.js';
import {
  acquireModule,
  ckrName,
  ckrOf,
  isAuthFailure,
  loginMatches,
  moduleGeneration,
  pkcs11Failure,
  recordLogin,
  reinitializeModule,
  releaseModule,
  tokenUnavailable,
} from './module.js';
import {
  IMPORT_KEY_ID,
  KEY_RECORD_APPLICATION,
  TOMBSTONE_APPLICATION,
  dataKeyTemplate,
  ecPrivateTemplate,
  ecPublicTemplate,
  idAttribute,
  importEphemeralTemplate,
  kekGenerationTemplate,
  kekTemplate,
  recordQuery,
  recordTemplate,
  rsaImportPrivateTemplate,
  rsaImportPublicTemplate,
  type Template,
} from './templates.js';

export interface Pkcs11KeyStoreOptions {
  /** Path of the vendor's PKCS#11 library, e.g. /usr/lib/softhsm/libsofthsm2.so. */
  readonly module: string;
  /** The token, by slot id or by token label (exactly one). */
  readonly slot?: number;
  readonly tokenLabel?: string;
  /** The user PIN (CKU_USER). */
  readonly pin: SecretKeyBytes;
  readonly now?: () => Date;
}

type Handle = pkcs11js.Handle;

/** Which module and token a store uses (the options without the PIN and clock). */
interface TokenSelector {
  readonly module: string;
  readonly slot?: number;
  readonly tokenLabel?: string;
}

/** Answers meaning a cached handle no longer fits the key (see #withKey). */
const STALE_HANDLE = new Set<number>([
  pkcs11js.CKR_OBJECT_HANDLE_INVALID,
  pkcs11js.CKR_KEY_HANDLE_INVALID,
  pkcs11js.CKR_WRAPPING_KEY_HANDLE_INVALID,
  pkcs11js.CKR_UNWRAPPING_KEY_HANDLE_INVALID,
  pkcs11js.CKR_KEY_FUNCTION_NOT_PERMITTED,
]);

/**
 * After a failed reconnect, how long operations are refused at once (KEYSTORE_UNAVAILABLE) before
 * the next attempt: each attempt may re-initialise the module, which ends the sessions of every store
 * on it, and a busy service must not do that once per request while the HSM is down.
 */
const RECONNECT_BACKOFF_MS = 1000;

/** CKS_RO_USER_FUNCTIONS and CKS_RW_USER_FUNCTIONS (PKCS#11 v2.40 §5.6, CK_STATE; pkcs11js has no names). */
const USER_SESSION_STATES = new Set<number>([1, 3]);

/** CKZ_DATA_SPECIFIED (PKCS#11 v2.40 §2.1.8): the OAEP label source; the label is empty. */
const CKZ_DATA_SPECIFIED = 1;

/** A located key: its metadata and the handle of the object that does the work. */
interface TokenKey {
  readonly meta: KeyMetadata;
  readonly handle: Handle | null;
}

/**
 * Keys in a PKCS#11 token (an HSM; SoftHSM2 in tests). KEKs are non-extractable, sensitive AES-256
 * token objects; data keys pass through the token as session objects only for C_WrapKey /
 * C_UnwrapKey with CKM_AES_KEY_WRAP (RFC 3394). Signing keys are EC P-256 / P-384 with CKM_ECDSA over
 * a host-side SHA-2 digest (the portable form; not every token has CKM_ECDSA_SHA256). A key's id is
 * its CKA_ID; destroyed keys leave a CKO_DATA tombstone. pkcs11js calls are synchronous, so one
 * logged-in session serves the store without interleaving.
 *
 * HSM outages: a failure that leaves the token unreachable (session or device errors, or any failure
 * after which the token no longer answers C_GetTokenInfo or the session is no longer logged in) is
 * KEYSTORE_UNAVAILABLE, never KEY_NOT_FOUND: an empty search only means "absent" while the token is
 * healthy. The broken session is dropped and the next operation opens and logs in a new one, once,
 * re-initialising the module first when that is what it takes (SoftHSM2 needs it; see module.ts).
 */
export class Pkcs11KeyStore implements KeyStore {
  readonly backend = 'pkcs11' as const;
  readonly #api: pkcs11js.PKCS11;
  readonly #token: TokenSelector;
  /** The store's own copy of the PIN, to log in again after an outage; zeroed by close. */
  readonly #pin: SecretKeyBytes;
  readonly #now: () => Date;
  #slot: Handle = Buffer.alloc(0);
  #session: Handle = Buffer.alloc(0);
  /** The module generation #session belongs to; -1 before the first session. */
  #generation = -1;
  /** Set when the session failed in a way that leaves the token unreachable. */
  #broken = false;
  /** No reconnect before this time (ms since the epoch, by #now) after a failed one. */
  #reconnectAt = 0;
  #importAlgorithm: ImportWrappingAlgorithm | null = null;
  readonly #handles = new Map<KeyId, { handle: Handle; kind: KeyKind; algorithm: KeyAlgorithm }>();
  #closed = false;

  private constructor(api: pkcs11js.PKCS11, token: TokenSelector, pin: SecretKeyBytes, now: () => Date) {
    this.#api = api;
    this.#token = token;
    this.#pin = pin;
    this.#now = now;
  }

  /** Loads the module, finds the token and logs in (synchronous PKCS#11 calls behind a promise). */
  static open(options: Pkcs11KeyStoreOptions): Promise<Pkcs11KeyStore> {
    // A throw inside the executor becomes the rejection.
    return new Promise((resolve) => {
      resolve(Pkcs11KeyStore.#connect(options));
    });
  }

  static #connect(options: Pkcs11KeyStoreOptions): Pkcs11KeyStore {
    if ((options.slot === undefined) === (options.tokenLabel === undefined)) {
      throw new TresorError('CONFIG_INVALID', 'name the PKCS#11 token by exactly one of slot and tokenLabel');
    }
    const token: TokenSelector = {
      module: options.module,
      ...(options.slot === undefined ? {} : { slot: options.slot }),
      ...(options.tokenLabel === undefined ? {} : { tokenLabel: options.tokenLabel }),
    };
    const api = acquireModule(options.module);
    const store = new Pkcs11KeyStore(api, token, options.pin.clone(), options.now ?? (() => new Date()));
    try {
      // A module whose token was lost before (by another store of this process) answers PKCS#11
      // errors until re-initialised; a token that simply is not there (a wrong label) does not.
      store.#establish((err) => ckrOf(err) !== null);
    } catch (err) {
      store.#pin.dispose();
      releaseModule(options.module);
      throw err;
    }
    return store;
  }

  /**
   * Opens and logs in a session; when that fails and `reinitialiseOn` accepts the failure, once more
   * after re-initialising the module. PIN failures are never retried (a retry could lock the PIN).
   */
  #establish(reinitialiseOn: (err: unknown) => boolean): void {
    try {
      this.#openSession();
      return;
    } catch (err) {
      const ckr = ckrOf(err);
      if ((ckr !== null && isAuthFailure(ckr)) || !reinitialiseOn(err)) {
        throw pkcs11Failure(err, 'opening a session on the token', 'KEYSTORE_UNAVAILABLE');
      }
      let reinitialised: boolean;
      try {
        reinitialised = reinitializeModule(this.#token.module);
      } catch (cause) {
        throw tokenUnavailable('the PKCS#11 module could not be re-initialised', cause);
      }
      if (!reinitialised) throw pkcs11Failure(err, 'opening a session on the token', 'KEYSTORE_UNAVAILABLE');
    }
    try {
      this.#openSession();
    } catch (err) {
      throw pkcs11Failure(err, 'opening a session on the token', 'KEYSTORE_UNAVAILABLE');
    }
  }

  /** Finds the token, opens a session, logs in and checks that the token answers. */
  #openSession(): void {
    const api = this.#api;
    const slot = findSlot(api, this.#token);
    const session = api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
    try {
      this.#pin.expose((pin) => {
        try {
          api.C_Login(session, pkcs11js.CKU_USER, Buffer.from(pin).toString('utf8'));
          recordLogin(this.#token.module, slot, pin);
        } catch (err) {
          // The login state is per token and application (v2.40 §5.6): another session has it, and
          // the token did not check this PIN, so it is checked against the one that logged in.
          if (ckrOf(err) !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) throw err;
          if (loginMatches(this.#token.module, slot, pin) === false) {
            throw new TresorError(
              'KEYSTORE_AUTH_FAILED',
              'the PIN differs from the one this process logged in to the token with: check the configured PIN',
            );
          }
        }
      });
      const problem = tokenProblem(api, slot, session);
      if (problem !== null) throw problem;
    } catch (err) {
      try {
        api.C_CloseSession(session);
      } catch {
        // The session is unusable anyway; the original failure is what the caller needs.
      }
      throw err;
    }
    this.#slot = slot;
    this.#session = session;
    this.#generation = moduleGeneration(this.#token.module);
    this.#broken = false;
    this.#handles.clear();
  }

  async createKek(options: CreateKeyOptions = {}): Promise<KeyMetadata> {
    const label = checkLabel(options.label);
    const id = newKeyId('kek');
    this.#writeRecord(id);
    this.#call('generating an AES-256 KEK', 'KEYSTORE_UNAVAILABLE', () =>
      this.#api.C_GenerateKey(
        this.#session,
        { mechanism: pkcs11js.CKM_AES_KEY_GEN },
        kekGenerationTemplate(id, label),
      ),
    );
    return this.describe(id);
  }

  async createSigningKey(algorithm: SigningAlgorithm, options: CreateKeyOptions = {}): Promise<KeyMetadata> {
    const label = checkLabel(options.label);
    const id = newKeyId('sig');
    const curve = curveFor(algorithm);
    this.#writeRecord(id);
    this.#call(`generating an ${curve.crv} signing key`, 'KEYSTORE_UNAVAILABLE', () =>
      this.#api.C_GenerateKeyPair(
        this.#session,
        { mechanism: pkcs11js.CKM_EC_KEY_PAIR_GEN },
        ecPublicTemplate(id, label, curve.oidDer),
        ecPrivateTemplate(id, label),
      ),
    );
    return this.describe(id);
  }

  async importParameters(): Promise<ImportParameters> {
    const { publicKey } = this.#importKeyPair();
    return importParametersFor(this.#rsaPublicKey(publicKey), this.#importWrapping());
  }

  /**
   * Two C_UnwrapKey calls inside the token, equivalent to CKM_RSA_AES_KEY_WRAP (which SoftHSM lacks):
   * RSA-OAEP unwraps the ephemeral AES key into a sensitive session object, which then unwraps the
   * KEK (CKM_AES_KEY_WRAP_PAD, RFC 5649) into a token object. Neither key is ever readable outside.
   */
  async importKek(wrappedKeyMaterial: Uint8Array, options: CreateKeyOptions = {}): Promise<KeyMetadata> {
    const label = checkLabel(options.label);
    const { privateKey, publicKey } = this.#importKeyPair();
    const bits = this.#rsaPublicKey(publicKey).asymmetricKeyDetails?.modulusLength ?? 0;
    const parts = splitImportPayload(wrappedKeyMaterial, bits);
    const hash = oaepHashOf(this.#importWrapping());
    const ephemeral = this.#call('unwrapping the ephemeral key (RSA-OAEP)', 'KEY_IMPORT_INVALID', () =>
      this.#api.C_UnwrapKey(
        this.#session,
        oaepMechanism(hash),
        privateKey,
        Buffer.from(parts.wrappedEphemeralKey),
        importEphemeralTemplate(),
      ),
    );
    const id = newKeyId('kek');
    let kek: Handle;
    try {
      kek = this.#call('unwrapping the KEK (AES-KWP)', 'KEY_IMPORT_INVALID', () =>
        this.#api.C_UnwrapKey(
          this.#session,
          { mechanism: pkcs11js.CKM_AES_KEY_WRAP_PAD },
          ephemeral,
          Buffer.from(parts.wrappedKek),
          kekTemplate(id, label),
        ),
      );
    } finally {
      this.#call('destroying the ephemeral key', 'KEYSTORE_UNAVAILABLE', () => {
        this.#api.C_DestroyObject(this.#session, ephemeral);
      });
    }
    // Tokens need not set CKA_VALUE_LEN on unwrapped keys (SoftHSM leaves it 0), so the key's size is
    // proven by use: a 40-byte AES-KWP block holds 25 to 32 bytes, and only 32 is an AES key size
    // that can wrap; anything else fails this trial wrap inside the token.
    try {
      this.#trialWrap(kek);
    } catch (cause) {
      const unreachable = this.#unreachable('checking the imported key', cause);
      if (unreachable !== null) throw unreachable;
      this.#api.C_DestroyObject(this.#session, kek);
      throw new TresorError('KEY_IMPORT_INVALID', 'the imported key is not a usable AES-256 key', { cause });
    }
    this.#writeRecord(id);
    return this.describe(id);
  }

  async wrapKey(kekId: KeyId, dataKey: SecretKeyBytes): Promise<WrappedKey> {
    requireDataKeyLength(dataKey.length);
    const valueBuffer = dataKey.expose((b) => Buffer.from(b));
    let wrapped: Buffer;
    try {
      wrapped = this.#withKey(kekId, 'kek', 'wrapping the data key', 'KEYSTORE_UNAVAILABLE', (kek) => {
        const transient = this.#api.C_CreateObject(this.#session, dataKeyTemplate(valueBuffer));
        try {
          return this.#api.C_WrapKey(
            this.#session,
            { mechanism: pkcs11js.CKM_AES_KEY_WRAP },
            kek,
            transient,
            Buffer.alloc(WRAPPED_DATA_KEY_LENGTH + 8),
          );
        } finally {
          this.#api.C_DestroyObject(this.#session, transient);
        }
      });
    } finally {
      valueBuffer.fill(0);
    }
    return Promise.resolve({ kekId, algorithm: 'A256KW', ciphertext: new Uint8Array(wrapped) });
  }

  async unwrapKey(wrapped: WrappedKey): Promise<SecretKeyBytes> {
    const length = wrapped.ciphertext.length;
    const bytes = this.#withKey(
      wrapped.kekId,
      'kek',
      'unwrapping the data key',
      'KEY_UNWRAP_FAILED',
      (kek) => {
        if (length !== WRAPPED_DATA_KEY_LENGTH) {
          throw new TresorError(
            'KEY_UNWRAP_FAILED',
            `a wrapped data key is ${WRAPPED_DATA_KEY_LENGTH} bytes`,
          );
        }
        const handle = this.#api.C_UnwrapKey(
          this.#session,
          { mechanism: pkcs11js.CKM_AES_KEY_WRAP },
          kek,
          Buffer.from(wrapped.ciphertext),
          dataKeyTemplate(),
        );
        try {
          const [value] = this.#api.C_GetAttributeValue(this.#session, handle, [
            { type: pkcs11js.CKA_VALUE },
          ]);
          return value?.value;
        } finally {
          this.#api.C_DestroyObject(this.#session, handle);
        }
      },
    );
    if (bytes?.length !== 32) {
      bytes?.fill(0);
      throw new TresorError('KEY_UNWRAP_FAILED', 'the unwrapped data key is not 256 bits');
    }
    return Promise.resolve(SecretKeyBytes.takeFrom(bytes));
  }

  async sign(keyId: KeyId, message: Uint8Array): Promise<Uint8Array> {
    const signature = this.#withKey(keyId, 'signing', 'signing', 'KEYSTORE_UNAVAILABLE', (key, algorithm) => {
      const curve = curveFor(algorithm as SigningAlgorithm);
      const digest = createHash(curve.hash).update(message).digest();
      this.#api.C_SignInit(this.#session, { mechanism: pkcs11js.CKM_ECDSA }, key);
      return this.#api.C_Sign(this.#session, digest, Buffer.alloc(2 * curve.size));
    });
    return Promise.resolve(new Uint8Array(signature));
  }

  async publicKey(keyId: KeyId): Promise<EcPublicJwk> {
    const { meta } = this.#locate(keyId);
    requireNotDestroyed(meta);
    if (meta.kind !== 'signing') {
      throw new TresorError(
        'KEY_USAGE_INVALID',
        `key ${keyId} is a key-encryption key; it has no public key`,
      );
    }
    const [publicHandle] = this.#find([
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      idAttribute(keyId),
    ]);
    if (publicHandle === undefined)
      throw new TresorError('KEY_NOT_FOUND', `the token has no public key for ${keyId}`);
    const [point] = this.#call('reading the public key', 'KEYSTORE_UNAVAILABLE', () =>
      this.#api.C_GetAttributeValue(this.#session, publicHandle, [{ type: pkcs11js.CKA_EC_POINT }]),
    );
    const algorithm = meta.algorithm as SigningAlgorithm;
    return Promise.resolve(
      ecPointToJwk(unwrapEcPoint(point?.value ?? Buffer.alloc(0), algorithm), algorithm, keyId),
    );
  }

  async describe(keyId: KeyId): Promise<KeyMetadata> {
    return Promise.resolve(this.#locate(keyId).meta);
  }

  async list(): Promise<readonly KeyMetadata[]> {
    this.#open();
    const keys: KeyMetadata[] = [];
    for (const cls of [pkcs11js.CKO_SECRET_KEY, pkcs11js.CKO_PRIVATE_KEY]) {
      for (const handle of this.#find([{ type: pkcs11js.CKA_CLASS, value: cls }])) {
        const meta = this.#metadataOf(handle);
        if (meta !== null) keys.push(meta);
      }
    }
    for (const handle of this.#tombstones()) keys.push(this.#tombstoneMetadata(handle));
    return Promise.resolve(
      keys.sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id)),
    );
  }

  async disable(keyId: KeyId): Promise<KeyMetadata> {
    return Promise.resolve(this.#setUsable(keyId, false));
  }

  async enable(keyId: KeyId): Promise<KeyMetadata> {
    return Promise.resolve(this.#setUsable(keyId, true));
  }

  async destroy(keyId: KeyId): Promise<KeyMetadata> {
    const { meta } = this.#locate(keyId);
    if (meta.state === 'destroyed') return Promise.resolve(meta);
    const tombstone: KeyMetadata = { ...meta, state: 'destroyed' };
    this.#handles.delete(keyId);
    // Tombstone first: if destruction fails half-way, the key reads as destroyed and is never used.
    this.#call('recording the destroyed key', 'KEYSTORE_UNAVAILABLE', () =>
      this.#api.C_CreateObject(
        this.#session,
        recordTemplate(TOMBSTONE_APPLICATION, keyId, JSON.stringify(tombstone)),
      ),
    );
    for (const handle of [
      ...this.#find([idAttribute(keyId)]),
      ...this.#find(recordQuery(KEY_RECORD_APPLICATION, keyId)),
    ]) {
      this.#call('destroying the key', 'KEYSTORE_UNAVAILABLE', () => {
        this.#api.C_DestroyObject(this.#session, handle);
      });
    }
    return Promise.resolve(tombstone);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#pin.dispose();
    try {
      // A session of an older module generation is gone, and its handle may now be another store's.
      if (this.#sessionCurrent()) this.#api.C_CloseSession(this.#session);
    } catch (err) {
      if (!this.#broken) throw pkcs11Failure(err, 'closing the session', 'KEYSTORE_UNAVAILABLE');
    } finally {
      releaseModule(this.#token.module);
    }
    await Promise.resolve();
  }

  /**
   * Refuses a closed store; re-establishes a session lost to an outage or to a re-initialisation by
   * another store (at most one attempt per call, and after a failed one none for RECONNECT_BACKOFF_MS).
   */
  #open(): void {
    if (this.#closed) throw new TresorError('KEYSTORE_UNAVAILABLE', 'the PKCS#11 keystore is closed');
    if (!this.#broken && this.#generation === moduleGeneration(this.#token.module)) return;
    const now = this.#now().getTime();
    if (this.#broken && now < this.#reconnectAt) {
      throw tokenUnavailable(
        `the token was unreachable at the last reconnect; the next attempt is at ${new Date(this.#reconnectAt).toISOString()}`,
      );
    }
    if (this.#sessionCurrent()) {
      try {
        this.#api.C_CloseSession(this.#session);
      } catch {
        // The session is already broken; a new one replaces it.
      }
    }
    this.#broken = true;
    this.#handles.clear();
    try {
      this.#establish(() => true);
    } catch (err) {
      this.#reconnectAt = now + RECONNECT_BACKOFF_MS;
      throw err;
    }
  }

  #sessionCurrent(): boolean {
    return this.#generation >= 0 && this.#generation === moduleGeneration(this.#token.module);
  }

  /**
   * The catalogue error for a failed PKCS#11 call. Besides the return values that always mean an
   * outage, any failure after which the token no longer answers (SoftHSM2 says CKR_GENERAL_ERROR,
   * or stale handles, once its token files are gone) is KEYSTORE_UNAVAILABLE and drops the session.
   */
  #failure(err: unknown, doing: string, fallback: ErrorCode): TresorError {
    const failure = pkcs11Failure(err, doing, fallback);
    if (failure.code === 'KEYSTORE_UNAVAILABLE') {
      this.#broken = true;
      return failure;
    }
    if (failure.code === 'KEYSTORE_AUTH_FAILED') return failure;
    const problem = this.#unreachable(doing, err);
    return problem ?? failure;
  }

  /** KEYSTORE_UNAVAILABLE (and the session marked broken) when the token does not answer. */
  #unreachable(doing: string, cause: unknown): TresorError | null {
    const problem = tokenProblem(this.#api, this.#slot, this.#session);
    if (problem === null) return null;
    this.#broken = true;
    const ckr = ckrOf(cause);
    const answered = ckr === null ? '' : ` (it answered ${ckrName(ckr)})`;
    return tokenUnavailable(`the token stopped answering while ${doing}${answered}`, problem);
  }

  #call<T>(doing: string, fallback: ErrorCode, f: () => T): T {
    this.#open();
    try {
      return f();
    } catch (err) {
      throw this.#failure(err, doing, fallback);
    }
  }

  #find(template: Template): Handle[] {
    return this.#call('searching the token', 'KEYSTORE_UNAVAILABLE', () => {
      this.#api.C_FindObjectsInit(this.#session, template);
      try {
        const found: Handle[] = [];
        for (;;) {
          const batch = this.#api.C_FindObjects(this.#session, 64);
          found.push(...batch);
          if (batch.length < 64) return found;
        }
      } finally {
        this.#api.C_FindObjectsFinal(this.#session);
      }
    });
  }

  /** The key's working object (secret key or private key) and metadata, or its tombstone. */
  #locate(keyId: KeyId): TokenKey {
    this.#open();
    for (const cls of [pkcs11js.CKO_SECRET_KEY, pkcs11js.CKO_PRIVATE_KEY]) {
      for (const handle of this.#find([{ type: pkcs11js.CKA_CLASS, value: cls }, idAttribute(keyId)])) {
        const meta = this.#metadataOf(handle);
        if (meta !== null) return { meta, handle };
      }
    }
    const [tombstone] = this.#tombstones(keyId);
    if (tombstone !== undefined) return { meta: this.#tombstoneMetadata(tombstone), handle: null };
    // An empty search means "absent" only from a token that still answers (SoftHSM2 finds nothing
    // once its token files are gone).
    const unreachable = this.#unreachable(`looking up key ${keyId}`, null);
    if (unreachable !== null) throw unreachable;
    throw new TresorError('KEY_NOT_FOUND', `no key ${keyId} on this token`);
  }

  /**
   * Runs `op` with the key's working object. Handles are cached with the key's kind and algorithm,
   * which never change; the key's state is not cached but enforced by the token itself (a disabled
   * key has WRAP/UNWRAP/SIGN off, so the token answers CKR_KEY_FUNCTION_NOT_PERMITTED). When the
   * cached handle fails that way, or is gone because another session destroyed the key, the key is
   * looked up afresh, which yields the precise code (KEY_DISABLED, KEY_DESTROYED, KEY_NOT_FOUND).
   */
  #withKey<T>(
    keyId: KeyId,
    kind: KeyKind,
    doing: string,
    fallback: ErrorCode,
    op: (handle: Handle, algorithm: KeyAlgorithm) => T,
  ): T {
    this.#open();
    const cached = this.#handles.get(keyId);
    if (cached?.kind === kind) {
      try {
        return op(cached.handle, cached.algorithm);
      } catch (err) {
        const ckr = ckrOf(err);
        if (ckr === null || !STALE_HANDLE.has(ckr)) throw this.#failure(err, doing, fallback);
        this.#handles.delete(keyId);
        // A stale handle can also mean the token dropped every object; then there is nothing to find.
        const unreachable = this.#unreachable(doing, err);
        if (unreachable !== null) throw unreachable;
      }
    }
    const { meta, handle } = this.#locate(keyId);
    requireUsable(meta, kind);
    if (handle === null) throw new TresorError('KEY_DESTROYED', `key ${keyId} was destroyed`);
    this.#handles.set(keyId, { handle, kind: meta.kind, algorithm: meta.algorithm });
    try {
      return op(handle, meta.algorithm);
    } catch (err) {
      throw this.#failure(err, doing, fallback);
    }
  }

  #setUsable(keyId: KeyId, usable: boolean): KeyMetadata {
    const { meta, handle } = this.#locate(keyId);
    requireNotDestroyed(meta);
    if (handle === null) throw new TresorError('KEY_DESTROYED', `key ${keyId} was destroyed`);
    const attributes =
      meta.kind === 'kek'
        ? [
            { type: pkcs11js.CKA_WRAP, value: usable },
            { type: pkcs11js.CKA_UNWRAP, value: usable },
          ]
        : [{ type: pkcs11js.CKA_SIGN, value: usable }];
    this.#call(usable ? 'enabling the key' : 'disabling the key', 'KEYSTORE_OPERATION_UNSUPPORTED', () => {
      this.#api.C_SetAttributeValue(this.#session, handle, attributes);
    });
    return { ...meta, state: usable ? 'enabled' : 'disabled' };
  }

  /**
   * Metadata of a secret or private key object, or null when it is not a key Tresor can use (an
   * AES-256 key or a P-256/P-384 private key whose CKA_ID is a key id). Attributes are read per
   * class because asking for one that does not apply fails the whole call (CKR_ATTRIBUTE_TYPE_INVALID).
   */
  #metadataOf(handle: Handle): KeyMetadata | null {
    const read = (types: readonly number[]): (Buffer | undefined)[] =>
      this.#call('reading key attributes', 'KEYSTORE_UNAVAILABLE', () =>
        this.#api
          .C_GetAttributeValue(
            this.#session,
            handle,
            types.map((type) => ({ type })),
          )
          .map((a) => a.value),
      );
    const [cls, type, id, label, local] = read([
      pkcs11js.CKA_CLASS,
      pkcs11js.CKA_KEY_TYPE,
      pkcs11js.CKA_ID,
      pkcs11js.CKA_LABEL,
      pkcs11js.CKA_LOCAL,
    ]);
    const keyId = id?.toString('utf8') ?? '';
    if (!isKeyId(keyId)) return null;
    const base = {
      id: keyId,
      // CKA_LOCAL is true only for keys generated on the token (v2.40 §4.7), false for unwrapped ones.
      origin: readBool(local) ? ('generated' as const) : ('imported' as const),
      created: this.#createdOf(keyId),
      label: label?.toString('utf8') ?? '',
    };
    const classValue = readUlong(cls);
    const keyType = readUlong(type);
    if (classValue === pkcs11js.CKO_SECRET_KEY && keyType === pkcs11js.CKK_AES) {
      const [size, wrap, unwrap] = read([pkcs11js.CKA_VALUE_LEN, pkcs11js.CKA_WRAP, pkcs11js.CKA_UNWRAP]);
      // 0: the token did not record the length of an unwrapped key (SoftHSM); see importKek.
      const length = readUlong(size);
      if (length !== 32 && length !== 0) return null;
      const enabled = readBool(wrap) && readBool(unwrap);
      return { ...base, kind: 'kek', algorithm: 'A256KW', state: enabled ? 'enabled' : 'disabled' };
    }
    if (classValue === pkcs11js.CKO_PRIVATE_KEY && keyType === pkcs11js.CKK_EC) {
      const [params, sign] = read([pkcs11js.CKA_EC_PARAMS, pkcs11js.CKA_SIGN]);
      const algorithm = params === undefined ? null : algorithmOfCurve(params);
      if (algorithm === null) return null;
      return { ...base, kind: 'signing', algorithm, state: readBool(sign) ? 'enabled' : 'disabled' };
    }
    return null;
  }

  #tombstones(keyId?: KeyId): Handle[] {
    return this.#find(recordQuery(TOMBSTONE_APPLICATION, keyId));
  }

  #tombstoneMetadata(handle: Handle): KeyMetadata {
    const meta = parseKeyMetadata(this.#recordJson(handle), 'KEYSTORE_RESPONSE_INVALID');
    return { ...meta, state: 'destroyed' };
  }

  /** Records the creation time before the key exists, so a key is never seen without one. */
  #writeRecord(id: KeyId): void {
    const json = JSON.stringify({ created: this.#now().toISOString() });
    this.#call('recording the key', 'KEYSTORE_UNAVAILABLE', () =>
      this.#api.C_CreateObject(this.#session, recordTemplate(KEY_RECORD_APPLICATION, id, json)),
    );
  }

  /** Creation time from the key record; keys made by other tools have none and report the epoch. */
  #createdOf(keyId: KeyId): string {
    const [record] = this.#find(recordQuery(KEY_RECORD_APPLICATION, keyId));
    if (record === undefined) return new Date(0).toISOString();
    const json = this.#recordJson(record);
    const created =
      typeof json === 'object' && json !== null ? (json as { created?: unknown }).created : undefined;
    if (typeof created !== 'string' || Number.isNaN(Date.parse(created))) {
      throw new TresorError('KEYSTORE_RESPONSE_INVALID', `the record of key ${keyId} has no creation time`);
    }
    return new Date(created).toISOString();
  }

  #recordJson(handle: Handle): unknown {
    const [value] = this.#call('reading a key record', 'KEYSTORE_UNAVAILABLE', () =>
      this.#api.C_GetAttributeValue(this.#session, handle, [{ type: pkcs11js.CKA_VALUE }]),
    );
    try {
      return JSON.parse(utf8Decode(value?.value ?? Buffer.alloc(0)));
    } catch (cause) {
      throw new TresorError('KEYSTORE_RESPONSE_INVALID', 'a key record on the token is not JSON', { cause });
    }
  }

  /** Wraps a throw-away session key with `kek` inside the token. */
  #trialWrap(kek: Handle): void {
    const trial = this.#api.C_CreateObject(this.#session, dataKeyTemplate(randomBytes(32)));
    try {
      this.#api.C_WrapKey(
        this.#session,
        { mechanism: pkcs11js.CKM_AES_KEY_WRAP },
        kek,
        trial,
        Buffer.alloc(48),
      );
    } finally {
      this.#api.C_DestroyObject(this.#session, trial);
    }
  }

  #rsaPublicKey(handle: Handle): ReturnType<typeof createPublicKey> {
    return this.#call('reading the import key', 'KEYSTORE_UNAVAILABLE', () =>
      rsaPublicKeyOf(this.#api, this.#session, handle),
    );
  }

  /** The RSA import key pair, generated in the token on first use. */
  #importKeyPair(): { privateKey: Handle; publicKey: Handle } {
    const find = (cls: number): Handle | undefined =>
      this.#find([
        { type: pkcs11js.CKA_CLASS, value: cls },
        { type: pkcs11js.CKA_ID, value: IMPORT_KEY_ID },
      ])[0];
    const privateKey = find(pkcs11js.CKO_PRIVATE_KEY);
    const publicKey = find(pkcs11js.CKO_PUBLIC_KEY);
    if (privateKey !== undefined && publicKey !== undefined) return { privateKey, publicKey };
    return this.#call('generating the RSA import key', 'KEYSTORE_UNAVAILABLE', () =>
      this.#api.C_GenerateKeyPair(
        this.#session,
        { mechanism: pkcs11js.CKM_RSA_PKCS_KEY_PAIR_GEN },
        rsaImportPublicTemplate(IMPORT_KEY_BITS),
        rsaImportPrivateTemplate(),
      ),
    );
  }

  /**
   * SHA-256 OAEP if the token can unwrap with it, else SHA-1 (see byok.ts). Probed once by a real
   * unwrap of a throw-away key into a session object, since mechanism info does not list hashes.
   */
  #importWrapping(): ImportWrappingAlgorithm {
    if (this.#importAlgorithm !== null) return this.#importAlgorithm;
    const { privateKey, publicKey } = this.#importKeyPair();
    const probe = publicEncrypt(
      {
        key: this.#rsaPublicKey(publicKey),
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: 'sha256',
      },
      randomBytes(32),
    );
    try {
      const handle = this.#api.C_UnwrapKey(
        this.#session,
        oaepMechanism('sha256'),
        privateKey,
        probe,
        importEphemeralTemplate(),
      );
      this.#api.C_DestroyObject(this.#session, handle);
      this.#importAlgorithm = 'RSA_AES_KEY_WRAP_SHA_256';
    } catch (err) {
      const ckr = ckrOf(err);
      if (ckr !== pkcs11js.CKR_ARGUMENTS_BAD && ckr !== pkcs11js.CKR_MECHANISM_PARAM_INVALID) {
        throw this.#failure(err, 'probing RSA-OAEP support', 'KEYSTORE_UNAVAILABLE');
      }
      this.#importAlgorithm = 'RSA_AES_KEY_WRAP_SHA_1';
    }
    return this.#importAlgorithm;
  }
}

/**
 * The slot of the wanted token. A slot whose token does not answer is skipped; if the token is not
 * found, that slot's failure is thrown (it may be the wanted token, lost), not "no such token".
 */
function findSlot(api: pkcs11js.PKCS11, options: TokenSelector): Handle {
  const slots = api.C_GetSlotList(true);
  let unanswered: Error | null = null;
  for (const slot of slots) {
    if (options.slot !== undefined && slotNumber(slot) === options.slot) return slot;
    if (options.tokenLabel === undefined) continue;
    try {
      if (api.C_GetTokenInfo(slot).label.trimEnd() === options.tokenLabel) return slot;
    } catch (err) {
      unanswered = err instanceof Error ? err : new Error(String(err));
    }
  }
  if (unanswered !== null) throw unanswered;
  const wanted = options.slot !== undefined ? `slot ${options.slot}` : `token "${options.tokenLabel ?? ''}"`;
  throw new TresorError(
    'KEYSTORE_UNAVAILABLE',
    `no initialised token in ${wanted} (the module offers ${slots.length} token(s))`,
  );
}

/** CK_SLOT_ID as pkcs11js returns it: a CK_ULONG in native byte order (little-endian on x86/arm64). */
function slotNumber(slot: Handle): number {
  return slot.length >= 8 ? Number(slot.readBigUInt64LE(0)) : slot.readUInt32LE(0);
}

/**
 * Why the token cannot serve this session, or null when it answers C_GetTokenInfo and the session is
 * logged in as the user. SoftHSM2 keeps an open session's handle valid while its token files are
 * gone, so the token info is what tells (it answers CKR_GENERAL_ERROR).
 */
function tokenProblem(api: pkcs11js.PKCS11, slot: Handle, session: Handle): TresorError | null {
  try {
    api.C_GetTokenInfo(slot);
    const { state } = api.C_GetSessionInfo(session);
    if (USER_SESSION_STATES.has(state)) return null;
    return new TresorError('KEYSTORE_UNAVAILABLE', 'the session is no longer logged in');
  } catch (err) {
    return pkcs11Failure(err, 'checking the token', 'KEYSTORE_UNAVAILABLE');
  }
}

function oaepMechanism(hash: 'sha256' | 'sha1'): pkcs11js.Mechanism {
  return {
    mechanism: pkcs11js.CKM_RSA_PKCS_OAEP,
    parameter: {
      type: pkcs11js.CK_PARAMS_RSA_OAEP,
      hashAlg: hash === 'sha256' ? pkcs11js.CKM_SHA256 : pkcs11js.CKM_SHA_1,
      mgf: hash === 'sha256' ? pkcs11js.CKG_MGF1_SHA256 : pkcs11js.CKG_MGF1_SHA1,
      source: CKZ_DATA_SPECIFIED,
    } as pkcs11js.RsaOAEP,
  };
}

function rsaPublicKeyOf(
  api: pkcs11js.PKCS11,
  session: Handle,
  handle: Handle,
): ReturnType<typeof createPublicKey> {
  const [modulus, exponent] = api.C_GetAttributeValue(session, handle, [
    { type: pkcs11js.CKA_MODULUS },
    { type: pkcs11js.CKA_PUBLIC_EXPONENT },
  ]);
  if (modulus === undefined || exponent === undefined) {
    throw new TresorError('KEYSTORE_RESPONSE_INVALID', 'the import key has no modulus');
  }
  return createPublicKey({
    key: { kty: 'RSA', n: bytesToBase64Url(modulus.value), e: bytesToBase64Url(exponent.value) },
    format: 'jwk',
  });
}

/** CKA_EC_POINT is a DER OCTET STRING around the SEC1 point (v2.40 §2.3.3); a few tokens omit it. */
function unwrapEcPoint(value: Buffer, algorithm: SigningAlgorithm): Uint8Array {
  const size = 1 + 2 * curveFor(algorithm).size;
  if (value.length === size) return value;
  if (value.length === size + 2 && value[0] === 0x04 && value[1] === size) return value.subarray(2);
  throw new TresorError('KEYSTORE_RESPONSE_INVALID', 'the token returned an EC point in an unknown encoding');
}

function algorithmOfCurve(params: Buffer): SigningAlgorithm | null {
  for (const algorithm of ['ES256', 'ES384'] as const) {
    if (Buffer.from(curveFor(algorithm).oidDer).equals(params)) return algorithm;
  }
  return null;
}

function readUlong(value: Buffer | undefined): number {
  if (value === undefined || value.length === 0) return -1;
  return value.length >= 8 ? Number(value.readBigUInt64LE(0)) : value.readUInt32LE(0);
}

function readBool(value: Buffer | undefined): boolean {
  return value !== undefined && value.length > 0 && value[0] !== 0;
}
