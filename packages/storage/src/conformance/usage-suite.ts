import { TresorError } from '@tresor/protocol';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { SqlClient } from '../sql/sql-client.js';
import { openMetadataDatabase } from '../state-dir.js';
import { SqlUsageRepository } from '../usage/usage-repository.js';
import type { UsageRecordInput } from '../usage/usage-record.js';
import type { StorageFixture, TestDatabase } from './storage-fixture.js';
import { openTestKeyStore, tenantKeys, type TenantKeys, type TestKeyStore } from './tenant-keys.js';

const MODEL = 'acme-merger-analysis-ft-v2';

function request(n: number, overrides: Partial<UsageRecordInput> = {}): UsageRecordInput {
  return {
    id: `req-${n}`,
    tenant: 'acme',
    apiKeyId: 'key-acme-01',
    model: MODEL,
    promptTokens: 10 * n,
    completionTokens: 100 * n,
    latencyMs: 250 + n,
    status: 200,
    time: new Date(Date.UTC(2025, 0, 1, 0, n)),
    ...overrides,
  };
}

export function usageSuite(fixture: StorageFixture): void {
  describe('usage records with a sealed model column', () => {
    let db: TestDatabase;
    let client: SqlClient;
    let keyStore: TestKeyStore;
    let keys: TenantKeys;
    let usage: SqlUsageRepository;
    beforeAll(async () => {
      keyStore = await openTestKeyStore();
    });
    afterAll(async () => {
      await keyStore.close();
    });
    beforeEach(async () => {
      db = await fixture.create();
      client = await openMetadataDatabase(db.target);
      keys = tenantKeys(keyStore.store);
      usage = new SqlUsageRepository(client, keys.ciphers);
    });
    afterEach(async () => {
      await client.close();
      await db.dispose();
    });

    it('records, lists in time order within a range, and totals per tenant', async () => {
      for (const n of [3, 1, 2, 4]) await usage.record(request(n));
      await usage.record(request(5, { tenant: 'globex', model: 'llama-3-8b' }));
      const listed = await usage.list({ tenant: 'acme' });
      expect(listed.map((r) => r.id)).toEqual(['req-1', 'req-2', 'req-3', 'req-4']);
      expect(listed[0]).toEqual({
        id: 'req-1',
        tenant: 'acme',
        apiKeyId: 'key-acme-01',
        model: { readable: true, value: MODEL },
        promptTokens: 10,
        completionTokens: 100,
        latencyMs: 251,
        status: 200,
        time: '2025-01-01T00:01:00.000Z',
      });
      const window = {
        tenant: 'acme',
        from: new Date('2025-01-01T00:02:00Z'),
        to: new Date('2025-01-01T00:04:00Z'),
      };
      expect((await usage.list(window)).map((r) => r.id)).toEqual(['req-2', 'req-3']);
      expect((await usage.list({ tenant: 'acme', limit: 1 })).map((r) => r.id)).toEqual(['req-1']);
      expect(await usage.totals(window)).toEqual({ requests: 2, promptTokens: 50, completionTokens: 500 });
      expect(await usage.totals({ tenant: 'nobody' })).toEqual({
        requests: 0,
        promptTokens: 0,
        completionTokens: 0,
      });
      expect((await usage.list({ tenant: 'globex' }))[0]?.model).toEqual({
        readable: true,
        value: 'llama-3-8b',
      });
    });

    it('stores the model only as AES-256-GCM ciphertext', async () => {
      await usage.record(request(1));
      const [row] = await client.query("SELECT model_sealed FROM usage_records WHERE id = 'req-1'");
      const sealed = Buffer.from(row?.model_sealed as Uint8Array);
      // format byte + 96-bit nonce + ciphertext + 128-bit tag
      expect(sealed.length).toBe(1 + 12 + MODEL.length + 16);
      expect(sealed.includes(Buffer.from(MODEL))).toBe(false);
      expect(sealed.includes(Buffer.from('merger'))).toBe(false);
    });

    it('crypto-shredding: after the tenant KEK is destroyed the model is unreadable, the rest of the row remains', async () => {
      await usage.record(request(1));
      await usage.record(request(2, { tenant: 'globex' }));
      await keyStore.store.destroy(await keys.kekOf('acme'));
      const [shredded] = await usage.list({ tenant: 'acme' });
      expect(shredded).toMatchObject({ id: 'req-1', promptTokens: 10, completionTokens: 100, status: 200 });
      expect(shredded?.model).toMatchObject({ readable: false, code: 'KEY_DESTROYED' });
      expect(JSON.stringify(shredded)).not.toContain(MODEL);
      expect(await usage.totals({ tenant: 'acme' })).toEqual({
        requests: 1,
        promptTokens: 10,
        completionTokens: 100,
      });
      expect((await usage.list({ tenant: 'globex' }))[0]?.model).toEqual({ readable: true, value: MODEL });
      await expect(usage.record(request(3))).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
    });

    it('withholds a sealed value moved to another row (the row id is in the AAD)', async () => {
      await usage.record(request(1));
      await usage.record(request(2, { model: 'another-model' }));
      await client.execute(
        "UPDATE usage_records SET model_sealed = (SELECT model_sealed FROM usage_records WHERE id = 'req-1') WHERE id = 'req-2'",
      );
      const listed = await usage.list({ tenant: 'acme' });
      expect(listed[0]?.model).toEqual({ readable: true, value: MODEL });
      expect(listed[1]?.model).toMatchObject({ readable: false, code: 'ENCRYPTED_FIELD_INVALID' });
    });

    it('passes a keystore outage through instead of reporting the value as lost', async () => {
      await usage.record(request(1));
      const outage = new SqlUsageRepository(client, () =>
        Promise.reject(new TresorError('KEYSTORE_UNAVAILABLE', 'HSM unreachable')),
      );
      await expect(outage.list({ tenant: 'acme' })).rejects.toMatchObject({ code: 'KEYSTORE_UNAVAILABLE' });
    });

    it('refuses a second record with the same request id', async () => {
      await usage.record(request(1));
      await expect(usage.record(request(1, { promptTokens: 99 }))).rejects.toMatchObject({
        code: 'STORAGE_CONFLICT',
      });
      expect(await usage.totals({ tenant: 'acme' })).toEqual({
        requests: 1,
        promptTokens: 10,
        completionTokens: 100,
      });
    });

    it.each([
      ['id', { id: '' }],
      ['id', { id: 'has space' }],
      ['tenant', { tenant: '../etc' }],
      ['apiKeyId', { apiKeyId: 'sk-live key' }],
      ['model', { model: '' }],
      ['model', { model: 'a\nb' }],
      ['promptTokens', { promptTokens: -1 }],
      ['completionTokens', { completionTokens: 1.5 }],
      ['latencyMs', { latencyMs: Number.NaN }],
      ['status', { status: 700 }],
      ['time', { time: new Date('invalid') }],
    ] as const)('refuses an invalid %s', async (_, overrides) => {
      await expect(usage.record(request(1, overrides as Partial<UsageRecordInput>))).rejects.toMatchObject({
        code: 'STORAGE_RECORD_INVALID',
      });
      expect(await usage.totals({ tenant: 'acme' })).toMatchObject({ requests: 0 });
    });

    it('purges records made before a cutoff', async () => {
      for (const n of [1, 2, 3, 4]) await usage.record(request(n));
      expect(await usage.purgeBefore(new Date('2025-01-01T00:03:00Z'))).toBe(2);
      expect((await usage.list({ tenant: 'acme' })).map((r) => r.id)).toEqual(['req-3', 'req-4']);
    });
  });
}
