import { useEffect, useState } from 'preact/hooks';
import { AdminPanel } from './admin/admin-panel.js';
import { ChatPanel } from './chat/chat-panel.js';
import { openSession, type SessionState } from './chat/gateway-session.js';
import { loadConsoleConfig, storePolicy, type ConsoleConfig } from './console-config.js';
import { describeError } from './format.js';
import { checkPageIntegrity, type PageIntegrity } from './page-integrity.js';
import { comparePageWithReleases, type PageReference } from './page-reference.js';
import { PageReferenceLine } from './page-reference-line.js';
import { SampleTeeBanner, TrustPanel } from './trust/trust-panel.js';

type Tab = 'chat' | 'trust' | 'admin';
const TABS: readonly { id: Tab; label: string }[] = [
  { id: 'chat', label: 'Chat' },
  { id: 'trust', label: 'Trust' },
  { id: 'admin', label: 'Admin' },
];

function PolicyForm({ onPolicy }: { onPolicy: (policy: unknown) => void }) {
  const [error, setError] = useState('');
  const read = async (event: Event): Promise<void> => {
    event.preventDefault();
    const form = event.currentTarget as HTMLFormElement;
    const file = (form.elements.namedItem('policy-file') as HTMLInputElement).files?.[0];
    const text =
      file === undefined
        ? (form.elements.namedItem('policy-text') as HTMLTextAreaElement).value
        : await file.text();
    try {
      onPolicy(JSON.parse(text));
    } catch {
      setError('The policy is not JSON: choose your tresor-policy.json.');
    }
  };
  return (
    <form class="card" onSubmit={(e) => void read(e)}>
      <h2>Trust policy</h2>
      <p>
        The page verifies the gateway against your trust policy (the same file `tresor verify --policy`
        reads). A gateway cannot hand you the policy it is checked against: bring your own.
      </p>
      <label>
        Policy file
        <input type="file" name="policy-file" accept=".json,application/json" />
      </label>
      <label>
        or paste it
        <textarea name="policy-text" rows={4} spellcheck={false} />
      </label>
      <button type="submit">Use this policy</button>
      {error === '' ? null : (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </form>
  );
}

function Footer({ integrity, reference }: { integrity: PageIntegrity | null; reference: PageReference }) {
  return (
    <footer class="footer" data-testid="footer">
      <span>Page hash (SHA-256 of index.html and assets, as this browser fetched them): </span>
      {integrity === null ? (
        <span>computing…</span>
      ) : integrity.state === 'ok' ? (
        <code data-testid="page-hash">{integrity.pageHash}</code>
      ) : integrity.state === 'mismatch' ? (
        <span class="error">
          <code data-testid="page-hash">{integrity.pageHash}</code> — {integrity.file} differs from the build
          manifest
        </span>
      ) : (
        <span class="muted">unknown ({integrity.reason})</span>
      )}{' '}
      <PageReferenceLine reference={reference} />
    </footer>
  );
}

export function App({ pageUrl }: { pageUrl: string }) {
  const [tab, setTab] = useState<Tab>('trust');
  const [config, setConfig] = useState<ConsoleConfig | null>(null);
  const [session, setSession] = useState<SessionState | null>(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [integrity, setIntegrity] = useState<PageIntegrity | null>(null);

  const verify = async (c: ConsoleConfig): Promise<void> => {
    if (c.policy === undefined) return;
    setBusy(true);
    setError('');
    try {
      const s = await openSession(c.gatewayUrl, c.policy);
      setSession(s);
      if (s.client !== null) setTab((t) => (t === 'trust' ? 'chat' : t));
    } catch (err) {
      setSession(null);
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  useEffect(() => {
    loadConsoleConfig(pageUrl).then(
      (c) => {
        // The policy link's fragment has been read (and the policy stored): keep it out of the
        // address bar, bookmarks and screenshots.
        if (c.policySource === 'link') history.replaceState(null, '', new URL(pageUrl).pathname);
        setConfig(c);
        void verify(c);
      },
      (err: unknown) => {
        setError(describeError(err));
      },
    );
    void checkPageIntegrity(pageUrl).then(setIntegrity);
  }, [pageUrl]);

  const view = session?.view ?? null;
  const reference = comparePageWithReleases(integrity, session?.referenceValues ?? null);
  const usePolicy = (policy: unknown): void => {
    if (config === null) return;
    storePolicy(policy);
    const next: ConsoleConfig = { ...config, policy, policySource: 'stored' };
    setConfig(next);
    void verify(next);
  };

  return (
    <div class="shell">
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="header">
        <h1>
          Tresor <span class="muted">console</span>
        </h1>
        <span
          class={`pill ${view === null ? 'pill-none' : view.ok ? 'pill-ok' : 'pill-fail'}`}
          data-testid="trust-pill"
        >
          {busy
            ? 'verifying…'
            : view === null
              ? 'not verified'
              : view.ok
                ? view.sampleTee
                  ? 'verified · sample TEE'
                  : 'verified'
                : 'verification failed'}
        </span>
        <nav aria-label="Sections">
          <ul role="tablist" class="tabs">
            {TABS.map((t) => (
              <li key={t.id} role="presentation">
                <button
                  type="button"
                  role="tab"
                  id={`tab-${t.id}`}
                  aria-selected={tab === t.id}
                  aria-controls="main"
                  onClick={() => {
                    setTab(t.id);
                  }}
                  data-testid={`tab-${t.id}`}
                >
                  {t.label}
                </button>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      {view?.sampleTee === true && tab !== 'trust' ? <SampleTeeBanner /> : null}
      <main id="main" role="tabpanel" aria-labelledby={`tab-${tab}`} tabIndex={-1}>
        {error === '' ? null : (
          <p class="error" role="alert" data-testid="app-error">
            {error}
          </p>
        )}
        {config !== null && config.policy === undefined ? <PolicyForm onPolicy={usePolicy} /> : null}
        {tab === 'chat' ? <ChatPanel client={session?.client ?? null} view={view} /> : null}
        {tab === 'trust' ? (
          view === null ? (
            <p class="muted">{busy ? 'Verifying the gateway…' : 'No verification yet.'}</p>
          ) : (
            <TrustPanel
              view={view}
              busy={busy}
              reference={reference}
              onReverify={() => config !== null && void verify(config)}
            />
          )
        ) : null}
        {tab === 'admin' && config !== null ? (
          <AdminPanel baseUrl={config.gatewayUrl} audience={config.adminAudience} />
        ) : null}
      </main>
      <Footer integrity={integrity} reference={reference} />
    </div>
  );
}
