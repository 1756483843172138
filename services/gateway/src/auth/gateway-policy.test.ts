import { TresorError } from '@tresor/protocol';
import {
  migrate,
  openSqlite,
  SqlPolicyRepository,
  SqlTenantRepository,
  type ApiKeyRecord,
  type ApiKeyScope,
  type PolicyRecord,
  type PolicyRepository,
  type SqlClient,
} from '@tresor/storage';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GatewayAuthorizer } from './gateway-policy.js';

const T0 = Date.parse('2026-12-07T12:00:00Z');
const TTL = 2_000;

/** The stored policies, counting reads; `gate` holds reads back until released. */
class CountingPolicies implements PolicyRepository {
  reads = 0;
  gate: Promise<void> | undefined;
  failing = false;
  readonly #inner: SqlPolicyRepository;
  constructor(inner: SqlPolicyRepository) {
    this.#inner = inner;
  }
  set(tenant: string, policy: string, at: Date): Promise<PolicyRecord> {
    return this.#inner.set(tenant, policy, at);
  }
  async get(tenant: string): Promise<PolicyRecord | undefined> {
    this.reads += 1;
    const record = await this.#inner.get(tenant);
    if (this.gate !== undefined) await this.gate;
    if (this.failing) throw new TresorError('STORAGE_UNAVAILABLE', 'the test database is down');
    return record;
  }
}

function apiKey(scopes: readonly ApiKeyScope[], id = 'key-1', tenant = 'acme'): ApiKeyRecord {
  return {
    id,
    tenant,
    displayName: id,
    salt: new Uint8Array(16),
    hash: new Uint8Array(32),
    scopes,
    createdAt: new Date(T0),
    expiresAt: null,
    revokedAt: null,
  };
}

/** chat.completions on `tiny` for keys with the chat scope; `big` forbidden to everyone. */
const CHAT_ON_TINY = `
permit(principal in Gateway::Tenant::"acme", action == Gateway::Action::"chat.completions", resource == Gateway::Model::"tiny")
  when { principal.scopes.contains("chat") };
forbid(principal, action, resource == Gateway::Model::"big");`;
const FORBID_ALL = 'forbid(principal, action, resource);';

let client: SqlClient;
let policies: CountingPolicies;
let nowMs: number;
const now = (): Date => new Date(nowMs);

beforeEach(async () => {
  nowMs = T0;
  client = openSqlite({ file: ':memory:' });
  await migrate(client, now);
  const tenants = new SqlTenantRepository(client);
  for (const id of ['acme', 'other']) {
    await tenants.create({ id, displayName: id, wrappedDataKey: 'wrapped', createdAt: new Date(T0) });
  }
  policies = new CountingPolicies(new SqlPolicyRepository(client));
});

afterEach(async () => {
  await client.close();
});

/** An authorizer over the store, after storing `policy` as acme's. */
async function authorizerFor(policy: string, maxDecisions?: number): Promise<GatewayAuthorizer> {
  await policies.set('acme', policy, now());
  return maxDecisions === undefined
    ? new GatewayAuthorizer(policies, now, TTL)
    : new GatewayAuthorizer(policies, now, TTL, maxDecisions);
}

