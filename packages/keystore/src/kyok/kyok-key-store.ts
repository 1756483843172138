import { Agent, request } from 'node:https';
import { TresorError, isErrorCode } from '@tresor/protocol';
import { parseImportParameters, type ImportParameters } from '../byok.js';
import { parseEcPublicJwk } from '../ec-keys.js';
import { requireDataKeyLength } from '../key-access.js';
import type { KeyId } from '../key-id.js';
import { checkLabel, parseKeyMetadata } from '../key-metadata.js';
import type { CreateKeyOptions, EcPublicJwk, KeyMetadata, KeyStore, SigningAlgorithm } from '../key-store.js';
import { SecretKeyBytes } from '../secret-key-bytes.js';
import type { WrappedKey } from '../wrapped-key.js';
import { parseTenantId, type TenantId } from './tenant-id.js';
import { API_PREFIX, binaryField, encodeBinary, objectOf, type RevocationStatus } from './wire.js';

export interface KyokClientTls {
  /** This client's certificate chain and key (PEM): its mTLS identity at the key server. */
  readonly cert: string;
  readonly key: string;
  /** The CA (PEM) that issued the key server's certificate. */
  readonly ca: string;
}

export interface KyokKeyStoreOptions {
  /** The customer's key server, e.g. https://kms.customer.example:8443 */
  readonly url: string;
  readonly tenant: string;
  readonly tls: KyokClientTls;
  /** The requesting workload's current EAR token (from the trust service); needed for wrap, unwrap, sign. */
  readonly attestationToken?: () => Promise<string>;
  /**
   * How long an unwrapped data key may be served again without asking the key server. At most
   * 1000 ms, so a revocation at the key server stops key release within one second.
   */
  readonly unwrapCacheTtlMs?: number;
  readonly timeoutMs?: number;
  /** Monotonic milliseconds; injected so tests can drive the cache. */
  readonly clock?: () => number;
}

/** The revocation bound of the issue: key release stops within 1 s of `tresor kyok revoke`. */
export const MAX_UNWRAP_CACHE_TTL_MS = 1000;
const DEFAULT_UNWRAP_CACHE_TTL_MS = 500;
const MAX_CACHE_ENTRIES = 10_000;
const MAX_RESPONSE_BYTES = 1024 * 1024;

interface CachedKey {
  readonly key: SecretKeyBytes;
  readonly expires: number;
}

/**
 * The KeyStore whose KEKs never leave the customer's own key server (KYOK): every wrap, unwrap and
 * sign is a request to that server over TLS 1.3 with mutual TLS, carrying the workload's attestation
 * token, and the server's policy decides. Management calls (create, disable, destroy, import) need
 * an administrator certificate at the server.
 */
export class KyokKeyStore implements KeyStore {
  readonly backend = 'kyok' as const;
  readonly #base: URL;
  readonly #tenant: TenantId;
  readonly #agent: Agent;
  readonly #token: (() => Promise<string>) | undefined;
  readonly #ttl: number;
  readonly #timeout: number;
  readonly #clock: () => number;
  readonly #cache = new Map<string, CachedKey>();
  #closed = false;

