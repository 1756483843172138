/**
 * The versioned schema. Append-only like the error catalogue: a released migration is never
 * edited (databases in the field already ran it); a change is a new version. Each version has
 * the same tables in both dialects; only the types differ (SQLite STRICT tables, so a column
 * refuses a value of the wrong type just as PostgreSQL does).
 *
 * Times are stored as ISO 8601 UTC text with milliseconds (`2025-06-01T12:00:00.000Z`): that is
 * the exact string hashed into an audit record, it sorts lexically in time order, and it reads
 * back byte for byte from both engines (a TIMESTAMPTZ round trip would not).
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sqlite: readonly string[];
  readonly postgres: readonly string[];
}

const auditRecords = (seq: string): string => `CREATE TABLE audit_records (
  seq ${seq} PRIMARY KEY,
  recorded_at TEXT NOT NULL,
  actor_type TEXT NOT NULL,
  actor_id TEXT NOT NULL,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  outcome TEXT NOT NULL,
  details TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
)`;

const auditCheckpoints = (integer: string): string => `CREATE TABLE audit_checkpoints (
  kind TEXT NOT NULL,
  record_count ${integer} NOT NULL,
  head_hash TEXT NOT NULL,
  signed_at TEXT NOT NULL,
  key_id TEXT NOT NULL,
  algorithm TEXT NOT NULL,
  signature TEXT NOT NULL,
  PRIMARY KEY (kind, record_count)
)`;

const usageRecords = (integer: string, bytes: string): string => `CREATE TABLE usage_records (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  api_key_id TEXT NOT NULL,
  model_sealed ${bytes} NOT NULL,
  prompt_tokens ${integer} NOT NULL,
  completion_tokens ${integer} NOT NULL,
  latency_ms ${integer} NOT NULL,
  status ${integer} NOT NULL,
  recorded_at TEXT NOT NULL
)`;

const indexes = [
  'CREATE INDEX audit_records_by_time ON audit_records (recorded_at)',
  'CREATE INDEX usage_records_by_tenant_time ON usage_records (tenant, recorded_at)',
  'CREATE INDEX usage_records_by_time ON usage_records (recorded_at)',
];

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'audit log, audit checkpoints, usage records',
    sqlite: [
      `${auditRecords('INTEGER')} STRICT`,
      `${auditCheckpoints('INTEGER')} STRICT`,
      `${usageRecords('INTEGER', 'BLOB')} STRICT`,
      ...indexes,
      // The application never updates an audit record; refusing it in the database too turns a
      // bug into an error at once. (Someone with write access can drop the trigger: that is what
      // the hash chain and the signed checkpoints are for.)
      `CREATE TRIGGER audit_records_append_only BEFORE UPDATE ON audit_records
       BEGIN SELECT RAISE(ABORT, 'audit records are append-only'); END`,
    ],
    postgres: [
      auditRecords('BIGINT'),
      auditCheckpoints('BIGINT'),
      usageRecords('BIGINT', 'BYTEA'),
      ...indexes,
      `CREATE FUNCTION tresor_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
       'BEGIN RAISE EXCEPTION ''audit records are append-only''; END'`,
      `CREATE TRIGGER audit_records_append_only BEFORE UPDATE ON audit_records
       FOR EACH ROW EXECUTE FUNCTION tresor_audit_append_only()`,
    ],
  },
];

/** The schema version this build reads and writes. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]!.version;
