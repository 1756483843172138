import Database from 'better-sqlite3';
import { TresorError } from '@tresor/protocol';

/**
 * Maps a better-sqlite3 failure to a catalogue code. Messages name the SQLite result code only:
 * SQLite's own text can quote values from the statement.
 */
export function sqliteStorageError(err: unknown): TresorError {
  if (err instanceof TresorError) return err;
  if (!(err instanceof Database.SqliteError)) {
    return new TresorError('INTERNAL_ERROR', 'the SQLite driver failed unexpectedly', { cause: err });
  }
  return sqliteCodeError(err.code, err.message, err);
}

/**
 * Maps an SQLite result code (extended, e.g. `SQLITE_BUSY_SNAPSHOT`) to a catalogue code; `cause`
 * is the driver's error, `message` SQLite's text (only read to tell a missing table).
 */
export function sqliteCodeError(code: string, message: string, cause: unknown): TresorError {
  if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
    return new TresorError('STORAGE_BUSY', `the SQLite database is locked by another writer (${code})`, {
      cause,
    });
  }
  if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') {
    return new TresorError('STORAGE_CONFLICT', `a record with this key already exists (${code})`, {
      cause,
    });
  }
  if (code === 'SQLITE_CONSTRAINT_TRIGGER') {
    // The only trigger Tresor installs: audit_records_append_only.
    return new TresorError(
      'STORAGE_RECORD_INVALID',
      'audit records are append-only; the update was refused',
      {
        cause,
      },
    );
  }
  const unavailable = [
    'SQLITE_CANTOPEN',
    'SQLITE_NOTADB',
    'SQLITE_CORRUPT',
    'SQLITE_IOERR',
    'SQLITE_READONLY',
  ];
  if (
    unavailable.some((c) => code.startsWith(c)) ||
    ['SQLITE_PERM', 'SQLITE_FULL', 'SQLITE_AUTH'].includes(code)
  ) {
    return new TresorError('STORAGE_UNAVAILABLE', `the SQLite database cannot be used (${code})`, {
      cause,
    });
  }
  if (code === 'SQLITE_ERROR' && /^no such (table|column)/.test(message)) {
    return new TresorError(
      'STORAGE_SCHEMA_UNSUPPORTED',
      'the database lacks a Tresor table or column; open it through the migrating storage entry point',
      { cause },
    );
  }
  return new TresorError('INTERNAL_ERROR', `an SQLite statement failed (${code})`, { cause });
}
