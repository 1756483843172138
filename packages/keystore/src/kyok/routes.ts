import { TresorError, type ErrorCode } from '@tresor/protocol';
import { checkLabel } from '../key-metadata.js';
import { isSigningAlgorithm } from '../ec-keys.js';
import { isKeyId, type KeyId } from '../key-id.js';
import type { KeyMetadata, KeyStore } from '../key-store.js';
import { SecretKeyBytes } from '../secret-key-bytes.js';
import { WRAPPED_DATA_KEY_LENGTH } from '../wrapped-key.js';
import type { AttestationResult, AttestationTokenVerifier } from './attestation-token.js';
import type { DecisionLog, KeyDecision } from './decision-log.js';
import type { KeyOwners } from './key-owners.js';
import { appraiseKeyRelease, type KeyReleasePolicy } from './release-policy.js';
import type { RevocationList } from './revocations.js';
import { parseTenantId, type TenantId } from './tenant-id.js';
import {
  API_PREFIX,
  binaryField,
  encodeBinary,
  objectOf,
  stringField,
  type RevocationStatus,
} from './wire.js';

/** A request after TLS and body parsing: who asked (mTLS), what, and the bearer token if any. */
export interface KyokRequest {
  readonly method: string;
  readonly path: string;
  readonly body: unknown;
  /** Lowercase hex SHA-256 of the client certificate. */
  readonly client: string;
  readonly bearerToken: string | null;
}

export interface KyokResponse {
  readonly status: number;
  readonly body: unknown;
}

export interface KyokServices {
  readonly keyStore: KeyStore;
  readonly owners: KeyOwners;
  readonly revocations: RevocationList;
  readonly policy: KeyReleasePolicy;
  readonly verifyToken: AttestationTokenVerifier;
  readonly decisions: DecisionLog;
  /** SHA-256 fingerprints (lowercase hex) of administrator client certificates. */
  readonly admins: ReadonlySet<string>;
  readonly now: () => Date;
}

/** Who may call an operation: any authenticated client, an administrator, or an attested workload. */
type Caller = 'client' | 'admin' | 'workload';

interface Operation {
  readonly name: string;
  readonly caller: Caller;
  readonly tenant: TenantId | null;
  readonly keyId: KeyId | null;
  readonly run: (attested: AttestationResult | null) => Promise<unknown>;
}

/**
 * Routes one request: decide who may call it, check ownership, revocation and (for workload calls)
 * the attestation token against the tenant's policy, run it, and log the decision either way.
 */
export async function handleKyokRequest(services: KyokServices, request: KyokRequest): Promise<KyokResponse> {
  let operation: Operation | null = null;
  let attested: AttestationResult | null = null;
  try {
    operation = route(services, request);
    if (operation.caller === 'admin' && !services.admins.has(request.client)) {
      throw new TresorError('KYOK_CLIENT_FORBIDDEN', `${operation.name} needs an administrator certificate`);
    }
    if (operation.tenant !== null && operation.keyId !== null) {
      // Another tenant's key reads as absent: its existence is not this caller's business.
      if (services.owners.ownerOf(operation.keyId) !== operation.tenant) {
        throw new TresorError('KEY_NOT_FOUND', `tenant ${operation.tenant} has no key ${operation.keyId}`);
      }
    }
    if (operation.caller === 'workload' && operation.tenant !== null) {
      if (await services.revocations.isRevoked(operation.tenant)) {
        throw new TresorError('KEY_REVOKED', `the owner of tenant ${operation.tenant} revoked its keys`);
      }
      attested = await services.verifyToken(request.bearerToken ?? '');
      appraiseKeyRelease(services.policy, operation.tenant, attested);
    }
    const body = await operation.run(attested);
    services.decisions.record(decision(services, request, operation, attested, 'allow'));
    return { status: 200, body };
  } catch (err) {
    const failure =
      err instanceof TresorError
        ? err
        : new TresorError('INTERNAL_ERROR', 'the key server failed unexpectedly; nothing was released', {
            cause: err,
          });
    services.decisions.record({
      ...decision(services, request, operation, attested, 'deny'),
      code: failure.code,
      reason: failure.message,
    });
    return {
      status: failure.status,
      body: { code: failure.code, message: failure.message, action: failure.action },
    };
  }
}

function decision(
  services: KyokServices,
  request: KyokRequest,
  operation: Operation | null,
  attested: AttestationResult | null,
  verdict: 'allow' | 'deny',
): KeyDecision {
  const base: KeyDecision = {
    time: services.now().toISOString(),
    decision: verdict,
    operation: operation?.name ?? `${request.method} ${request.path.slice(0, 200)}`,
    tenant: operation?.tenant ?? null,
    keyId: operation?.keyId ?? null,
    client: request.client,
  };
  if (attested === null) return base;
  return {
    ...base,
    tokenIssuer: attested.issuer,
    tokenIssuedAt: attested.issuedAt.toISOString(),
    tees: attested.submodules.map((s) => s.tee ?? 'unknown'),
    measurements: Object.assign({}, ...attested.submodules.map((s) => s.measurements)) as Record<
      string,
      string
    >,
  };
}

