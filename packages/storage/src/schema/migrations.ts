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

/** Version 2 (the gateway): tenants, their API keys (salted hashes only) and their Cedar policies. */
const GATEWAY_TABLES = (integer: string, bytes: string): string[] => [
  `CREATE TABLE gateway_tenants (
  id TEXT PRIMARY KEY,
  display_name TEXT NOT NULL,
  wrapped_data_key TEXT NOT NULL,
  requests_per_minute ${integer},
  tokens_per_day ${integer},
  created_at TEXT NOT NULL
)`,
  `CREATE TABLE gateway_api_keys (
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL REFERENCES gateway_tenants (id),
  display_name TEXT NOT NULL,
  salt ${bytes} NOT NULL,
  hash ${bytes} NOT NULL,
  scopes TEXT NOT NULL,
  requests_per_minute ${integer},
  tokens_per_day ${integer},
  created_at TEXT NOT NULL,
  expires_at TEXT,
  revoked_at TEXT
)`,
  `CREATE TABLE gateway_policies (
  tenant TEXT PRIMARY KEY REFERENCES gateway_tenants (id),
  policy TEXT NOT NULL,
  version ${integer} NOT NULL,
  updated_at TEXT NOT NULL
)`,
];

/**
 * Version 3: ids of signed requests that were accepted once (admin requests' `jti`), per scope,
 * kept until the request could no longer be accepted anyway (`expires_at`, milliseconds since the
 * epoch). In the database rather than in memory so that neither a restart nor a second replica
 * reopens a replay.
 */
const USED_REQUEST_IDS = (integer: string): string => `CREATE TABLE used_request_ids (
  scope TEXT NOT NULL,
  id TEXT NOT NULL,
  expires_at ${integer} NOT NULL,
  PRIMARY KEY (scope, id)
)`;
const USED_REQUEST_IDS_INDEX =
  'CREATE INDEX used_request_ids_by_expiry ON used_request_ids (scope, expires_at)';

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
  {
    version: 2,
    name: 'gateway tenants, API keys, authorization policies',
    sqlite: GATEWAY_TABLES('INTEGER', 'BLOB').map((sql) => `${sql} STRICT`),
    postgres: GATEWAY_TABLES('BIGINT', 'BYTEA'),
  },
  {
    version: 3,
    name: 'used request ids (replay protection shared by restarts and replicas)',
    sqlite: [`${USED_REQUEST_IDS('INTEGER')} STRICT`, USED_REQUEST_IDS_INDEX],
    postgres: [USED_REQUEST_IDS('BIGINT'), USED_REQUEST_IDS_INDEX],
  },
];

/** The schema version this build reads and writes. */
export const SCHEMA_VERSION: number = MIGRATIONS[MIGRATIONS.length - 1]!.version;
