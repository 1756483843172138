import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SqlUsedRequestIds } from '../replay/used-request-ids.js';
import type { SqlClient } from '../sql/sql-client.js';
import { openMetadataDatabase } from '../state-dir.js';
import type { StorageFixture, TestDatabase } from './storage-fixture.js';

const T = 1_767_225_600_000;

export function replaySuite(fixture: StorageFixture): void {
  describe('used request ids (replay protection)', () => {
    let db: TestDatabase;
    const clients: SqlClient[] = [];
    const open = async (): Promise<SqlUsedRequestIds> => {
      const client = await openMetadataDatabase(db.target);
      clients.push(client);
      return new SqlUsedRequestIds(client);
    };
    beforeEach(async () => {
      db = await fixture.create();
    });
    afterEach(async () => {
      for (const c of clients.splice(0)) await c.close();
      await db.dispose();
    });

    it('accepts an id once per scope, and again only after it expired', async () => {
      const ids = await open();
      expect(await ids.use('admin', 'alice\u0000jti-1', T + 300_000, T, 10)).toBe('accepted');
      expect(await ids.use('admin', 'alice\u0000jti-1', T + 600_000, T + 1, 10)).toBe('replayed');
      expect(await ids.use('admin', 'alice\u0000jti-1', T + 600_000, T + 299_999, 10)).toBe('replayed');
      expect(await ids.use('other', 'alice\u0000jti-1', T + 300_000, T, 10)).toBe('accepted');
      expect(await ids.use('admin', 'bob\u0000jti-1', T + 300_000, T, 10)).toBe('accepted');
      expect(await ids.use('admin', 'alice\u0000jti-1', T + 900_000, T + 300_000, 10)).toBe('accepted');
    });

    it('refuses new ids when the scope is full of live ones, and makes room as they expire', async () => {
      const ids = await open();
      for (let i = 0; i < 3; i++)
        expect(await ids.use('admin', `id-${i}`, T + 1000 + i, T, 3)).toBe('accepted');
      expect(await ids.use('admin', 'id-3', T + 5000, T, 3)).toBe('full');
      expect(await ids.use('other', 'id-3', T + 5000, T, 3)).toBe('accepted');
      expect(await ids.use('admin', 'id-3', T + 5000, T + 1000, 3)).toBe('accepted');
      expect(await ids.use('admin', 'id-4', T + 5000, T + 1000, 3)).toBe('full');
    });

    it('remembers across a reopened database (a restart) and across connections (replicas)', async () => {
      const first = await open();
      expect(await first.use('admin', 'jti-restart', T + 300_000, T, 10)).toBe('accepted');
      await clients.shift()?.close();
      const second = await open();
      expect(await second.use('admin', 'jti-restart', T + 300_000, T + 10, 10)).toBe('replayed');
      const third = await open();
      const answers = await Promise.all(
        Array.from({ length: 6 }, (_, i) =>
          (i % 2 === 0 ? second : third).use('admin', 'race', T + 1000, T, 10),
        ),
      );
      expect(answers.filter((a) => a === 'accepted')).toHaveLength(1);
      expect(answers.filter((a) => a === 'replayed')).toHaveLength(5);
    });

    it.each([
      ['an empty id', 'admin', '', T, 10],
      ['an empty scope', '', 'x', T, 10],
      ['an id over 256 characters', 'admin', 'x'.repeat(257), T, 10],
      ['a fractional time', 'admin', 'x', T + 0.5, 10],
      ['no capacity', 'admin', 'x', T, 0],
    ])('refuses %s with STORAGE_RECORD_INVALID', async (_what, scope, id, expires, capacity) => {
      const ids = await open();
      expect(() => ids.use(scope, id, expires, T, capacity)).toThrow(
        expect.objectContaining({ code: 'STORAGE_RECORD_INVALID' }),
      );
    });
  });
}
