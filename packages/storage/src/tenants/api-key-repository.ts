import { TresorError } from '@tresor/protocol';
import { bytesValue, textValue } from '../sql/row-values.js';
import type { SqlClient, SqlRow } from '../sql/sql-client.js';
import {
  API_KEY_SCOPES,
  checkApiKeyId,
  checkApiKeyRecord,
  checkTenantId,
  type ApiKeyRecord,
  type ApiKeyScope,
} from './tenant-records.js';
import { optionalInteger, storedDate } from './tenant-repository.js';

/** API keys of the gateway's tenants: salted hashes and their metadata, never a key. */
export interface ApiKeyRepository {
  /** @throws TresorError STORAGE_CONFLICT when the id exists; TENANT_NOT_FOUND when the tenant does not. */
  create(record: ApiKeyRecord): Promise<void>;
  get(id: string): Promise<ApiKeyRecord | undefined>;
  /** The tenant's keys, revoked ones included, oldest first. */
  listByTenant(tenant: string): Promise<ApiKeyRecord[]>;
  /**
   * Marks the key revoked at `at` (the first revocation time is kept).
   * @throws TresorError ADMIN_TARGET_NOT_FOUND when no such key exists
   */
  revoke(id: string, at: Date): Promise<ApiKeyRecord>;
}

const COLUMNS =
  'id, tenant, display_name, salt, hash, scopes, requests_per_minute, tokens_per_day, created_at, expires_at, revoked_at';

function parseScopes(text: string | undefined, id: string): ApiKeyScope[] {
  try {
    const value: unknown = JSON.parse(text ?? '');
    if (
      Array.isArray(value) &&
      value.every((s): s is ApiKeyScope => (API_KEY_SCOPES as readonly unknown[]).includes(s))
    ) {
      return value;
    }
  } catch {
    // Reported below.
  }
  throw new TresorError('STORAGE_RECORD_INVALID', `API key ${id} has malformed scopes`);
}

function parseKey(row: SqlRow): ApiKeyRecord {
  const id = textValue(row.id);
  const tenant = textValue(row.tenant);
  const displayName = textValue(row.display_name);
  const salt = bytesValue(row.salt);
  const hash = bytesValue(row.hash);
  if (
    id === undefined ||
    tenant === undefined ||
    displayName === undefined ||
    salt === undefined ||
    hash === undefined
  ) {
    throw new TresorError('STORAGE_RECORD_INVALID', 'a stored API key has a column of another type');
  }
  const requestsPerMinute = optionalInteger(row.requests_per_minute, `API key ${id} requests_per_minute`);
  const tokensPerDay = optionalInteger(row.tokens_per_day, `API key ${id} tokens_per_day`);
  return {
    id,
    tenant,
    displayName,
    salt: Uint8Array.from(salt),
    hash: Uint8Array.from(hash),
    scopes: parseScopes(textValue(row.scopes), id),
    ...(requestsPerMinute === undefined ? {} : { requestsPerMinute }),
    ...(tokensPerDay === undefined ? {} : { tokensPerDay }),
    createdAt: storedDate(row.created_at, `API key ${id} created_at`),
    expiresAt: row.expires_at === null ? null : storedDate(row.expires_at, `API key ${id} expires_at`),
    revokedAt: row.revoked_at === null ? null : storedDate(row.revoked_at, `API key ${id} revoked_at`),
  };
}

/** API keys over either SQL driver. */
export class SqlApiKeyRepository implements ApiKeyRepository {
  readonly #client: SqlClient;

  constructor(client: SqlClient) {
    this.#client = client;
  }

  async create(record: ApiKeyRecord): Promise<void> {
    const r = checkApiKeyRecord(record);
    await this.#client.transaction({ mode: 'write' }, async (tx) => {
      const tenant = await tx.query('SELECT id FROM gateway_tenants WHERE id = ?', [r.tenant]);
      if (tenant.length === 0) throw new TresorError('TENANT_NOT_FOUND', `no tenant ${r.tenant}`);
      await tx.execute(`INSERT INTO gateway_api_keys (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, [
        r.id,
        r.tenant,
        r.displayName,
        r.salt,
        r.hash,
        JSON.stringify(r.scopes),
        r.requestsPerMinute ?? null,
        r.tokensPerDay ?? null,
        r.createdAt.toISOString(),
        r.expiresAt?.toISOString() ?? null,
        r.revokedAt?.toISOString() ?? null,
      ]);
    });
  }

  async get(id: string): Promise<ApiKeyRecord | undefined> {
    if (typeof id !== 'string' || id.length !== 16) return undefined;
    const rows = await this.#client.query(`SELECT ${COLUMNS} FROM gateway_api_keys WHERE id = ?`, [
      checkApiKeyId(id),
    ]);
    return rows[0] === undefined ? undefined : parseKey(rows[0]);
  }

  async listByTenant(tenant: string): Promise<ApiKeyRecord[]> {
    const rows = await this.#client.query(
      `SELECT ${COLUMNS} FROM gateway_api_keys WHERE tenant = ? ORDER BY created_at, id`,
      [checkTenantId(tenant)],
    );
    return rows.map(parseKey);
  }

  async revoke(id: string, at: Date): Promise<ApiKeyRecord> {
    return this.#client.transaction({ mode: 'write' }, async (tx) => {
      const rows = await tx.query(`SELECT ${COLUMNS} FROM gateway_api_keys WHERE id = ?`, [
        checkApiKeyId(id),
      ]);
      if (rows[0] === undefined) throw new TresorError('ADMIN_TARGET_NOT_FOUND', `no API key ${id}`);
      const key = parseKey(rows[0]);
      if (key.revokedAt !== null) return key;
      await tx.execute('UPDATE gateway_api_keys SET revoked_at = ? WHERE id = ?', [at.toISOString(), id]);
      return { ...key, revokedAt: at };
    });
  }
}
