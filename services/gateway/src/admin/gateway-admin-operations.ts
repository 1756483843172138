import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { EnvelopeCipher, serializeWrappedKey, type KeyId, type KeyStore } from '@tresor/keystore';
import {
  API_KEY_SCOPES,
  TENANT_ID_PATTERN,
  type ApiKeyRecord,
  type ApiKeyRepository,
  type PolicyRepository,
  type TenantRepository,
  type UsageRepository,
} from '@tresor/storage';
import type { AdminOperation } from '@tresor/trust';
import type { ApiKeyAuthenticator } from '../auth/api-key-authenticator.js';
import { generateApiKey } from '../auth/api-key-secret.js';
import { checkGatewayPolicy, type GatewayAuthorizer } from '../auth/gateway-policy.js';
import { parseAdminInput as parse } from './admin-input.js';
import { statusOperations, type StatusParts } from './status-operations.js';

export interface GatewayAdminParts {
  /** Audit verification and key status (audit/verify, keystore/status). */
  readonly status: Omit<StatusParts, 'keyStore' | 'now'>;
  readonly tenants: TenantRepository;
  readonly keys: ApiKeyRepository;
  readonly policies: PolicyRepository;
  readonly usage: UsageRepository;
  readonly keyStore: KeyStore;
  readonly tenantKek: KeyId;
  readonly authenticator: ApiKeyAuthenticator;
  readonly authorizer: GatewayAuthorizer;
  readonly now: () => Date;
}

const tenantId = z
  .string()
  .regex(TENANT_ID_PATTERN, 'a tenant id: lowercase letters, digits and "-", at most 63');
const displayName = z
  .string()
  .max(128)
  // eslint-disable-next-line no-control-regex
  .regex(/^[^\u0000-\u001f\u007f]*$/, 'no control characters');
const limit = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const keyId = z.string().regex(/^[a-z0-9]{16}$/, 'an API key id (16 lowercase letters and digits)');

function keyView(k: ApiKeyRecord): Record<string, unknown> {
  return {
    id: k.id,
    tenant: k.tenant,
    name: k.displayName,
    scopes: k.scopes,
    createdAt: k.createdAt.toISOString(),
    expiresAt: k.expiresAt?.toISOString() ?? null,
    revokedAt: k.revokedAt?.toISOString() ?? null,
    ...(k.requestsPerMinute === undefined ? {} : { requestsPerMinute: k.requestsPerMinute }),
    ...(k.tokensPerDay === undefined ? {} : { tokensPerDay: k.tokensPerDay }),
  };
}

/**
 * The gateway's signed admin operations (`POST /admin/v0/<name>`, the trust service's admin scheme):
 * tenants, API keys, policies and the usage export. Every change is audited before it shows.
 * `api-keys/create` is the one answer that carries a secret: the new key, shown exactly once, over
 * TLS terminated inside the gateway's enclave; only its salted hash is stored.
 */
