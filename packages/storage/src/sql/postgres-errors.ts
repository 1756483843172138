import { TresorError } from '@tresor/protocol';

/** Node socket errors on the way to the server. */
const NETWORK_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EAI_AGAIN',
  'EPIPE',
]);

/** SQLSTATEs (PostgreSQL manual, appendix A) meaning the server cannot serve this client now. */
function unavailable(sqlState: string): boolean {
  return (
    sqlState.startsWith('08') || // connection exception
    sqlState.startsWith('28') || // invalid authorization
    sqlState.startsWith('57P') || // operator intervention: shutdown, cannot connect now
    sqlState === '3D000' || // database does not exist
    sqlState === '53300' // too many connections
  );
}

function codeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Maps a node-postgres failure to a catalogue code. Messages carry the SQLSTATE only: the
 * server's text (and its `detail`) can quote row values, and the URL can carry a password.
 */
export function postgresStorageError(err: unknown): TresorError {
  if (err instanceof TresorError) return err;
  const code = codeOf(err);
  if (code !== undefined && /^[0-9A-Z]{5}$/.test(code)) return fromSqlState(code, err);
  const message = err instanceof Error ? err.message : '';
  if (
    (code !== undefined && NETWORK_ERRORS.has(code)) ||
    /timeout|terminated|Connection ended/i.test(message)
  ) {
    return new TresorError(
      'STORAGE_UNAVAILABLE',
      `the PostgreSQL server cannot be reached (${code ?? 'connection failed'})`,
      { cause: err },
    );
  }
  return new TresorError('INTERNAL_ERROR', 'the PostgreSQL driver failed unexpectedly', { cause: err });
}

function fromSqlState(code: string, err: unknown): TresorError {
  if (unavailable(code)) {
    return new TresorError('STORAGE_UNAVAILABLE', `the PostgreSQL server refused the session (${code})`, {
      cause: err,
    });
  }
  switch (code) {
    case '23505':
      return new TresorError('STORAGE_CONFLICT', 'a record with this key already exists (23505)', {
        cause: err,
      });
    case '40001':
    case '40P01':
    case '55P03':
    case '57014':
      return new TresorError('STORAGE_BUSY', `the transaction could not get its locks in time (${code})`, {
        cause: err,
      });
    case 'P0001':
      // RAISE EXCEPTION of the only trigger Tresor installs: audit_records_append_only.
      return new TresorError(
        'STORAGE_RECORD_INVALID',
        'audit records are append-only; the update was refused',
        {
          cause: err,
        },
      );
    case '42P01':
    case '42703':
      return new TresorError(
        'STORAGE_SCHEMA_UNSUPPORTED',
        `the database lacks a Tresor table or column (${code}); open it through the migrating storage entry point`,
        { cause: err },
      );
    default:
      return new TresorError('INTERNAL_ERROR', `a PostgreSQL statement failed (${code})`, { cause: err });
  }
}
