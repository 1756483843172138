import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utf8Encode } from '@tresor/crypto';
import { EnvelopeCipher, FileKeyStore, SecretKeyBytes, type FieldCipher } from '@tresor/keystore';
import {
  openMetadataDatabase,
  type BatchOptions,
  type SqlClient,
  type SqlStatement,
  type SqlExecutor,
  type TransactionOptions,
  type UsageRecordInput,
} from '@tresor/storage';
import { BatchedUsageRepository, type BatchedUsageOptions } from './batched-usage-repository.js';

let dir: string;
let store: FileKeyStore;
let cipher: FieldCipher;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tresor-batched-usage-'));
  store = await FileKeyStore.open({
    path: join(dir, 'keys.json'),
    passphrase: SecretKeyBytes.copyOf(utf8Encode('batched usage test passphrase')),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
  const kek = (await store.createKek({ label: 'tenant acme' })).id;
  cipher = new EnvelopeCipher(store, await EnvelopeCipher.newDataKey(store, kek));
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** The real SQLite client, with its transactions' options recorded (a batch is a write transaction). */
class CountedClient implements SqlClient {
  readonly options: TransactionOptions[] = [];
  /** How many statements each transaction of known statements held. */
  readonly batchSizes: number[] = [];
  get transactions(): number {
    return this.options.length;
  }
  constructor(readonly inner: SqlClient) {}
  get dialect(): SqlClient['dialect'] {
    return this.inner.dialect;
  }
  query(sql: string, params?: readonly never[]) {
    return this.inner.query(sql, params);
  }
  execute(sql: string, params?: readonly never[]) {
    return this.inner.execute(sql, params);
  }
  transaction<T>(options: TransactionOptions, work: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    this.options.push(options);
    return this.inner.transaction(options, work);
  }
  executeBatch(statements: readonly SqlStatement[], options: BatchOptions = {}): Promise<number[]> {
    this.options.push({ mode: 'write', ...options });
    this.batchSizes.push(statements.length);
    return this.inner.executeBatch(statements, options);
  }
  close() {
    return this.inner.close();
  }
}

let n = 0;
async function fixture(
  options: BatchedUsageOptions = {},
): Promise<{ db: CountedClient; usage: BatchedUsageRepository }> {
  n++;
  const db = new CountedClient(
    await openMetadataDatabase({ kind: 'sqlite', file: join(dir, `usage-${String(n)}.db`) }),
  );
  return { db, usage: new BatchedUsageRepository(db, () => Promise.resolve(cipher), options) };
}

function record(id: string, overrides: Partial<UsageRecordInput> = {}): UsageRecordInput {
  return {
    id,
    tenant: 'acme',
    apiKeyId: 'key-1',
    model: 'tresor-demo',
    promptTokens: 16,
    completionTokens: 32,
    latencyMs: 3,
    status: 200,
    time: new Date('2026-12-07T12:00:00.000Z'),
    ...overrides,
  };
}

const ids = (rows: readonly { id: string }[]): string[] => rows.map((r) => r.id).sort();

describe('BatchedUsageRepository', () => {
  it('writes the records of requests finishing together in one transaction, each readable with its sealed model', async () => {
    const { db, usage } = await fixture();
    await Promise.all(Array.from({ length: 20 }, (_, i) => usage.record(record(`r-${String(i)}`))));
    expect(db.transactions).toBe(1);
    expect(db.batchSizes).toEqual([20]);
    const rows = await usage.list({ tenant: 'acme' });
    expect(rows).toHaveLength(20);
    expect(rows[0]).toMatchObject({
      tenant: 'acme',
      apiKeyId: 'key-1',
      promptTokens: 16,
      completionTokens: 32,
    });
    expect(rows.every((r) => r.model.readable && r.model.value === 'tresor-demo')).toBe(true);
    expect(await usage.totals({ tenant: 'acme' })).toMatchObject({ requests: 20 });
    await db.close();
  });

  it('acknowledges a record only once it is committed: a second connection reads it', async () => {
    const { db, usage } = await fixture();
    await usage.record(record('only-one'));
    const other = await openMetadataDatabase({ kind: 'sqlite', file: join(dir, `usage-${String(n)}.db`) });
    expect(await other.query('SELECT id FROM usage_records')).toEqual([{ id: 'only-one' }]);
    await other.close();
    await db.close();
  });

  it('nothing is acknowledged before its commit: records wait for the batch, then all settle at once', async () => {
    const { db } = await fixture();
    const runs: (() => void)[] = [];
    let manual = true;
    let deferred!: () => void;
    const scheduled = new Promise<void>((resolve) => (deferred = resolve));
    const usage = new BatchedUsageRepository(db, () => Promise.resolve(cipher), {
      defer: (run) => {
        if (!manual) {
          setImmediate(run);
          return;
        }
        runs.push(run);
        deferred();
      },
    });
    let settled = 0;
    const pending = ['a', 'b', 'c'].map((id) => usage.record(record(id)).then(() => settled++));
    await scheduled;
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(0);
    expect(await db.query('SELECT id FROM usage_records')).toEqual([]);
    manual = false;
    for (const run of runs.splice(0)) run();
    await Promise.all(pending);
    expect(settled).toBe(3);
    expect(ids(await usage.list({ tenant: 'acme' }))).toEqual(['a', 'b', 'c']);
    await db.close();
  });

  it('a duplicate request id fails alone (STORAGE_CONFLICT); its batch neighbours are stored', async () => {
    const { db, usage } = await fixture();
    await usage.record(record('dup'));
    const results = await Promise.allSettled([
      usage.record(record('x')),
      usage.record(record('dup')),
      usage.record(record('y')),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'STORAGE_CONFLICT' });
    expect(ids(await usage.list({ tenant: 'acme' }))).toEqual(['dup', 'x', 'y']);
    await db.close();
  });

  it('a lone duplicate is refused with STORAGE_CONFLICT and nothing else is written', async () => {
    const { db, usage } = await fixture();
    await usage.record(record('once'));
    await expect(usage.record(record('once'))).rejects.toMatchObject({ code: 'STORAGE_CONFLICT' });
    expect(ids(await usage.list({ tenant: 'acme' }))).toEqual(['once']);
    await db.close();
  });

  it.each([
    ['a negative token count', { promptTokens: -1 }],
    ['a status that is no HTTP status', { status: 42 }],
    ['an invalid time', { time: new Date(Number.NaN) }],
    ['an id with a space', { id: 'bad id' }],
  ])(
    'refuses %s with STORAGE_RECORD_INVALID before any commit; the others are stored',
    async (_name, bad) => {
      const { db, usage } = await fixture();
      const results = await Promise.allSettled([
        usage.record(record('good-1')),
        usage.record(record('bad', bad)),
        usage.record(record('good-2')),
      ]);
      expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: 'STORAGE_RECORD_INVALID' });
      expect(ids(await usage.list({ tenant: 'acme' }))).toEqual(['good-1', 'good-2']);
      await db.close();
    },
  );

  it('fails closed when the database is closed: STORAGE_UNAVAILABLE, nothing acknowledged', async () => {
    const { db, usage } = await fixture();
    await db.close();
    await expect(usage.record(record('late'))).rejects.toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
  });

  it('a record whose tenant key is unavailable is refused with that error and never written', async () => {
    const { db } = await fixture();
    const usage = new BatchedUsageRepository(db, () => Promise.reject(new Error('keystore unreachable')));
    await expect(usage.record(record('no-key'))).rejects.toThrow('keystore unreachable');
    expect(await db.query('SELECT id FROM usage_records')).toEqual([]);
    await db.close();
  });

  describe('durability', () => {
    it('commits without a per-commit fsync by default, and the connection is back at FULL after', async () => {
      const { db, usage } = await fixture();
      await Promise.all([usage.record(record('a')), usage.record(record('b'))]);
      expect(db.options).toEqual([{ mode: 'write', durability: 'process-crash' }]);
      // 2 = FULL: nothing outside the usage transaction runs relaxed.
      expect(await db.query('PRAGMA synchronous')).toEqual([{ synchronous: 2 }]);
      expect(ids(await usage.list({ tenant: 'acme' }))).toEqual(['a', 'b']);
      await db.close();
    });

    it.each(['power-loss', 'process-crash'] as const)(
      'passes durability "%s" to every transaction, the one-by-one retries of a failed batch included',
      async (durability) => {
        const { db, usage } = await fixture({ durability });
        await usage.record(record('dup'));
        const results = await Promise.allSettled([usage.record(record('x')), usage.record(record('dup'))]);
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
        // The first record, the failed batch of two, then each of its records on its own.
        expect(db.options).toHaveLength(4);
        expect(db.options.every((o) => o.mode === 'write' && o.durability === durability)).toBe(true);
        expect(await db.query('PRAGMA synchronous')).toEqual([{ synchronous: 2 }]);
        await db.close();
      },
    );
  });
});