describe('GatewayAuthorizer decisions', () => {
  it('answers a repeated question from the cache with the same decision', async () => {
    const authorizer = await authorizerFor(CHAT_ON_TINY);
    const key = apiKey(['chat']);
    for (let i = 0; i < 5; i++) expect(await authorizer.allows(key, 'chat.completions', 'tiny')).toBe(true);
    expect(authorizer.cachedDecisions).toBe(1);
    expect(policies.reads).toBe(1);
  });

  it('caches a denied answer as denied', async () => {
    const authorizer = await authorizerFor(CHAT_ON_TINY);
    const key = apiKey(['chat']);
    for (let i = 0; i < 3; i++) expect(await authorizer.allows(key, 'chat.completions', 'big')).toBe(false);
    expect(authorizer.cachedDecisions).toBe(1);
    await expect(authorizer.require(key, 'chat.completions', 'big')).rejects.toMatchObject({
      code: 'POLICY_DENIED',
    });
    await expect(authorizer.require(key, 'chat.completions', 'tiny')).resolves.toBeUndefined();
  });

  it('treats another scope set, model, operation, key or tenant as another question', async () => {
    await policies.set('acme', CHAT_ON_TINY, now());
    await policies.set('other', 'permit(principal, action, resource);', now());
    const authorizer = new GatewayAuthorizer(policies, now, TTL);
    expect(await authorizer.allows(apiKey(['chat']), 'chat.completions', 'tiny')).toBe(true);
    expect(await authorizer.allows(apiKey(['models']), 'chat.completions', 'tiny')).toBe(false);
    expect(await authorizer.allows(apiKey(['chat']), 'chat.completions', 'small')).toBe(false);
    expect(await authorizer.allows(apiKey(['chat']), 'embeddings', 'tiny')).toBe(false);
    expect(await authorizer.allows(apiKey(['chat'], 'key-2'), 'chat.completions', 'tiny')).toBe(true);
    expect(await authorizer.allows(apiKey(['chat'], 'key-3', 'other'), 'embeddings', 'tiny')).toBe(true);
    expect(authorizer.cachedDecisions).toBe(6);
  });

  it('keys scopes as a set: their order does not make a new question', async () => {
    const authorizer = await authorizerFor(CHAT_ON_TINY);
    expect(await authorizer.allows(apiKey(['chat', 'models']), 'chat.completions', 'tiny')).toBe(true);
    expect(await authorizer.allows(apiKey(['models', 'chat']), 'chat.completions', 'tiny')).toBe(true);
    expect(authorizer.cachedDecisions).toBe(1);
  });

  it('drops the decisions of a policy once a new version is read after the TTL', async () => {
    const authorizer = await authorizerFor(CHAT_ON_TINY);
    const key = apiKey(['chat']);
    expect(await authorizer.allows(key, 'chat.completions', 'tiny')).toBe(true);
    expect(await authorizer.allows(key, 'chat.completions', 'big')).toBe(false);
    await policies.set('acme', FORBID_ALL, now());
    nowMs += TTL - 1;
    expect(await authorizer.allows(key, 'chat.completions', 'tiny')).toBe(true); // within the TTL
    nowMs += 1;
    expect(await authorizer.allows(key, 'chat.completions', 'tiny')).toBe(false);
    expect(authorizer.cachedDecisions).toBe(1);
    await policies.set('acme', CHAT_ON_TINY, now());
    nowMs += TTL;
    expect(await authorizer.allows(key, 'chat.completions', 'tiny')).toBe(true);
  });

  it('keeps decisions while the stored version is unchanged', async () => {
    const authorizer = await authorizerFor(CHAT_ON_TINY);
    const key = apiKey(['chat']);
    expect(await authorizer.allows(key, 'chat.completions', 'tiny')).toBe(true);
    nowMs += 10 * TTL;
    expect(await authorizer.allows(key, 'chat.completions', 'tiny')).toBe(true);
    expect(policies.reads).toBe(2);
    expect(authorizer.cachedDecisions).toBe(1);
  });

  it('forget() makes the next request see a changed policy at once', async () => {
    const authorizer = await authorizerFor(CHAT_ON_TINY);
    const key = apiKey(['chat']);
    expect(await authorizer.allows(key, 'chat.completions', 'tiny')).toBe(true);
    await policies.set('acme', FORBID_ALL, now());
    authorizer.forget('acme');
    expect(authorizer.cachedDecisions).toBe(0);
    expect(await authorizer.allows(key, 'chat.completions', 'tiny')).toBe(false);
  });

  it('forget() during a read reads again, so the older read cannot win', async () => {
    const authorizer = await authorizerFor(CHAT_ON_TINY);
    const key = apiKey(['chat']);
    let release = (): void => undefined;
    policies.gate = new Promise((resolve) => {
      release = resolve;
    });
    const pending = authorizer.allows(key, 'chat.completions', 'tiny');
    await new Promise((resolve) => setImmediate(resolve)); // the first read has the old version
    await policies.set('acme', FORBID_ALL, now());
    authorizer.forget('acme');
    policies.gate = undefined;
    release();
    expect(await pending).toBe(false);
    expect(policies.reads).toBe(2);
  });

  it('reads the store once for concurrent requests after the TTL', async () => {
    const authorizer = await authorizerFor(CHAT_ON_TINY);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        authorizer.allows(apiKey(['chat'], `key-${String(i % 4)}`), 'chat.completions', 'tiny'),
      ),
    );
    expect(answers.every(Boolean)).toBe(true);
    expect(policies.reads).toBe(1);
    expect(authorizer.cachedDecisions).toBe(4);
  });

  it('holds its bound, evicting the least recently used decision', async () => {
    const authorizer = await authorizerFor('permit(principal, action, resource);', 3);
    const key = apiKey(['chat']);
    for (const model of ['m1', 'm2', 'm3']) await authorizer.allows(key, 'chat.completions', model);
    await authorizer.allows(key, 'chat.completions', 'm1'); // m1 used again: m2 is now the oldest
    for (let i = 4; i <= 12; i++) {
      expect(await authorizer.allows(key, 'chat.completions', `m${String(i)}`)).toBe(true);
      expect(authorizer.cachedDecisions).toBeLessThanOrEqual(3);
    }
    expect(authorizer.cachedDecisions).toBe(3);
  });

  it('keeps two authorizers of one process apart (their own parse of the same tenant)', async () => {
    await policies.set('acme', CHAT_ON_TINY, now());
    const first = new GatewayAuthorizer(policies, now, TTL);
    const key = apiKey(['chat']);
    expect(await first.allows(key, 'chat.completions', 'tiny')).toBe(true);
    await policies.set('acme', FORBID_ALL, now());
    const second = new GatewayAuthorizer(policies, now, TTL);
    expect(await second.allows(key, 'chat.completions', 'tiny')).toBe(false);
    expect(await first.allows(key, 'chat.completions', 'small')).toBe(false); // still its own policy
    expect(await first.allows(apiKey(['chat'], 'key-9'), 'chat.completions', 'tiny')).toBe(true);
  });
});

