import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openPostgres } from '../sql/postgres-client.js';
import { STATE_DB_FILE, type DatabaseTarget } from '../state-dir.js';

/** A fresh, empty database for one test, reachable from other connections and processes. */
export interface TestDatabase {
  readonly target: DatabaseTarget;
  dispose(): Promise<void>;
}

export interface StorageFixture {
  readonly name: string;
  create(): Promise<TestDatabase>;
}

/**
 * SQLite: a database file in a fresh temporary state directory, its connection on the calling
 * thread (`inline`) or on a worker thread (`worker`).
 */
export function sqliteFixture(thread: 'inline' | 'worker' = 'inline'): StorageFixture {
  return {
    name: thread === 'inline' ? 'sqlite' : 'sqlite on a worker thread',
    create: () => {
      const dir = mkdtempSync(join(tmpdir(), 'tresor-storage-'));
      return Promise.resolve({
        target: { kind: 'sqlite', file: join(dir, STATE_DB_FILE), thread },
        dispose: () => {
          rmSync(dir, { recursive: true, force: true });
          return Promise.resolve();
        },
      });
    },
  };
}

/** PostgreSQL: a fresh schema per test on the server at `url`, dropped afterwards. */
export function postgresFixture(url: string): StorageFixture {
  return {
    name: 'postgres',
    create: () => {
      const schema = `tresor_test_${randomBytes(6).toString('hex')}`;
      return Promise.resolve({
        target: { kind: 'postgres', url, schema },
        dispose: async () => {
          const admin = await openPostgres({ url });
          try {
            await admin.execute(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
          } finally {
            await admin.close();
          }
        },
      });
    },
  };
}
