import { TresorError } from '@tresor/protocol';
import { integerValue, textValue } from '../sql/row-values.js';
import type { SqlClient, SqlRow } from '../sql/sql-client.js';
import { checkTenantId, checkTenantRecord, type TenantRecord, type UsageLimits } from './tenant-records.js';

/** Tenants of the gateway. */
export interface TenantRepository {
  /** @throws TresorError STORAGE_CONFLICT when a tenant with this id exists. */
  create(record: TenantRecord): Promise<void>;
  get(id: string): Promise<TenantRecord | undefined>;
  /** Every tenant, by id. */
  list(): Promise<TenantRecord[]>;
  /** Sets (or, with undefined members, clears) the tenant's limits. @throws TresorError TENANT_NOT_FOUND */
  setLimits(id: string, limits: UsageLimits): Promise<void>;
}

const COLUMNS = 'id, display_name, wrapped_data_key, requests_per_minute, tokens_per_day, created_at';

export function optionalInteger(value: unknown, what: string): number | undefined {
  if (value === null || value === undefined) return undefined;
  const n = integerValue(value);
  if (n === undefined) throw new TresorError('STORAGE_RECORD_INVALID', `${what} is not an integer`);
  return n;
}

export function storedDate(value: unknown, what: string): Date {
  const text = textValue(value);
  const date = text === undefined ? undefined : new Date(text);
  if (date === undefined || Number.isNaN(date.getTime())) {
    throw new TresorError('STORAGE_RECORD_INVALID', `${what} is not an ISO 8601 time`);
  }
  return date;
}

function parseTenant(row: SqlRow): TenantRecord {
  const id = textValue(row.id);
  const displayName = textValue(row.display_name);
  const wrappedDataKey = textValue(row.wrapped_data_key);
  if (id === undefined || displayName === undefined || wrappedDataKey === undefined) {
    throw new TresorError('STORAGE_RECORD_INVALID', 'a stored tenant has a text column of another type');
  }
  const requestsPerMinute = optionalInteger(row.requests_per_minute, `tenant ${id} requests_per_minute`);
  const tokensPerDay = optionalInteger(row.tokens_per_day, `tenant ${id} tokens_per_day`);
  return {
    id,
    displayName,
    wrappedDataKey,
    ...(requestsPerMinute === undefined ? {} : { requestsPerMinute }),
    ...(tokensPerDay === undefined ? {} : { tokensPerDay }),
    createdAt: storedDate(row.created_at, `tenant ${id} created_at`),
  };
}

/** Tenants over either SQL driver. */
export class SqlTenantRepository implements TenantRepository {
  readonly #client: SqlClient;

  constructor(client: SqlClient) {
    this.#client = client;
  }

  async create(record: TenantRecord): Promise<void> {
    const r = checkTenantRecord(record);
    await this.#client.execute(`INSERT INTO gateway_tenants (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)`, [
      r.id,
      r.displayName,
      r.wrappedDataKey,
      r.requestsPerMinute ?? null,
      r.tokensPerDay ?? null,
      r.createdAt.toISOString(),
    ]);
  }

  async get(id: string): Promise<TenantRecord | undefined> {
    const rows = await this.#client.query(`SELECT ${COLUMNS} FROM gateway_tenants WHERE id = ?`, [
      checkTenantId(id),
    ]);
    return rows[0] === undefined ? undefined : parseTenant(rows[0]);
  }

  async list(): Promise<TenantRecord[]> {
    const rows = await this.#client.query(`SELECT ${COLUMNS} FROM gateway_tenants ORDER BY id`);
    return rows.map(parseTenant);
  }

  async setLimits(id: string, limits: UsageLimits): Promise<void> {
    const current = await this.get(id);
    if (current === undefined) throw new TresorError('TENANT_NOT_FOUND', `no tenant ${id}`);
    const { requestsPerMinute: _r, tokensPerDay: _t, ...rest } = current;
    const next = checkTenantRecord({ ...rest, ...limits });
    await this.#client.execute(
      'UPDATE gateway_tenants SET requests_per_minute = ?, tokens_per_day = ? WHERE id = ?',
      [next.requestsPerMinute ?? null, next.tokensPerDay ?? null, id],
    );
  }
}
