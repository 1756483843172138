import { TresorError } from '@tresor/protocol';
import { utf8Encode } from '@tresor/crypto';
import { bytesValue, integerValue, textValue } from '../sql/row-values.js';
import type { SqlClient, SqlRow, SqlValue } from '../sql/sql-client.js';
import { fieldRecordId, openSealedText, type FieldCipher, type TenantFieldCiphers } from './field-cipher.js';
import {
  checkTenant,
  checkUsageRecord,
  type UsageRecord,
  type UsageRecordInput,
  type UsageTotals,
} from './usage-record.js';

export interface UsageQuery {
  readonly tenant: string;
  /** Inclusive. */
  readonly from?: Date;
  /** Exclusive. */
  readonly to?: Date;
  /** At most this many records, oldest first. Default 1000, at most 10000. */
  readonly limit?: number;
}

/** Per-request metadata for billing, quotas and the tenant's own view; never content. */
export interface UsageRepository {
  /** @throws TresorError STORAGE_CONFLICT when a record with this request id exists. */
  record(input: UsageRecordInput): Promise<void>;
  list(query: UsageQuery): Promise<UsageRecord[]>;
  totals(query: Omit<UsageQuery, 'limit'>): Promise<UsageTotals>;
  /** Deletes records made before `cutoff`; returns how many. */
  purgeBefore(cutoff: Date): Promise<number>;
}

const TABLE = 'usage_records';
const MAX_LIMIT = 10_000;

function malformed(id: unknown, problem: string): never {
  const name = typeof id === 'string' ? id.slice(0, 128) : '?';
  throw new TresorError('STORAGE_RECORD_INVALID', `stored usage record ${name} is malformed: ${problem}`);
}

function range(query: Omit<UsageQuery, 'limit'>): { where: string; params: SqlValue[] } {
  const clauses = ['tenant = ?'];
  const params: SqlValue[] = [checkTenant(query.tenant)];
  if (query.from !== undefined) {
    clauses.push('recorded_at >= ?');
    params.push(query.from.toISOString());
  }
  if (query.to !== undefined) {
    clauses.push('recorded_at < ?');
    params.push(query.to.toISOString());
  }
  return { where: clauses.join(' AND '), params };
}

/**
 * Usage records over either SQL driver. The model name is sealed under the tenant's data key
 * through the injected cipher; destroying the tenant's KEK leaves it unreadable while counts
 * and times (what billing needs) stay readable.
 */
export class SqlUsageRepository implements UsageRepository {
  readonly #client: SqlClient;
  readonly #ciphers: TenantFieldCiphers;

  constructor(client: SqlClient, ciphers: TenantFieldCiphers) {
    this.#client = client;
    this.#ciphers = ciphers;
  }

  async record(input: UsageRecordInput): Promise<void> {
    const r = checkUsageRecord(input);
    const cipher = await this.#ciphers(r.tenant);
    const sealedModel = await cipher.encryptField(fieldRecordId(TABLE, r.id, 'model'), utf8Encode(r.model));
    await this.#client.execute(
      `INSERT INTO ${TABLE} (id, tenant, api_key_id, model_sealed, prompt_tokens, completion_tokens, latency_ms, status, recorded_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        r.id,
        r.tenant,
        r.apiKeyId,
        sealedModel,
        r.promptTokens,
        r.completionTokens,
        r.latencyMs,
        r.status,
        r.time.toISOString(),
      ],
    );
  }

  async list(query: UsageQuery): Promise<UsageRecord[]> {
    const limit = query.limit ?? 1000;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIMIT) {
      throw new TresorError('USAGE_INVALID', `limit is an integer from 1 to ${MAX_LIMIT}`);
    }
    const { where, params } = range(query);
    const rows = await this.#client.query(
      `SELECT id, tenant, api_key_id, model_sealed, prompt_tokens, completion_tokens, latency_ms, status, recorded_at
       FROM ${TABLE} WHERE ${where} ORDER BY recorded_at, id LIMIT ?`,
      [...params, limit],
    );
    // One cipher per listing: the tenant's data key is looked up once, not once per row.
    let cipher: Promise<FieldCipher> | undefined;
    const tenantCipher = (): Promise<FieldCipher> => (cipher ??= this.#ciphers(query.tenant));
    const records: UsageRecord[] = [];
    for (const row of rows) records.push(await this.#parse(row, tenantCipher));
    return records;
  }

  async totals(query: Omit<UsageQuery, 'limit'>): Promise<UsageTotals> {
    const { where, params } = range(query);
    const [row] = await this.#client.query(
      `SELECT COUNT(*) AS requests, COALESCE(SUM(prompt_tokens), 0) AS prompt, COALESCE(SUM(completion_tokens), 0) AS completion
       FROM ${TABLE} WHERE ${where}`,
      params,
    );
    const requests = integerValue(row?.requests);
    const promptTokens = integerValue(row?.prompt);
    const completionTokens = integerValue(row?.completion);
    if (requests === undefined || promptTokens === undefined || completionTokens === undefined) {
      throw new TresorError('STORAGE_RECORD_INVALID', 'usage totals are not integers');
    }
    return { requests, promptTokens, completionTokens };
  }

  purgeBefore(cutoff: Date): Promise<number> {
    return this.#client.execute(`DELETE FROM ${TABLE} WHERE recorded_at < ?`, [cutoff.toISOString()]);
  }

  async #parse(row: SqlRow, cipher: () => Promise<FieldCipher>): Promise<UsageRecord> {
    const id = textValue(row.id);
    const tenant = textValue(row.tenant);
    const apiKeyId = textValue(row.api_key_id);
    const time = textValue(row.recorded_at);
    const sealed = bytesValue(row.model_sealed);
    if (id === undefined || tenant === undefined || apiKeyId === undefined || time === undefined) {
      malformed(row.id, 'a text column holds another type');
    }
    if (sealed === undefined) malformed(id, 'the sealed model is not bytes');
    const numbers = [row.prompt_tokens, row.completion_tokens, row.latency_ms, row.status].map(integerValue);
    const [promptTokens, completionTokens, latencyMs, status] = numbers;
    if (
      promptTokens === undefined ||
      completionTokens === undefined ||
      latencyMs === undefined ||
      status === undefined
    ) {
      malformed(id, 'a count is not an integer');
    }
    return {
      id,
      tenant,
      apiKeyId,
      model: await openSealedText(cipher, fieldRecordId(TABLE, id, 'model'), sealed),
      promptTokens,
      completionTokens,
      latencyMs,
      status,
      time,
    };
  }
}