export function gatewayAdminOperations(p: GatewayAdminParts): AdminOperation<unknown>[] {
  const ops: AdminOperation<unknown>[] = [];
  const add = <I>(op: AdminOperation<I>): void => {
    ops.push(op);
  };

  add({
    name: 'tenants/create',
    summary: 'Create a tenant (its data key is wrapped by the configured tenant KEK).',
    mutates: true,
    parse: (v) =>
      parse(
        z.strictObject({
          id: tenantId,
          name: displayName.optional(),
          requestsPerMinute: limit.optional(),
          tokensPerDay: limit.optional(),
        }),
        v,
        'tenants/create',
      ),
    target: (i) => `tenant:${i.id}`,
    async run(input, commit) {
      if ((await p.tenants.get(input.id)) !== undefined) {
        throw new TresorError('STORAGE_CONFLICT', `tenant ${input.id} exists already`);
      }
      const wrapped = await EnvelopeCipher.newDataKey(p.keyStore, p.tenantKek);
      await commit({ tenant: input.id });
      await p.tenants.create({
        id: input.id,
        displayName: input.name ?? input.id,
        wrappedDataKey: serializeWrappedKey(wrapped),
        ...(input.requestsPerMinute === undefined ? {} : { requestsPerMinute: input.requestsPerMinute }),
        ...(input.tokensPerDay === undefined ? {} : { tokensPerDay: input.tokensPerDay }),
        createdAt: p.now(),
      });
      return { id: input.id };
    },
  });

  add({
    name: 'tenants/list',
    summary: 'List the tenants with their limits.',
    mutates: false,
    parse: () => null,
    target: () => 'tenants',
    async run() {
      const tenants = await p.tenants.list();
      return {
        tenants: tenants.map((t) => ({
          id: t.id,
          name: t.displayName,
          createdAt: t.createdAt.toISOString(),
          ...(t.requestsPerMinute === undefined ? {} : { requestsPerMinute: t.requestsPerMinute }),
          ...(t.tokensPerDay === undefined ? {} : { tokensPerDay: t.tokensPerDay }),
        })),
      };
    },
  });

  add({
    name: 'api-keys/create',
    summary: 'Create an API key for a tenant; the answer holds the key, shown once.',
    mutates: true,
    parse: (v) =>
      parse(
        z.strictObject({
          tenant: tenantId,
          name: displayName.optional(),
          scopes: z.array(z.enum(API_KEY_SCOPES)).min(1).max(API_KEY_SCOPES.length).optional(),
          expiresAt: z.iso.datetime({ offset: true }).optional(),
          requestsPerMinute: limit.optional(),
          tokensPerDay: limit.optional(),
        }),
        v,
        'api-keys/create',
      ),
    target: (i) => `tenant:${i.tenant}`,
    async run(input, commit) {
      if ((await p.tenants.get(input.tenant)) === undefined) {
        throw new TresorError('TENANT_NOT_FOUND', `no tenant ${input.tenant}`);
      }
      const now = p.now();
      const expiresAt = input.expiresAt === undefined ? null : new Date(input.expiresAt);
      if (expiresAt !== null && expiresAt.getTime() <= now.getTime()) {
        throw new TresorError('INPUT_MALFORMED', 'api-keys/create: expiresAt lies in the past');
      }
      const fresh = generateApiKey();
      const record: ApiKeyRecord = {
        id: fresh.id,
        tenant: input.tenant,
        displayName: input.name ?? '',
        salt: fresh.salt,
        hash: fresh.hash,
        scopes: [...new Set(input.scopes ?? API_KEY_SCOPES)],
        ...(input.requestsPerMinute === undefined ? {} : { requestsPerMinute: input.requestsPerMinute }),
        ...(input.tokensPerDay === undefined ? {} : { tokensPerDay: input.tokensPerDay }),
        createdAt: now,
        expiresAt,
        revokedAt: null,
      };
      await commit({ keyId: fresh.id });
      await p.keys.create(record);
      return { ...keyView(record), key: fresh.token };
    },
  });

  add({
    name: 'api-keys/revoke',
    summary: 'Revoke an API key; requests with it are refused from then on.',
    mutates: true,
    parse: (v) => parse(z.strictObject({ id: keyId }), v, 'api-keys/revoke'),
    target: (i) => `api-key:${i.id}`,
    async run(input, commit) {
      const existing = await p.keys.get(input.id);
      if (existing === undefined) throw new TresorError('ADMIN_TARGET_NOT_FOUND', `no API key ${input.id}`);
      await commit({ tenant: existing.tenant });
      const revoked = await p.keys.revoke(input.id, p.now());
      p.authenticator.forget(input.id);
      return keyView(revoked);
    },
  });

  add({
    name: 'api-keys/list',
    summary: "List a tenant's API keys (ids and metadata, never keys or hashes).",
    mutates: false,
    parse: (v) => parse(z.strictObject({ tenant: tenantId }), v, 'api-keys/list'),
    target: (i) => `tenant:${i.tenant}`,
    async run(input) {
      if ((await p.tenants.get(input.tenant)) === undefined) {
        throw new TresorError('TENANT_NOT_FOUND', `no tenant ${input.tenant}`);
      }
      return { keys: (await p.keys.listByTenant(input.tenant)).map(keyView) };
    },
  });

  add({
    name: 'policies/set',
    summary: "Replace a tenant's Cedar policy (tenant × model × operation; default deny).",
    mutates: true,
    parse: (v) =>
      parse(z.strictObject({ tenant: tenantId, policy: z.string().max(256 * 1024) }), v, 'policies/set'),
    target: (i) => `tenant:${i.tenant}`,
    async run(input, commit) {
      if ((await p.tenants.get(input.tenant)) === undefined) {
        throw new TresorError('TENANT_NOT_FOUND', `no tenant ${input.tenant}`);
      }
      checkGatewayPolicy(input.policy);
      const { createHash } = await import('node:crypto');
      const sha256 = createHash('sha256').update(input.policy, 'utf8').digest('hex');
      await commit({ sha256 });
      const stored = await p.policies.set(input.tenant, input.policy, p.now());
      p.authorizer.forget(input.tenant);
      return { tenant: input.tenant, version: stored.version, sha256 };
    },
  });

  add({
    name: 'policies/get',
    summary: "The tenant's Cedar policy in force.",
    mutates: false,
    parse: (v) => parse(z.strictObject({ tenant: tenantId }), v, 'policies/get'),
    target: (i) => `tenant:${i.tenant}`,
    async run(input) {
      const stored = await p.policies.get(input.tenant);
      if (stored === undefined)
        throw new TresorError('ADMIN_TARGET_NOT_FOUND', `tenant ${input.tenant} has no policy`);
      return {
        tenant: stored.tenant,
        policy: stored.policy,
        version: stored.version,
        updatedAt: stored.updatedAt.toISOString(),
      };
    },
  });

  add({
    name: 'usage',
    summary: "Export a tenant's usage records (minimal metadata) and totals.",
    mutates: false,
    parse: (v) =>
      parse(
        z.strictObject({
          tenant: tenantId,
          from: z.iso.datetime({ offset: true }).optional(),
          to: z.iso.datetime({ offset: true }).optional(),
          limit: z.number().int().min(1).max(10_000).optional(),
        }),
        v,
        'usage',
      ),
    target: (i) => `tenant:${i.tenant}`,
    async run(input) {
      const range = {
        tenant: input.tenant,
        ...(input.from === undefined ? {} : { from: new Date(input.from) }),
        ...(input.to === undefined ? {} : { to: new Date(input.to) }),
      };
      const [records, totals] = await Promise.all([
        p.usage.list({ ...range, ...(input.limit === undefined ? {} : { limit: input.limit }) }),
        p.usage.totals(range),
      ]);
      return {
        tenant: input.tenant,
        totals,
        records: records.map((r) => ({
          id: r.id,
          apiKeyId: r.apiKeyId,
          model: r.model.readable ? r.model.value : null,
          promptTokens: r.promptTokens,
          completionTokens: r.completionTokens,
          latencyMs: r.latencyMs,
          status: r.status,
          time: r.time,
        })),
      };
    },
  });
  ops.push(...statusOperations({ ...p.status, keyStore: p.keyStore, now: p.now }));
  return ops;
}