  constructor(options: KyokKeyStoreOptions) {
    const base = new URL(options.url);
    if (base.protocol !== 'https:')
      throw new TresorError('CONFIG_INVALID', 'the KYOK key server URL must be https');
    const ttl = options.unwrapCacheTtlMs ?? DEFAULT_UNWRAP_CACHE_TTL_MS;
    if (!Number.isFinite(ttl) || ttl < 0 || ttl > MAX_UNWRAP_CACHE_TTL_MS) {
      throw new TresorError(
        'CONFIG_INVALID',
        `the unwrap cache TTL must be 0 to ${MAX_UNWRAP_CACHE_TTL_MS} ms so revocations take effect within 1 s`,
      );
    }
    this.#base = base;
    this.#tenant = parseTenantId(options.tenant);
    this.#token = options.attestationToken;
    this.#ttl = ttl;
    this.#timeout = options.timeoutMs ?? 10_000;
    this.#clock = options.clock ?? (() => performance.now());
    this.#agent = new Agent({
      keepAlive: true,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
      cert: options.tls.cert,
      key: options.tls.key,
      ca: options.tls.ca,
    });
  }

  async createKek(options: CreateKeyOptions = {}): Promise<KeyMetadata> {
    return this.#metadata(
      await this.#call('POST', 'keys', { kind: 'kek', label: checkLabel(options.label) }),
    );
  }

  async createSigningKey(algorithm: SigningAlgorithm, options: CreateKeyOptions = {}): Promise<KeyMetadata> {
    const body = { kind: 'signing', algorithm, label: checkLabel(options.label) };
    return this.#metadata(await this.#call('POST', 'keys', body));
  }

  async importParameters(): Promise<ImportParameters> {
    return parseImportParameters(
      await this.#request('GET', `${API_PREFIX}/import-parameters`, undefined, false),
    );
  }

  async importKek(wrappedKeyMaterial: Uint8Array, options: CreateKeyOptions = {}): Promise<KeyMetadata> {
    const body = { wrappedKeyMaterial: encodeBinary(wrappedKeyMaterial), label: checkLabel(options.label) };
    return this.#metadata(await this.#call('POST', 'imports', body));
  }

  async wrapKey(kekId: KeyId, dataKey: SecretKeyBytes): Promise<WrappedKey> {
    requireDataKeyLength(dataKey.length);
    const body = { key: dataKey.expose(encodeBinary) };
    const answer = await this.#call('POST', `keys/${kekId}/wrap`, body, true);
    const ciphertext = binaryField(answer, 'wrappedKey', 64, 'KEYSTORE_RESPONSE_INVALID');
    return { kekId, algorithm: 'A256KW', ciphertext };
  }

  async unwrapKey(wrapped: WrappedKey): Promise<SecretKeyBytes> {
    const cacheKey = `${wrapped.kekId}.${encodeBinary(wrapped.ciphertext)}`;
    const now = this.#clock();
    this.#sweep(now);
    const hit = this.#cache.get(cacheKey);
    if (hit !== undefined) return hit.key.clone();
    const answer = await this.#call(
      'POST',
      `keys/${wrapped.kekId}/unwrap`,
      { wrappedKey: encodeBinary(wrapped.ciphertext) },
      true,
    );
    const key = SecretKeyBytes.takeFrom(binaryField(answer, 'key', 64, 'KEYSTORE_RESPONSE_INVALID'));
    if (key.length !== 32) {
      key.dispose();
      throw new TresorError(
        'KEYSTORE_RESPONSE_INVALID',
        'the key server returned a data key that is not 256 bits',
      );
    }
    if (this.#ttl > 0 && this.#cache.size < MAX_CACHE_ENTRIES) {
      // Expiry counts from the request's start, so a slow answer never extends the bound.
      this.#cache.set(cacheKey, { key: key.clone(), expires: now + this.#ttl });
    }
    return key;
  }

  async sign(keyId: KeyId, message: Uint8Array): Promise<Uint8Array> {
    const answer = await this.#call('POST', `keys/${keyId}/sign`, { message: encodeBinary(message) }, true);
    return binaryField(answer, 'signature', 132, 'KEYSTORE_RESPONSE_INVALID');
  }

  async publicKey(keyId: KeyId): Promise<EcPublicJwk> {
    return parseEcPublicJwk(await this.#call('GET', `keys/${keyId}/public-key`));
  }

  async describe(keyId: KeyId): Promise<KeyMetadata> {
    return this.#metadata(await this.#call('GET', `keys/${keyId}`));
  }

  async list(): Promise<readonly KeyMetadata[]> {
    const answer = await this.#call('GET', 'keys');
    if (!Array.isArray(answer))
      throw new TresorError('KEYSTORE_RESPONSE_INVALID', 'the key list is not an array');
    return answer.map((m) => this.#metadata(m));
  }

  async disable(keyId: KeyId): Promise<KeyMetadata> {
    this.#forget(keyId);
    return this.#metadata(await this.#call('POST', `keys/${keyId}/disable`, {}));
  }

  async enable(keyId: KeyId): Promise<KeyMetadata> {
    return this.#metadata(await this.#call('POST', `keys/${keyId}/enable`, {}));
  }

  async destroy(keyId: KeyId): Promise<KeyMetadata> {
    this.#forget(keyId);
    return this.#metadata(await this.#call('POST', `keys/${keyId}/destroy`, {}));
  }

  /** The customer's revocation switch for this tenant (administrator certificate required). */
  async revokeTenant(): Promise<RevocationStatus> {
    this.#cache.forEach((entry) => {
      entry.key.dispose();
    });
    this.#cache.clear();
    return parseRevocation(await this.#call('POST', 'revoke', {}));
  }

  async reinstateTenant(): Promise<RevocationStatus> {
    return parseRevocation(await this.#call('POST', 'reinstate', {}));
  }

  async revocationStatus(): Promise<RevocationStatus> {
    return parseRevocation(await this.#call('GET', 'revocation'));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const entry of this.#cache.values()) entry.key.dispose();
    this.#cache.clear();
    this.#agent.destroy();
    await Promise.resolve();
  }

  #metadata(json: unknown): KeyMetadata {
    return parseKeyMetadata(json, 'KEYSTORE_RESPONSE_INVALID');
  }

  #sweep(now: number): void {
    for (const [k, entry] of this.#cache) {
      if (entry.expires <= now) {
        entry.key.dispose();
        this.#cache.delete(k);
      }
    }
  }

  #forget(keyId: KeyId): void {
    for (const [k, entry] of this.#cache) {
      if (k.startsWith(`${keyId}.`)) {
        entry.key.dispose();
        this.#cache.delete(k);
      }
    }
  }

  async #call(method: 'GET' | 'POST', path: string, body?: unknown, attested = false): Promise<unknown> {
    return this.#request(method, `${API_PREFIX}/tenants/${this.#tenant}/${path}`, body, attested);
  }

  async #request(method: 'GET' | 'POST', path: string, body: unknown, attested: boolean): Promise<unknown> {
    if (this.#closed) throw new TresorError('KEYSTORE_UNAVAILABLE', 'the KYOK keystore is closed');
    const headers: Record<string, string> = { accept: 'application/json' };
    if (attested) {
      if (this.#token === undefined) {
        throw new TresorError(
          'ATTESTATION_TOKEN_INVALID',
          'this client has no attestation token source; key use needs one',
        );
      }
      headers.authorization = `Bearer ${await this.#token()}`;
    }
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
    if (payload !== undefined) headers['content-type'] = 'application/json';
    // Keep a path prefix in the configured URL (a server behind https://host/kms/).
    const url = new URL(`${this.#base.pathname.replace(/\/$/, '')}${path}`, this.#base);
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(url, { method, headers, agent: this.#agent, timeout: this.#timeout }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new TresorError('KEYSTORE_RESPONSE_INVALID', 'the key server answer is too large'));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          const raw = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, text: raw.toString('utf8') });
          raw.fill(0);
          for (const c of chunks) c.fill(0);
        });
        res.on('error', reject);
      });
      req.on('timeout', () => {
        req.destroy(
          new TresorError('KEYSTORE_UNAVAILABLE', `the key server did not answer within ${this.#timeout} ms`),
        );
      });
      req.on('error', (cause) => {
        reject(
          cause instanceof TresorError
            ? cause
            : new TresorError(
                'KEYSTORE_UNAVAILABLE',
                `cannot reach the key server at ${this.#base.origin}: ${cause.message}`,
                {
                  cause,
                },
              ),
        );
      });
      req.end(payload);
    }).finally(() => payload?.fill(0));
    return interpret(status, text);
  }
}

function interpret(status: number, text: string): unknown {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new TresorError('KEYSTORE_RESPONSE_INVALID', `the key server answered ${status} without JSON`, {
      cause,
    });
  }
  if (status === 200) return json;
  const o = typeof json === 'object' && json !== null ? (json as Record<string, unknown>) : {};
  if (isErrorCode(o.code) && typeof o.message === 'string') {
    throw new TresorError(o.code, `key server: ${o.message}`);
  }
  throw new TresorError(
    'KEYSTORE_RESPONSE_INVALID',
    `the key server answered ${status} without an error code`,
  );
}

function parseRevocation(json: unknown): RevocationStatus {
  const o = objectOf(json, 'KEYSTORE_RESPONSE_INVALID');
  if (
    typeof o.tenant !== 'string' ||
    typeof o.revoked !== 'boolean' ||
    (o.revokedAt !== null && typeof o.revokedAt !== 'string')
  ) {
    throw new TresorError('KEYSTORE_RESPONSE_INVALID', 'the revocation status is malformed');
  }
  return { tenant: o.tenant, revoked: o.revoked, revokedAt: o.revokedAt };
}
