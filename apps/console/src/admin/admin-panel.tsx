import { useEffect, useMemo, useState } from 'preact/hooks';
import { isTresorError } from '@tresor/protocol';
import { describeError } from '../format.js';
import { AdminClient } from './admin-client.js';
import { importAdminKeyJwk } from './admin-signer.js';
import type {
  ApiKeyView,
  AuditVerificationView,
  CreatedApiKey,
  KeystoreStatusView,
  PolicyView,
  TenantView,
} from './admin-types.js';
import { aggregateUsage, type SeriesBy, type UsageRecordView } from './usage-aggregation.js';
import { UsageChart } from './usage-chart.js';

function SignIn({
  baseUrl,
  audience,
  onSignedIn,
}: {
  baseUrl: string;
  audience: string;
  onSignedIn: (c: AdminClient) => void;
}) {
  const [aud, setAud] = useState(audience);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event): Promise<void> => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const file = (form.elements.namedItem('admin-key') as HTMLInputElement).files?.[0];
    const pasted = (form.elements.namedItem('admin-key-text') as HTMLTextAreaElement).value;
    setError('');
    setBusy(true);
    try {
      const text = file === undefined ? pasted : await file.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new Error('The admin key is not JSON: choose the admin key file (a private JWK).');
      }
      const key = await importAdminKeyJwk(json);
      // The text is dropped here: only the non-extractable CryptoKey stays.
      (form.elements.namedItem('admin-key-text') as HTMLTextAreaElement).value = '';
      (form.elements.namedItem('admin-key') as HTMLInputElement).value = '';
      const client = new AdminClient({ baseUrl, audience: aud, key });
      await client.call('tenants/list');
      onSignedIn(client);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="card signin" onSubmit={(e) => void submit(e)}>
      <h2>Sign in with an admin key</h2>
      <p>
        The key is imported into this browser as a non-extractable WebCrypto key; every request is signed with
        it (a JWS for one operation, usable once). The key file never leaves the page.
      </p>
      <label>
        Admin key file (private JWK)
        <input
          type="file"
          name="admin-key"
          accept=".jwk,.json,application/json"
          data-testid="admin-key-file"
        />
      </label>
      <label>
        or paste it
        <textarea
          name="admin-key-text"
          rows={3}
          spellcheck={false}
          autocomplete="off"
          data-testid="admin-key-text"
        />
      </label>
      <label>
        Admin audience (the gateway's configured admin audience)
        <input
          value={aud}
          onInput={(e) => {
            setAud(e.currentTarget.value.trim());
          }}
          required
          data-testid="admin-audience"
        />
      </label>
      <button type="submit" disabled={busy} data-testid="admin-signin">
        {busy ? 'Checking…' : 'Sign in'}
      </button>
      {error === '' ? null : (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function useAsync<T>(
  load: () => Promise<T>,
  deps: unknown[],
): { value: T | undefined; error: string; reload: () => void } {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState('');
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setError('');
    load().then(
      (v) => {
        if (live) setValue(v);
      },
      (err: unknown) => {
        if (live) setError(describeError(err));
      },
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return {
    value,
    error,
    reload: () => {
      setTick((t) => t + 1);
    },
  };
}

function ErrorLine({ text }: { text: string }) {
  return text === '' ? null : (
    <p class="error" role="alert">
      {text}
    </p>
  );
}

function Tenants({
  client,
  tenants,
  reload,
  error,
}: {
  client: AdminClient;
  tenants: TenantView[];
  reload: () => void;
  error: string;
}) {
  const [id, setId] = useState('');
  const [name, setName] = useState('');
  const [problem, setProblem] = useState('');
  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    setProblem('');
    try {
      await client.call('tenants/create', { id, ...(name === '' ? {} : { name }) });
      setId('');
      setName('');
      reload();
    } catch (err) {
      setProblem(describeError(err));
    }
  };
  return (
    <section class="card" aria-labelledby="tenants-h">
      <h2 id="tenants-h">Tenants</h2>
      <ErrorLine text={error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Id</th>
            <th scope="col">Name</th>
            <th scope="col">Created</th>
            <th scope="col">Limits</th>
          </tr>
        </thead>
        <tbody>
          {tenants.map((t) => (
            <tr key={t.id}>
              <td>
                <code>{t.id}</code>
              </td>
              <td>{t.name}</td>
              <td>{t.createdAt}</td>
              <td>
                {t.requestsPerMinute === undefined ? '' : `${t.requestsPerMinute}/min `}
                {t.tokensPerDay === undefined ? '' : `${t.tokensPerDay} tokens/day`}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="row" onSubmit={(e) => void create(e)}>
        <label>
          New tenant id
          <input
            value={id}
            onInput={(e) => {
              setId(e.currentTarget.value.trim());
            }}
            pattern="[a-z0-9][a-z0-9-]{0,62}"
            required
          />
        </label>
        <label>
          Name
          <input
            value={name}
            onInput={(e) => {
              setName(e.currentTarget.value);
            }}
          />
        </label>
        <button type="submit">Create tenant</button>
      </form>
      <ErrorLine text={problem} />
    </section>
  );
}

function ApiKeys({ client, tenant }: { client: AdminClient; tenant: string }) {
  const keys = useAsync(
    () => client.call<{ keys: ApiKeyView[] }>('api-keys/list', { tenant }),
    [client, tenant],
  );
  const [name, setName] = useState('');
  const [created, setCreated] = useState<CreatedApiKey | null>(null);
  const [problem, setProblem] = useState('');
  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    setProblem('');
    try {
      setCreated(
        await client.call<CreatedApiKey>('api-keys/create', { tenant, ...(name === '' ? {} : { name }) }),
      );
      setName('');
      keys.reload();
    } catch (err) {
      setProblem(describeError(err));
    }
  };
  const revoke = async (id: string): Promise<void> => {
    if (!confirm(`Revoke API key ${id}? Requests with it are refused from then on.`)) return;
    setProblem('');
    try {
      await client.call('api-keys/revoke', { id });
      keys.reload();
    } catch (err) {
      setProblem(describeError(err));
    }
  };
  return (
    <section class="card" aria-labelledby="keys-h">
      <h2 id="keys-h">API keys of {tenant}</h2>
      <ErrorLine text={keys.error} />
      {created === null ? null : (
        <div class="banner banner-secret" role="status" data-testid="created-key">
          <p>
            <strong>New API key {created.id}</strong> — shown once, copy it now. Only its salted hash is
            stored.
          </p>
          <output class="secret" data-testid="created-key-value">
            {created.key}
          </output>
          <div class="row">
            <button type="button" onClick={() => void navigator.clipboard.writeText(created.key)}>
              Copy
            </button>
            <button
              type="button"
              onClick={() => {
                setCreated(null);
              }}
            >
              Done (hide it)
            </button>
          </div>
        </div>
      )}
      <table data-testid="api-keys">
        <thead>
          <tr>
            <th scope="col">Id</th>
            <th scope="col">Name</th>
            <th scope="col">Scopes</th>
            <th scope="col">Created</th>
            <th scope="col">State</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {(keys.value?.keys ?? []).map((k) => (
            <tr key={k.id} data-key-id={k.id}>
              <td>
                <code>{k.id}</code>
              </td>
              <td>{k.name}</td>
              <td>{k.scopes.join(', ')}</td>
              <td>{k.createdAt}</td>
              <td>
                {k.revokedAt === null
                  ? k.expiresAt === null
                    ? 'active'
                    : `expires ${k.expiresAt}`
                  : `revoked ${k.revokedAt}`}
              </td>
              <td>
                {k.revokedAt === null ? (
                  <button
                    type="button"
                    class="danger"
                    onClick={() => void revoke(k.id)}
                    aria-label={`Revoke API key ${k.id}`}
                  >
                    Revoke
                  </button>
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      <form class="row" onSubmit={(e) => void create(e)}>
        <label>
          Key name
          <input
            value={name}
            onInput={(e) => {
              setName(e.currentTarget.value);
            }}
            data-testid="new-key-name"
          />
        </label>
        <button type="submit" data-testid="create-key">
          Create API key
        </button>
      </form>
      <ErrorLine text={problem} />
    </section>
  );
}

function Policy({ client, tenant }: { client: AdminClient; tenant: string }) {
  const [text, setText] = useState('');
  const [info, setInfo] = useState('');
  const [problem, setProblem] = useState('');
  useEffect(() => {
    setProblem('');
    client.call<PolicyView>('policies/get', { tenant }).then(
      (p) => {
        setText(p.policy);
        setInfo(`version ${p.version}, updated ${p.updatedAt}`);
      },
      (err: unknown) => {
        setText('');
        setInfo(
          isTresorError(err) && err.code === 'ADMIN_TARGET_NOT_FOUND' ? 'no policy set (default deny)' : '',
        );
        if (!(isTresorError(err) && err.code === 'ADMIN_TARGET_NOT_FOUND')) setProblem(describeError(err));
      },
    );
  }, [client, tenant]);
  const save = async (e: Event): Promise<void> => {
    e.preventDefault();
    setProblem('');
    try {
      const r = await client.call<{ version: number; sha256: string }>('policies/set', {
        tenant,
        policy: text,
      });
      setInfo(`version ${r.version} saved (sha256 ${r.sha256.slice(0, 16)}…)`);
    } catch (err) {
      setProblem(describeError(err));
    }
  };
  return (
    <section class="card" aria-labelledby="policy-h">
      <h2 id="policy-h">Policy of {tenant} (Cedar)</h2>
      <form onSubmit={(e) => void save(e)}>
        <label>
          Cedar policy <span class="muted">{info}</span>
          <textarea
            rows={8}
            spellcheck={false}
            value={text}
            onInput={(e) => {
              setText(e.currentTarget.value);
            }}
            class="mono"
          />
        </label>
        <button type="submit">Save policy</button>
      </form>
      <ErrorLine text={problem} />
    </section>
  );
}

function Usage({ client, tenant }: { client: AdminClient; tenant: string }) {
  const [by, setBy] = useState<SeriesBy>('model');
  const usage = useAsync(
    () =>
      client.call<{
        records: UsageRecordView[];
        totals: { requests: number; promptTokens: number; completionTokens: number };
      }>('usage', { tenant, limit: 10_000 }),
    [client, tenant],
  );
  const aggregate = useMemo(() => aggregateUsage(usage.value?.records ?? [], by), [usage.value, by]);
  const totals = usage.value?.totals;
  return (
    <section class="card" aria-labelledby="usage-h" data-testid="usage">
      <h2 id="usage-h">Usage of {tenant}</h2>
      <div class="row">
        <label>
          Series per
          <select
            value={by}
            onChange={(e) => {
              setBy(e.currentTarget.value as SeriesBy);
            }}
          >
            <option value="model">model</option>
            <option value="apiKey">API key</option>
          </select>
        </label>
        <button type="button" onClick={usage.reload} data-testid="usage-reload">
          Refresh
        </button>
      </div>
      <ErrorLine text={usage.error} />
      {totals === undefined ? null : (
        <p data-testid="usage-totals">
          {totals.requests} requests, {totals.promptTokens} prompt and {totals.completionTokens} completion
          tokens
          {aggregate.skipped > 0 ? ` (${aggregate.skipped} unreadable records not charted)` : ''}
        </p>
      )}
      {aggregate.series.length === 0 ? (
        <p class="muted">No requests recorded yet.</p>
      ) : (
        <div class="charts">
          <UsageChart aggregate={aggregate} metric="requests" />
          <UsageChart aggregate={aggregate} metric="tokens" />
          <UsageChart aggregate={aggregate} metric="errors" />
          <UsageChart aggregate={aggregate} metric="latency" />
        </div>
      )}
    </section>
  );
}

/** Operations the page uses when the gateway offers them; a 404 is shown as "not offered". */
function notOffered(error: string): boolean {
  return error.startsWith('ROUTE_NOT_FOUND');
}

const ROLE: Readonly<Record<string, string>> = {
  'tenant-kek': 'Tenant key (KEK wrapping every tenant data key)',
  'audit-checkpoint': 'Audit checkpoint signing key',
};

function AuditPanel({ client }: { client: AdminClient }) {
  const audit = useAsync(() => client.call<AuditVerificationView>('audit/verify', { recent: 8 }), [client]);
  const a = audit.value;
  return (
    <section class="card" aria-labelledby="audit-h" data-testid="audit">
      <h2 id="audit-h">Audit log</h2>
      <div class="row">
        <button type="button" onClick={audit.reload} data-testid="audit-reload">
          Verify again
        </button>
      </div>
      {notOffered(audit.error) ? (
        <p class="muted">
          This gateway offers no audit/verify operation; verify offline with `tresor audit verify`.
        </p>
      ) : (
        <ErrorLine text={audit.error} />
      )}
      {a === undefined ? null : (
        <>
          <p
            class={a.intact ? 'ok' : 'error'}
            role={a.intact ? 'status' : 'alert'}
            data-testid="audit-verdict"
            data-intact={String(a.intact)}
          >
            {a.intact
              ? `✓ Chain intact: ${a.records} records, ${a.checkpoints} signed checkpoints, ${a.unsignedRecords} not yet under a checkpoint`
              : `✗ Chain broken: ${a.problem?.code ?? 'AUDIT_CHAIN_BROKEN'} at record ${a.problem?.seq ?? '?'} — ${a.problem?.message ?? ''}`}
          </p>
          <p class="muted">
            {a.firstTime === null
              ? 'No records yet.'
              : `Records ${a.firstSeq ?? '?'}–${a.lastSeq ?? '?'}, ${a.firstTime} to ${a.lastTime ?? '?'}`}{' '}
            · verified {a.checkedAt}
          </p>
          {a.recent.length === 0 ? null : (
            <div class="table-scroll">
              <table>
                <caption class="visually-hidden">Newest audit records</caption>
                <thead>
                  <tr>
                    <th scope="col">#</th>
                    <th scope="col">Time</th>
                    <th scope="col">Actor</th>
                    <th scope="col">Action</th>
                    <th scope="col">Target</th>
                    <th scope="col">Outcome</th>
                  </tr>
                </thead>
                <tbody>
                  {a.recent.map((r) => (
                    <tr key={r.seq}>
                      <td>{r.seq}</td>
                      <td>{r.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</td>
                      <td>{r.actor}</td>
                      <td>{r.action}</td>
                      <td>{r.target}</td>
                      <td>{r.outcome}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
    </section>
  );
}

function KeystorePanel({ client }: { client: AdminClient }) {
  const kyok = useAsync(() => client.call<KeystoreStatusView>('keystore/status', null), [client]);
  const k = kyok.value;
  return (
    <section class="card" aria-labelledby="kyok-h" data-testid="kyok">
      <h2 id="kyok-h">Tenant keys (BYOK / KYOK)</h2>
      <div class="row">
        <button type="button" onClick={kyok.reload} data-testid="kyok-reload">
          Check again
        </button>
      </div>
      {notOffered(kyok.error) ? (
        <p class="muted">This gateway offers no keystore/status operation.</p>
      ) : (
        <ErrorLine text={kyok.error} />
      )}
      {k === undefined ? null : (
        <>
          <p
            class={k.reachable && !k.revoked ? 'ok' : 'error'}
            role={k.reachable && !k.revoked ? 'status' : 'alert'}
            data-testid="kyok-verdict"
          >
            {k.reachable && !k.revoked ? '✓' : '✗'} Keystore <code>{k.backend}</code>:{' '}
            {k.reachable ? 'reachable' : 'unreachable'}, {k.revoked ? 'a key is revoked' : 'no key revoked'}
          </p>
          <ul class="key-list">
            {k.keys.map((key) => (
              <li key={key.role} data-role={key.role}>
                <strong>{ROLE[key.role] ?? key.role}</strong> <code>{key.id}</code>: {key.state}
                {key.revoked ? ', revoked' : ''}
                {key.reachable ? '' : ', unreachable'}
                {key.code === undefined ? '' : ` (${key.code})`}
              </li>
            ))}
          </ul>
          <p class="muted">
            Checked {k.checkedAt}. The tenant key is used for real (a random key wrapped and unwrapped): a
            tenant key server decides at each use. Model keys are held by the trust service, not listed here.
          </p>
        </>
      )}
    </section>
  );
}

export function AdminPanel({ baseUrl, audience }: { baseUrl: string; audience: string }) {
  const [client, setClient] = useState<AdminClient | null>(null);
  const [tenant, setTenant] = useState('');
  const tenants = useAsync(
    async () =>
      client === null ? [] : (await client.call<{ tenants: TenantView[] }>('tenants/list')).tenants,
    [client],
  );
  const list = tenants.value ?? [];
  useEffect(() => {
    if (tenant === '' && list[0] !== undefined) setTenant(list[0].id);
  }, [list, tenant]);
  if (client === null) return <SignIn baseUrl={baseUrl} audience={audience} onSignedIn={setClient} />;
  return (
    <div class="admin">
      <div class="row admin-bar">
        <span>
          Signed in with admin key <code>{client.keyId}</code>
        </span>
        <label>
          Tenant
          <select
            value={tenant}
            onChange={(e) => {
              setTenant(e.currentTarget.value);
            }}
            data-testid="admin-tenant"
          >
            {list.map((t) => (
              <option key={t.id} value={t.id}>
                {t.id}
              </option>
            ))}
          </select>
        </label>
        <button
          type="button"
          onClick={() => {
            setClient(null);
          }}
        >
          Sign out (forget the key)
        </button>
      </div>
      <Tenants client={client} tenants={list} reload={tenants.reload} error={tenants.error} />
      {tenant === '' ? null : (
        <>
          <ApiKeys client={client} tenant={tenant} />
          <Usage client={client} tenant={tenant} />
          <Policy client={client} tenant={tenant} />
        </>
      )}
      <div class="two">
        <AuditPanel client={client} />
        <KeystorePanel client={client} />
      </div>
    </div>
  );
}
