import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { TresorError } from '@tresor/protocol';
import {
  CheckpointKeys,
  SqlAuditRepository,
  assertAuditLogIntact,
  isPostgresUrl,
  openMetadataDatabase,
  readAuditPublicKeys,
  stateDirectoryDatabase,
  verifyAuditLog,
  type AuditVerification,
  type DatabaseTarget,
} from '@tresor/storage';
import type { CliIo } from '../io.js';

interface VerifyOptions {
  readonly dir?: string;
  readonly db?: string;
  readonly schema?: string;
  readonly publicKey?: string;
  readonly json: boolean;
}

function optionalString(value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0)
    throw new TresorError('USAGE_INVALID', `${name} needs a value`);
  return value;
}

/** Checks the command line once, into typed options. */
function parseOptions(raw: Record<string, unknown>): VerifyOptions {
  const dir = optionalString(raw.dir, '--dir');
  const db = optionalString(raw.db, '--db');
  const schema = optionalString(raw.schema, '--schema');
  const publicKey = optionalString(raw.publicKey, '--public-key');
  if ((dir === undefined) === (db === undefined)) {
    throw new TresorError('USAGE_INVALID', 'give exactly one of --dir <state dir> or --db <postgres url>');
  }
  if (db !== undefined && !isPostgresUrl(db)) {
    throw new TresorError('USAGE_INVALID', '--db takes a postgres:// or postgresql:// URL');
  }
  if (schema !== undefined && db === undefined)
    throw new TresorError('USAGE_INVALID', '--schema goes with --db');
  if (db !== undefined && publicKey === undefined) {
    throw new TresorError(
      'USAGE_INVALID',
      'with --db, give the checkpoint public key with --public-key <file>',
    );
  }
  return {
    ...(dir === undefined ? {} : { dir }),
    ...(db === undefined ? {} : { db }),
    ...(schema === undefined ? {} : { schema }),
    ...(publicKey === undefined ? {} : { publicKey }),
    json: raw.json === true,
  };
}

function readKeys(options: VerifyOptions, cwd: string): CheckpointKeys {
  if (options.publicKey === undefined) return readAuditPublicKeys(resolve(cwd, options.dir ?? '.'));
  const file = resolve(cwd, options.publicKey);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    throw new TresorError('INPUT_UNREADABLE', `cannot read the public key file ${file}`, { cause });
  }
  return CheckpointKeys.parse(text);
}

function target(options: VerifyOptions, cwd: string): DatabaseTarget {
  if (options.dir !== undefined)
    return stateDirectoryDatabase(resolve(cwd, options.dir), { mustExist: true });
  return {
    kind: 'postgres',
    url: options.db ?? '',
    ...(options.schema === undefined ? {} : { schema: options.schema }),
  };
}

function describeResult(v: AuditVerification): string {
  const from =
    v.start.kind === 'anchor' ? `, continuing from the signed purge anchor at record ${v.start.count}` : '';
  const span =
    v.records === 0 ? 'no records' : `records ${v.firstSeq ?? '?'} to ${v.lastSeq ?? '?'} (${v.records})`;
  const newest = v.newestCheckpoint === null ? 'none yet' : `newest covers record ${v.newestCheckpoint}`;
  return (
    `audit log intact: ${span}${from}\n` +
    `signed checkpoints: ${v.checkpoints} verified (${newest}); records not yet under a checkpoint: ${v.unsignedRecords}\n`
  );
}

/**
 * `tresor audit verify`: exit 0 when the log is intact, 1 naming the first deleted, edited,
 * reordered or truncated record (or a forged checkpoint), 2 when it cannot be read. Opens the
 * database read-only: verification never migrates, repairs or writes.
 */
export async function verifyAuditCommand(raw: Record<string, unknown>, io: CliIo): Promise<void> {
  const options = parseOptions(raw);
  const where = target(options, io.cwd);
  const keys = readKeys(options, io.cwd);
  const client = await openMetadataDatabase(where, { readOnly: true });
  let result: AuditVerification;
  try {
    result = await verifyAuditLog(new SqlAuditRepository(client), keys);
  } finally {
    await client.close();
  }
  io.stdout.write(
    options.json ? `${JSON.stringify(result, null, 2)}\n` : result.intact ? describeResult(result) : '',
  );
  assertAuditLogIntact(result);
}