describe('GatewayAuthorizer fails closed', () => {
  it('denies a tenant without a policy, and caches nothing for it', async () => {
    const authorizer = new GatewayAuthorizer(policies, now, TTL);
    expect(await authorizer.allows(apiKey(['chat']), 'chat.completions', 'tiny')).toBe(false);
    expect(authorizer.cachedDecisions).toBe(0);
  });

  it('denies everything under an empty policy', async () => {
    const authorizer = await authorizerFor('  \n');
    expect(await authorizer.allows(apiKey(['chat']), 'chat.completions', 'tiny')).toBe(false);
  });

  it('denies everything under a stored policy that does not parse, also after a good one', async () => {
    const authorizer = await authorizerFor(CHAT_ON_TINY);
    const key = apiKey(['chat']);
    expect(await authorizer.allows(key, 'chat.completions', 'tiny')).toBe(true);
    await policies.set('acme', 'permit(principal, action, resource', now());
    nowMs += TTL;
    expect(await authorizer.allows(key, 'chat.completions', 'tiny')).toBe(false);
    expect(authorizer.cachedDecisions).toBe(0);
  });

  it('denies, and keeps denying, when the policy errors while evaluating', async () => {
    // Not valid against the schema (a String compared as a Long): only a stored text can say it.
    const authorizer = await authorizerFor(
      'permit(principal, action, resource) when { principal.tenant < 1 };',
    );
    const key = apiKey(['chat']);
    expect(await authorizer.allows(key, 'chat.completions', 'tiny')).toBe(false);
    expect(await authorizer.allows(key, 'chat.completions', 'tiny')).toBe(false);
    expect(authorizer.cachedDecisions).toBe(1);
  });

  it('denies when a permit and a forbid both match', async () => {
    await policies.set(
      'acme',
      'permit(principal, action, resource);\nforbid(principal, action, resource) when { principal.scopes.contains("models") };',
      now(),
    );
    const authorizer = new GatewayAuthorizer(policies, now, TTL);
    expect(await authorizer.allows(apiKey(['chat']), 'chat.completions', 'tiny')).toBe(true);
    expect(await authorizer.allows(apiKey(['chat', 'models']), 'chat.completions', 'tiny')).toBe(false);
  });

  it('refuses when the store cannot be read, and asks again on the next request', async () => {
    const authorizer = await authorizerFor(CHAT_ON_TINY);
    policies.failing = true;
    await expect(authorizer.allows(apiKey(['chat']), 'chat.completions', 'tiny')).rejects.toMatchObject({
      code: 'STORAGE_UNAVAILABLE',
    });
    policies.failing = false;
    expect(await authorizer.allows(apiKey(['chat']), 'chat.completions', 'tiny')).toBe(true);
    expect(policies.reads).toBe(2);
  });
});
