import { accessSync, constants, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { CheckpointKeys, type CheckpointPublicJwk } from './audit/checkpoint-keys.js';
import { checkSchema, migrate } from './schema/migrate.js';
import { openPostgres } from './sql/postgres-client.js';
import type { SqlClient } from './sql/sql-client.js';
import { openSqlite } from './sql/sqlite-client.js';
import { openSqliteInWorker } from './sql/sqlite-worker-client.js';

/** The SQLite metadata database inside a local state directory. */
export const STATE_DB_FILE = 'tresor.db';
/** The audit checkpoint public key(s) inside a local state directory: a JWK Set, one key per rotation. */
export const AUDIT_PUBLIC_KEY_FILE = 'audit-public-key.jwks';

/** Where the metadata lives: a SQLite file (default) or a PostgreSQL database shared by replicas. */
export type DatabaseTarget =
  | {
      readonly kind: 'sqlite';
      readonly file: string;
      /**
       * Where the SQLite connection runs: `inline` on the calling thread (default; tools and
       * tests), or `worker` on a thread of its own, so that statements and commit fsyncs do not
       * block a server's event loop (sqlite-worker-client.ts).
       */
      readonly thread?: 'inline' | 'worker';
    }
  | { readonly kind: 'postgres'; readonly url: string; readonly schema?: string };

export interface OpenDatabaseOptions {
  /** Read without writing (verification): the schema is checked, never migrated. */
  readonly readOnly?: boolean;
}

/**
 * Opens the metadata database and brings its schema to this build's version (or, read-only,
 * checks that it is this build's version).
 *
 * @throws TresorError STORAGE_UNAVAILABLE, STORAGE_SCHEMA_UNSUPPORTED
 */
export async function openMetadataDatabase(
  target: DatabaseTarget,
  options: OpenDatabaseOptions = {},
): Promise<SqlClient> {
  const readOnly = options.readOnly ?? false;
  const client =
    target.kind === 'sqlite'
      ? target.thread === 'worker'
        ? await openSqliteInWorker({ file: target.file, readOnly })
        : openSqlite({ file: target.file, readOnly })
      : await openPostgres({
          url: target.url,
          readOnly,
          ...(target.schema === undefined ? {} : { schema: target.schema }),
        });
  try {
    if (readOnly) await checkSchema(client);
    else await migrate(client);
    return client;
  } catch (err) {
    await client.close().catch(() => undefined);
    throw err;
  }
}

function unreadableDir(dir: string, cause?: unknown): TresorError {
  return new TresorError(
    'STORAGE_UNAVAILABLE',
    `cannot read the state directory ${dir}`,
    cause === undefined ? {} : { cause },
  );
}

/** The SQLite database of a state directory; refuses a directory that is missing or unreadable. */
export function stateDirectoryDatabase(dir: string, options: { mustExist: boolean }): DatabaseTarget {
  try {
    if (!statSync(dir).isDirectory()) throw unreadableDir(dir);
    accessSync(dir, constants.R_OK | constants.X_OK);
  } catch (cause) {
    throw cause instanceof TresorError ? cause : unreadableDir(dir, cause);
  }
  const file = join(dir, STATE_DB_FILE);
  if (options.mustExist) {
    try {
      accessSync(file, constants.R_OK);
    } catch (cause) {
      throw new TresorError(
        'STORAGE_UNAVAILABLE',
        `the state directory ${dir} has no readable ${STATE_DB_FILE}`,
        { cause },
      );
    }
  }
  return { kind: 'sqlite', file };
}

/** Reads the checkpoint public keys of a state directory. */
export function readAuditPublicKeys(dir: string): CheckpointKeys {
  const file = join(dir, AUDIT_PUBLIC_KEY_FILE);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new TresorError(
      'INPUT_UNREADABLE',
      `cannot read ${file}; pass the checkpoint key with --public-key`,
      { cause },
    );
  }
  return CheckpointKeys.parse(text);
}

/**
 * Adds a checkpoint public key to the state directory's key set (kept after a rotation, so
 * checkpoints signed by the previous key still verify). Written to a temporary file and renamed,
 * so a reader never sees half a file.
 */
export function publishAuditPublicKey(dir: string, jwk: CheckpointPublicJwk): void {
  CheckpointKeys.fromJwks([jwk]);
  const file = join(dir, AUDIT_PUBLIC_KEY_FILE);
  let keys: CheckpointPublicJwk[] = [];
  try {
    const existing = JSON.parse(readFileSync(file, 'utf8')) as { keys?: unknown };
    CheckpointKeys.fromJwks(Array.isArray(existing.keys) ? existing.keys : []);
    keys = existing.keys as CheckpointPublicJwk[];
  } catch (err) {
    if ((err as { code?: unknown }).code !== 'ENOENT') {
      throw new TresorError('INPUT_MALFORMED', `${file} is not a JWK Set of checkpoint keys`, { cause: err });
    }
  }
  if (keys.some((k) => k.kid === jwk.kid && k.x === jwk.x && k.y === jwk.y)) return;
  if (jwk.kid !== undefined && keys.some((k) => k.kid === jwk.kid)) {
    throw new TresorError('INPUT_MALFORMED', `${file} already holds a different key with id ${jwk.kid}`);
  }
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, `${JSON.stringify({ keys: [...keys, jwk] }, null, 2)}\n`, { mode: 0o644 });
    renameSync(temporary, file);
  } catch (cause) {
    throw new TresorError('OUTPUT_UNWRITABLE', `cannot write ${file}`, { cause });
  }
}
