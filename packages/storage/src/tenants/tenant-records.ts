import { TresorError } from '@tresor/protocol';

/**
 * What the gateway keeps about its customers (DESIGN.md §6): tenants, their API keys (a salted
 * hash, never the key) and one Cedar authorization policy per tenant. No content, no secrets in
 * the clear: the tenant's data key is stored wrapped by its KEK in the keystore.
 */

/** Tenant and key ids: what URLs, audit targets and Cedar entity ids can carry unescaped. */
export const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
export const API_KEY_ID_PATTERN = /^[a-z0-9]{16}$/;
/** Scopes an API key may carry: the OpenAI operations it may call. */
export const API_KEY_SCOPES = ['chat', 'completions', 'embeddings', 'models'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];
/** A display name: what an administrator calls a tenant or key; never secret, printed by the CLI. */
// eslint-disable-next-line no-control-regex
const DISPLAY_NAME = /^[^\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]{0,128}$/u;
const MAX_POLICY_LENGTH = 256 * 1024;

/** Optional per-tenant or per-key limits; absent means the gateway's configured default. */
export interface UsageLimits {
  readonly requestsPerMinute?: number;
  readonly tokensPerDay?: number;
}

export interface TenantRecord extends UsageLimits {
  readonly id: string;
  readonly displayName: string;
  /** The tenant's data key, wrapped by its KEK (keystore `serializeWrappedKey` text). */
  readonly wrappedDataKey: string;
  readonly createdAt: Date;
}

export interface ApiKeyRecord extends UsageLimits {
  readonly id: string;
  readonly tenant: string;
  readonly displayName: string;
  /** Random per key; the hash is HMAC-SHA-256(salt, secret). */
  readonly salt: Uint8Array;
  readonly hash: Uint8Array;
  readonly scopes: readonly ApiKeyScope[];
  readonly createdAt: Date;
  readonly expiresAt: Date | null;
  readonly revokedAt: Date | null;
}

export interface PolicyRecord {
  readonly tenant: string;
  /** Cedar policy text, validated by the gateway before it is stored. */
  readonly policy: string;
  /** 1 for the first policy of a tenant, one more for every replacement. */
  readonly version: number;
  readonly updatedAt: Date;
}

function invalid(what: string, problem: string): never {
  throw new TresorError('STORAGE_RECORD_INVALID', `${what}: ${problem}`);
}

function checkDate(value: unknown, what: string): Date {
  if (!(value instanceof Date) || Number.isNaN(value.getTime())) invalid(what, 'not a valid Date');
  const year = value.getUTCFullYear();
  if (year < 0 || year > 9999) invalid(what, 'outside the years 0000 to 9999');
  return value;
}

function checkLimit(value: unknown, what: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    invalid(what, 'not a non-negative integer');
  }
  return value;
}

export function checkTenantId(value: unknown): string {
  if (typeof value !== 'string' || !TENANT_ID_PATTERN.test(value)) {
    invalid('tenant id', 'not 1 to 63 of lowercase letters, digits and "-", starting with a letter or digit');
  }
  return value;
}

export function checkApiKeyId(value: unknown): string {
  if (typeof value !== 'string' || !API_KEY_ID_PATTERN.test(value)) {
    invalid('API key id', 'not 16 lowercase letters and digits');
  }
  return value;
}

function checkDisplayName(value: unknown, what: string): string {
  if (typeof value !== 'string' || !DISPLAY_NAME.test(value)) {
    invalid(what, 'not at most 128 characters without control characters');
  }
  return value;
}

function limits(record: UsageLimits, what: string): UsageLimits {
  const requestsPerMinute = checkLimit(record.requestsPerMinute, `${what} requestsPerMinute`);
  const tokensPerDay = checkLimit(record.tokensPerDay, `${what} tokensPerDay`);
  return {
    ...(requestsPerMinute === undefined ? {} : { requestsPerMinute }),
    ...(tokensPerDay === undefined ? {} : { tokensPerDay }),
  };
}

export function checkTenantRecord(record: TenantRecord): TenantRecord {
  if (typeof record.wrappedDataKey !== 'string' || record.wrappedDataKey.length === 0) {
    invalid('tenant', 'no wrapped data key');
  }
  return {
    id: checkTenantId(record.id),
    displayName: checkDisplayName(record.displayName, 'tenant display name'),
    wrappedDataKey: record.wrappedDataKey,
    ...limits(record, 'tenant'),
    createdAt: checkDate(record.createdAt, 'tenant createdAt'),
  };
}

export function checkApiKeyRecord(record: ApiKeyRecord): ApiKeyRecord {
  if (!(record.salt instanceof Uint8Array) || record.salt.length < 16)
    invalid('API key', 'salt shorter than 16 bytes');
  if (!(record.hash instanceof Uint8Array) || record.hash.length !== 32)
    invalid('API key', 'hash is not 32 bytes');
  const scopes: readonly unknown[] = Array.isArray(record.scopes) ? record.scopes : [];
  if (
    !Array.isArray(record.scopes) ||
    record.scopes.length === 0 ||
    !scopes.every((s) => (API_KEY_SCOPES as readonly unknown[]).includes(s)) ||
    new Set(scopes).size !== scopes.length
  ) {
    invalid('API key', `scopes are not a non-empty list of distinct ${API_KEY_SCOPES.join(', ')}`);
  }
  return {
    id: checkApiKeyId(record.id),
    tenant: checkTenantId(record.tenant),
    displayName: checkDisplayName(record.displayName, 'API key display name'),
    salt: record.salt,
    hash: record.hash,
    scopes: [...(scopes as readonly ApiKeyScope[])].sort(),
    ...limits(record, 'API key'),
    createdAt: checkDate(record.createdAt, 'API key createdAt'),
    expiresAt: record.expiresAt === null ? null : checkDate(record.expiresAt, 'API key expiresAt'),
    revokedAt: record.revokedAt === null ? null : checkDate(record.revokedAt, 'API key revokedAt'),
  };
}

export function checkPolicyText(policy: unknown): string {
  if (typeof policy !== 'string' || policy.length > MAX_POLICY_LENGTH) {
    invalid('policy', `not a text of at most ${MAX_POLICY_LENGTH} characters`);
  }
  return policy;
}
