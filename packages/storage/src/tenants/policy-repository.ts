import { TresorError } from '@tresor/protocol';
import { integerValue, textValue } from '../sql/row-values.js';
import type { SqlClient, SqlRow } from '../sql/sql-client.js';
import { checkPolicyText, checkTenantId, type PolicyRecord } from './tenant-records.js';
import { storedDate } from './tenant-repository.js';

/** One Cedar authorization policy per tenant, versioned. */
export interface PolicyRepository {
  /**
   * Replaces the tenant's policy; returns the stored record with its new version. The caller
   * validates the Cedar text first.
   * @throws TresorError TENANT_NOT_FOUND
   */
  set(tenant: string, policy: string, at: Date): Promise<PolicyRecord>;
  get(tenant: string): Promise<PolicyRecord | undefined>;
}

function parsePolicy(row: SqlRow): PolicyRecord {
  const tenant = textValue(row.tenant);
  const policy = textValue(row.policy);
  const version = integerValue(row.version);
  if (tenant === undefined || policy === undefined || version === undefined || version < 1) {
    throw new TresorError('STORAGE_RECORD_INVALID', 'a stored policy has a column of another type');
  }
  return { tenant, policy, version, updatedAt: storedDate(row.updated_at, `policy of ${tenant} updated_at`) };
}

/** Policies over either SQL driver; versions grow by one under the write transaction. */
export class SqlPolicyRepository implements PolicyRepository {
  readonly #client: SqlClient;

  constructor(client: SqlClient) {
    this.#client = client;
  }

  async set(tenant: string, policy: string, at: Date): Promise<PolicyRecord> {
    const id = checkTenantId(tenant);
    const text = checkPolicyText(policy);
    return this.#client.transaction({ mode: 'write', lock: 'gateway-policy' }, async (tx) => {
      const exists = await tx.query('SELECT id FROM gateway_tenants WHERE id = ?', [id]);
      if (exists.length === 0) throw new TresorError('TENANT_NOT_FOUND', `no tenant ${id}`);
      const rows = await tx.query('SELECT version FROM gateway_policies WHERE tenant = ?', [id]);
      const current = rows[0] === undefined ? 0 : (integerValue(rows[0].version) ?? 0);
      const version = current + 1;
      if (current === 0) {
        await tx.execute(
          'INSERT INTO gateway_policies (tenant, policy, version, updated_at) VALUES (?, ?, ?, ?)',
          [id, text, version, at.toISOString()],
        );
      } else {
        await tx.execute(
          'UPDATE gateway_policies SET policy = ?, version = ?, updated_at = ? WHERE tenant = ?',
          [text, version, at.toISOString(), id],
        );
      }
      return { tenant: id, policy: text, version, updatedAt: at };
    });
  }

  async get(tenant: string): Promise<PolicyRecord | undefined> {
    const rows = await this.#client.query(
      'SELECT tenant, policy, version, updated_at FROM gateway_policies WHERE tenant = ?',
      [checkTenantId(tenant)],
    );
    return rows[0] === undefined ? undefined : parsePolicy(rows[0]);
  }
}
