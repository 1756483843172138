/** SQL drivers: SQLite (default, one file) and PostgreSQL (replicas), behind one small interface. */
export type {
  BatchOptions,
  SqlClient,
  SqlDialect,
  SqlExecutor,
  SqlRow,
  SqlStatement,
  SqlValue,
  TransactionDurability,
  TransactionOptions,
} from './sql/sql-client.js';
export { openSqlite, type SqliteOptions } from './sql/sqlite-client.js';
export { openSqliteInWorker } from './sql/sqlite-worker-client.js';
export { isPostgresUrl, openPostgres, type PostgresOptions } from './sql/postgres-client.js';
export { MIGRATIONS, SCHEMA_VERSION, type Migration } from './schema/migrations.js';
export { checkSchema, migrate, type MigrationResult } from './schema/migrate.js';
export {
  AUDIT_PUBLIC_KEY_FILE,
  STATE_DB_FILE,
  openMetadataDatabase,
  publishAuditPublicKey,
  readAuditPublicKeys,
  stateDirectoryDatabase,
  type DatabaseTarget,
  type OpenDatabaseOptions,
} from './state-dir.js';
export { systemClock, timerScheduler, type Cancel, type Clock, type Scheduler } from './clock.js';

/** The tamper-evident audit log. */
export type {
  AuditActor,
  AuditActorType,
  AuditDetailValue,
  AuditDetails,
  AuditEntry,
  AuditOutcome,
} from './audit/audit-entry.js';
export {
  GENESIS_HASH,
  decodeAuditRecordBody,
  encodeAuditRecordBody,
  hashAuditRecordBody,
  type AuditRecord,
  type AuditRecordBody,
} from './audit/audit-record.js';
export {
  checkpointSigningInput,
  type AuditCheckpoint,
  type AuditCheckpointStatement,
  type CheckpointAlgorithm,
  type CheckpointKind,
} from './audit/audit-checkpoint.js';
export { CheckpointKeys, type CheckpointPublicJwk, type CheckpointSigner } from './audit/checkpoint-keys.js';
export { keyStoreCheckpointSigner, type SigningKeyStore } from './audit/keystore-signer.js';
export {
  SqlAuditRepository,
  type AuditLogReader,
  type AuditRepository,
  type StoredCheckpointRow,
} from './audit/audit-repository.js';
export type { StoredAuditRow } from './audit/stored-record.js';
export type { ChainHead } from './audit/chain-walker.js';
export {
  assertAuditLogIntact,
  verifyAuditLog,
  type AuditProblem,
  type AuditProblemCode,
  type AuditVerification,
  type VerifyOptions,
} from './audit/audit-verify.js';
export { AuditLog, type AuditLogOptions, type AuditPurge } from './audit/audit-log.js';
export { GroupCommit, type CommitBatch } from './audit/group-commit.js';

/** Usage records with sealed columns, and retention. */
export type { FieldCipher, SealedField, TenantFieldCiphers } from './usage/field-cipher.js';
export type { UsageRecord, UsageRecordInput, UsageTotals } from './usage/usage-record.js';
export { SqlUsageRepository, type UsageQuery, type UsageRepository } from './usage/usage-repository.js';
export {
  RetentionJob,
  type RetentionJobOptions,
  type RetentionPolicy,
  type RetentionRun,
} from './retention/retention-job.js';

/** Gateway tenants, API keys (salted hashes only) and per-tenant Cedar policies. */
export {
  API_KEY_ID_PATTERN,
  API_KEY_SCOPES,
  TENANT_ID_PATTERN,
  type ApiKeyRecord,
  type ApiKeyScope,
  type PolicyRecord,
  type TenantRecord,
  type UsageLimits,
} from './tenants/tenant-records.js';
export { SqlTenantRepository, type TenantRepository } from './tenants/tenant-repository.js';
export { SqlApiKeyRepository, type ApiKeyRepository } from './tenants/api-key-repository.js';
export { SqlPolicyRepository, type PolicyRepository } from './tenants/policy-repository.js';

/** Ids of signed requests accepted once (replay protection across restarts and replicas). */
export { SqlUsedRequestIds, type RequestIdUse, type UsedRequestIds } from './replay/used-request-ids.js';
