import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { SqlClient } from '../sql/sql-client.js';
import { openMetadataDatabase } from '../state-dir.js';
import { SqlApiKeyRepository } from '../tenants/api-key-repository.js';
import { SqlPolicyRepository } from '../tenants/policy-repository.js';
import type { ApiKeyRecord, TenantRecord } from '../tenants/tenant-records.js';
import { SqlTenantRepository } from '../tenants/tenant-repository.js';
import type { StorageFixture, TestDatabase } from './storage-fixture.js';

const T0 = new Date('2025-03-01T10:00:00.000Z');

function tenant(id: string, overrides: Partial<TenantRecord> = {}): TenantRecord {
  return {
    id,
    displayName: `Tenant ${id}`,
    wrappedDataKey: `wk1.A256KW.kek-${id}.AAAA`,
    createdAt: T0,
    ...overrides,
  };
}

function key(id: string, tenantId: string, overrides: Partial<ApiKeyRecord> = {}): ApiKeyRecord {
  return {
    id,
    tenant: tenantId,
    displayName: 'ci key',
    salt: new Uint8Array(16).fill(7),
    hash: new Uint8Array(32).fill(9),
    scopes: ['chat', 'models'],
    createdAt: T0,
    expiresAt: null,
    revokedAt: null,
    ...overrides,
  };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const err: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  return (err as { code?: string } | undefined)?.code ?? 'resolved';
}