function route(services: KyokServices, request: KyokRequest): Operation {
  const { keyStore, owners, revocations } = services;
  const notFound = (): TresorError =>
    new TresorError('USAGE_INVALID', `no such endpoint: ${request.method} ${request.path.slice(0, 200)}`);
  if (!request.path.startsWith(`${API_PREFIX}/`)) throw notFound();
  const parts = request.path.slice(API_PREFIX.length + 1).split('/');
  const { method, body } = request;
  const op = (
    name: string,
    caller: Caller,
    tenant: TenantId | null,
    keyId: KeyId | null,
    run: Operation['run'],
  ): Operation => ({
    name,
    caller,
    tenant,
    keyId,
    run,
  });

  if (parts.length === 1 && parts[0] === 'import-parameters' && method === 'GET') {
    return op('import-parameters', 'admin', null, null, () => keyStore.importParameters());
  }
  if (parts[0] !== 'tenants' || parts.length < 3) throw notFound();
  const tenant = parseTenantId(parts[1]);
  const ownKeys = async (): Promise<KeyMetadata[]> => {
    const all = await keyStore.list();
    const mine = new Set(owners.keysOf(tenant));
    return all.filter((k) => mine.has(k.id));
  };
  const revocation = async (): Promise<RevocationStatus> => {
    const at = await revocations.revokedAt(tenant);
    return { tenant, revoked: at !== null, revokedAt: at };
  };

  if (parts.length === 3) {
    switch (`${method} ${parts[2]}`) {
      case 'GET keys':
        return op('list', 'client', tenant, null, ownKeys);
      case 'POST keys':
        return op('create', 'admin', tenant, null, async () => {
          const meta = await createKey(keyStore, body);
          await owners.assign(meta.id, tenant);
          return meta;
        });
      case 'POST imports':
        return op('import', 'admin', tenant, null, async () => {
          const material = binaryField(body, 'wrappedKeyMaterial', 1024, 'KEY_IMPORT_INVALID');
          const meta = await keyStore.importKek(material, {
            label: checkLabel(stringField(body, 'label', 'USAGE_INVALID')),
          });
          await owners.assign(meta.id, tenant);
          return meta;
        });
      case 'GET revocation':
        return op('revocation-status', 'client', tenant, null, revocation);
      case 'POST revoke':
        return op('revoke', 'admin', tenant, null, async () => {
          await revocations.revoke(tenant);
          return revocation();
        });
      case 'POST reinstate':
        return op('reinstate', 'admin', tenant, null, async () => {
          await revocations.reinstate(tenant);
          return revocation();
        });
      default:
        throw notFound();
    }
  }
  if (parts[2] !== 'keys' || parts.length > 5) throw notFound();
  const keyId = parts[3];
  if (!isKeyId(keyId)) throw new TresorError('USAGE_INVALID', 'the key id in the path is not a key id');
  const action = parts[4] ?? '';
  switch (`${method} ${action}`) {
    case 'GET ':
      return op('describe', 'client', tenant, keyId, () => keyStore.describe(keyId));
    case 'GET public-key':
      return op('public-key', 'client', tenant, keyId, () => keyStore.publicKey(keyId));
    case 'POST wrap':
      return op('wrap', 'workload', tenant, keyId, async () => {
        const dataKey = SecretKeyBytes.takeFrom(binaryField(body, 'key', 64, 'INPUT_MALFORMED'));
        try {
          const wrapped = await keyStore.wrapKey(keyId, dataKey);
          return { wrappedKey: encodeBinary(wrapped.ciphertext) };
        } finally {
          dataKey.dispose();
        }
      });
    case 'POST unwrap':
      return op('unwrap', 'workload', tenant, keyId, async () => {
        const ciphertext = binaryField(body, 'wrappedKey', WRAPPED_DATA_KEY_LENGTH * 2, 'KEY_UNWRAP_FAILED');
        const dataKey = await keyStore.unwrapKey({ kekId: keyId, algorithm: 'A256KW', ciphertext });
        try {
          return { key: dataKey.expose(encodeBinary) };
        } finally {
          dataKey.dispose();
        }
      });
    case 'POST sign':
      return op('sign', 'workload', tenant, keyId, async () => {
        const message = binaryField(body, 'message', 16 * 1024, 'INPUT_MALFORMED');
        return { signature: encodeBinary(await keyStore.sign(keyId, message)) };
      });
    case 'POST disable':
      return op('disable', 'admin', tenant, keyId, () => keyStore.disable(keyId));
    case 'POST enable':
      return op('enable', 'admin', tenant, keyId, () => keyStore.enable(keyId));
    case 'POST destroy':
      return op('destroy', 'admin', tenant, keyId, () => keyStore.destroy(keyId));
    default:
      throw notFound();
  }
}

async function createKey(keyStore: KeyStore, body: unknown): Promise<KeyMetadata> {
  const code: ErrorCode = 'USAGE_INVALID';
  const o = objectOf(body, code);
  const label = checkLabel(stringField(body, 'label', code));
  if (o.kind === 'kek') return keyStore.createKek({ label });
  if (o.kind === 'signing' && isSigningAlgorithm(o.algorithm))
    return keyStore.createSigningKey(o.algorithm, { label });
  throw new TresorError(
    code,
    'create a key with { "kind": "kek" } or { "kind": "signing", "algorithm": "ES256" | "ES384" }',
  );
}
