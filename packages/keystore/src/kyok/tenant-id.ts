import { TresorError } from '@tresor/protocol';

/** A tenant id: the same alphabet as key ids, so it fits a URL path segment unescaped. */
export type TenantId = string & { readonly __brand: 'TenantId' };

const TENANT_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function parseTenantId(value: unknown): TenantId {
  if (typeof value !== 'string' || !TENANT_ID.test(value)) {
    throw new TresorError(
      'USAGE_INVALID',
      'a tenant id is 1 to 64 characters of letters, digits, "_" and "-"',
    );
  }
  return value as TenantId;
}