/** Tenants, API keys and policies: the gateway's repositories, on every backend. */
export function tenantsSuite(fixture: StorageFixture): void {
  describe('gateway tenants, API keys and policies', () => {
    let db: TestDatabase;
    let client: SqlClient;
    let tenants: SqlTenantRepository;
    let keys: SqlApiKeyRepository;
    let policies: SqlPolicyRepository;
    beforeEach(async () => {
      db = await fixture.create();
      client = await openMetadataDatabase(db.target);
      tenants = new SqlTenantRepository(client);
      keys = new SqlApiKeyRepository(client);
      policies = new SqlPolicyRepository(client);
    });
    afterEach(async () => {
      await client.close();
      await db.dispose();
    });

    it('creates, reads back field by field and lists tenants by id', async () => {
      await tenants.create(tenant('globex', { tokensPerDay: 5000 }));
      await tenants.create(tenant('acme', { requestsPerMinute: 60 }));
      expect(await tenants.get('acme')).toEqual(tenant('acme', { requestsPerMinute: 60 }));
      expect((await tenants.list()).map((t) => t.id)).toEqual(['acme', 'globex']);
      expect((await tenants.list())[1]).toEqual(tenant('globex', { tokensPerDay: 5000 }));
      expect(await tenants.get('initech')).toBeUndefined();
    });

    it('refuses a second tenant with the same id and malformed tenants', async () => {
      await tenants.create(tenant('acme'));
      expect(await codeOf(tenants.create(tenant('acme')))).toBe('STORAGE_CONFLICT');
      expect(await codeOf(tenants.create(tenant('Acme')))).toBe('STORAGE_RECORD_INVALID');
      expect(await codeOf(tenants.create(tenant('a b')))).toBe('STORAGE_RECORD_INVALID');
      expect(await codeOf(tenants.create(tenant('x', { displayName: 'bad\u0000name' })))).toBe(
        'STORAGE_RECORD_INVALID',
      );
      expect(await codeOf(tenants.create(tenant('y', { tokensPerDay: -1 })))).toBe('STORAGE_RECORD_INVALID');
      expect(await codeOf(tenants.create(tenant('z', { wrappedDataKey: '' })))).toBe(
        'STORAGE_RECORD_INVALID',
      );
    });

    it('sets and clears a tenant’s limits; unknown tenants are TENANT_NOT_FOUND', async () => {
      await tenants.create(tenant('acme', { requestsPerMinute: 5 }));
      await tenants.setLimits('acme', { tokensPerDay: 100 });
      expect(await tenants.get('acme')).toEqual(tenant('acme', { tokensPerDay: 100 }));
      expect(await codeOf(tenants.setLimits('nobody', {}))).toBe('TENANT_NOT_FOUND');
    });

    it('stores API keys with their salted hash, lists them per tenant and revokes once', async () => {
      await tenants.create(tenant('acme'));
      await tenants.create(tenant('globex'));
      const expires = new Date('2026-01-01T00:00:00.000Z');
      await keys.create(key('aaaaaaaaaaaaaaa1', 'acme', { expiresAt: expires, tokensPerDay: 10 }));
      await keys.create(key('aaaaaaaaaaaaaaa2', 'acme', { createdAt: new Date(T0.getTime() + 1000) }));
      await keys.create(key('bbbbbbbbbbbbbbb1', 'globex'));
      expect(await keys.get('aaaaaaaaaaaaaaa1')).toEqual(
        key('aaaaaaaaaaaaaaa1', 'acme', { expiresAt: expires, tokensPerDay: 10 }),
      );
      expect((await keys.listByTenant('acme')).map((k) => k.id)).toEqual([
        'aaaaaaaaaaaaaaa1',
        'aaaaaaaaaaaaaaa2',
      ]);
      const at = new Date('2025-04-01T00:00:00.000Z');
      expect((await keys.revoke('aaaaaaaaaaaaaaa2', at)).revokedAt).toEqual(at);
      // A second revocation keeps the first time.
      expect((await keys.revoke('aaaaaaaaaaaaaaa2', new Date())).revokedAt).toEqual(at);
      expect((await keys.get('aaaaaaaaaaaaaaa2'))?.revokedAt).toEqual(at);
      expect((await keys.get('bbbbbbbbbbbbbbb1'))?.revokedAt).toBeNull();
    });

    it('refuses keys for unknown tenants, duplicate ids, bad scopes, salts and hashes', async () => {
      await tenants.create(tenant('acme'));
      expect(await codeOf(keys.create(key('aaaaaaaaaaaaaaa1', 'nobody')))).toBe('TENANT_NOT_FOUND');
      await keys.create(key('aaaaaaaaaaaaaaa1', 'acme'));
      expect(await codeOf(keys.create(key('aaaaaaaaaaaaaaa1', 'acme')))).toBe('STORAGE_CONFLICT');
      expect(await codeOf(keys.create(key('short', 'acme')))).toBe('STORAGE_RECORD_INVALID');
      expect(await codeOf(keys.create(key('aaaaaaaaaaaaaaa3', 'acme', { scopes: [] })))).toBe(
        'STORAGE_RECORD_INVALID',
      );
      expect(
        await codeOf(keys.create(key('aaaaaaaaaaaaaaa4', 'acme', { scopes: ['admin' as 'chat'] }))),
      ).toBe('STORAGE_RECORD_INVALID');
      expect(await codeOf(keys.create(key('aaaaaaaaaaaaaaa5', 'acme', { salt: new Uint8Array(4) })))).toBe(
        'STORAGE_RECORD_INVALID',
      );
      expect(await codeOf(keys.create(key('aaaaaaaaaaaaaaa6', 'acme', { hash: new Uint8Array(31) })))).toBe(
        'STORAGE_RECORD_INVALID',
      );
      expect(await codeOf(keys.revoke('zzzzzzzzzzzzzzzz', T0))).toBe('ADMIN_TARGET_NOT_FOUND');
      expect(await keys.get('not-an-id')).toBeUndefined();
    });

    it('versions a tenant’s policy by one per change and refuses unknown tenants', async () => {
      await tenants.create(tenant('acme'));
      expect(await policies.get('acme')).toBeUndefined();
      const first = await policies.set('acme', 'permit(principal, action, resource);', T0);
      expect(first.version).toBe(1);
      const later = new Date(T0.getTime() + 60_000);
      const second = await policies.set('acme', 'forbid(principal, action, resource);', later);
      expect(second.version).toBe(2);
      expect(await policies.get('acme')).toEqual({
        tenant: 'acme',
        policy: 'forbid(principal, action, resource);',
        version: 2,
        updatedAt: later,
      });
      expect(await codeOf(policies.set('nobody', '', T0))).toBe('TENANT_NOT_FOUND');
      expect(await codeOf(policies.set('acme', 'x'.repeat(256 * 1024 + 1), T0))).toBe(
        'STORAGE_RECORD_INVALID',
      );
    });
  });
}
