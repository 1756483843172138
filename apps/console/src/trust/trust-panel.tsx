import type { PageReference } from '../page-reference.js';
import { PageReferenceLine } from '../page-reference-line.js';
import type { CheckRow, ComponentGroup, TrustView } from './trust-view.js';
import { evidenceAgeSeconds } from './trust-view.js';

const MARK: Readonly<Record<CheckRow['status'], string>> = {
  pass: '✓',
  fail: '✗',
  'not-observable': '–',
};
const WORD: Readonly<Record<CheckRow['status'], string>> = {
  pass: 'passed',
  fail: 'failed',
  'not-observable': 'not observable',
};

function Row({ row, checkedAt }: { row: CheckRow; checkedAt: string }) {
  const age = row.check === 'freshness' ? evidenceAgeSeconds(row.seen, checkedAt) : undefined;
  return (
    <li class={`check check-${row.status}`} data-check={row.check} data-status={row.status}>
      <span class="check-mark" aria-hidden="true">
        {MARK[row.status]}
      </span>
      <div class="check-body">
        <div class="check-label">
          {row.label} <span class="visually-hidden">{WORD[row.status]}</span>
          {row.code === undefined ? null : <code class="check-code">{row.code}</code>}
          {age === undefined ? null : <span class="check-age">{age} s old</span>}
        </div>
        <dl class="check-values">
          <dt>seen</dt>
          <dd>{row.seen}</dd>
          <dt>expected</dt>
          <dd>{row.expected}</dd>
        </dl>
      </div>
    </li>
  );
}

function Group({ group, checkedAt }: { group: ComponentGroup; checkedAt: string }) {
  const headingId = `group-${group.key.replace(/[^A-Za-z0-9_-]/g, '-')}`;
  const claims = Object.keys(group.claims).length > 0;
  return (
    <section class={`group group-${group.status}`} aria-labelledby={headingId} data-group={group.kind}>
      <h3 id={headingId}>
        <span class={`badge badge-${group.status}`}>{group.status === 'pass' ? 'PASS' : 'FAIL'}</span>{' '}
        {group.title}
        {group.tee === undefined ? null : <span class="tee">TEE: {group.tee}</span>}
      </h3>
      <ul class="checks">
        {group.rows.map((row) => (
          <Row key={row.check} row={row} checkedAt={checkedAt} />
        ))}
      </ul>
      {claims ? (
        <details class="claims">
          <summary>Raw claims</summary>
          <pre>{JSON.stringify(group.claims, null, 2)}</pre>
        </details>
      ) : null}
    </section>
  );
}

export function SampleTeeBanner() {
  return (
    <div class="banner banner-sample" role="note" data-testid="sample-banner">
      <strong>Sample TEE — not protected.</strong> This gateway runs on Tresor's software stand-in for TEE
      hardware. Its checks pass for this installation only, and no hardware protects prompts or answers here:
      local development only.
    </div>
  );
}

/** The console page itself: its hash against the console releases in the signed reference values. */
function ConsolePageCard({ reference }: { reference: PageReference }) {
  const status = reference.state === 'match' ? 'pass' : reference.state === 'pending' ? 'pending' : 'fail';
  return (
    <section class={`group group-${status}`} aria-labelledby="group-console-page" data-group="console">
      <h3 id="group-console-page">
        <span class={`badge badge-${status}`}>
          {status === 'pass' ? 'PASS' : status === 'fail' ? 'FAIL' : '…'}
        </span>{' '}
        This console page
      </h3>
      <p>
        <PageReferenceLine reference={reference} />
      </p>
      <p class="muted">
        A page cannot vouch for itself: a changed page could print anything here. Compare the hash in the
        footer with the reference values yourself (`tresor verify --json`), or with the hash of the build you
        released.
      </p>
    </section>
  );
}

export function TrustPanel({
  view,
  busy,
  reference,
  onReverify,
}: {
  view: TrustView;
  busy: boolean;
  reference: PageReference;
  onReverify: () => void;
}) {
  return (
    <div class="trust" data-verdict={view.ok ? 'verified' : 'failed'}>
      {view.sampleTee ? <SampleTeeBanner /> : null}
      <div class={`verdict verdict-${view.ok ? 'ok' : 'fail'}`} role={view.ok ? 'status' : 'alert'}>
        <p class="verdict-headline" data-testid="verdict">
          {view.headline}
        </p>
        <p class="verdict-meta">
          {view.gatewayUrl} · checked at {view.checkedAt}
        </p>
        <button type="button" onClick={onReverify} disabled={busy}>
          {busy ? 'Verifying…' : 'Verify again'}
        </button>
      </div>
      {view.failed.length > 0 ? (
        <div class="failed-list" data-testid="failed-checks">
          <h3>Failed checks</h3>
          <ul>
            {view.failed.map((f) => (
              <li key={`${f.group}-${f.check}`} data-check={f.check}>
                <strong>{f.group}</strong>: {f.label} (<code>{f.check}</code>
                {f.code === undefined ? '' : `, ${f.code}`}) — {f.seen}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <div class="groups">
        {view.groups.map((g) => (
          <Group key={g.key} group={g} checkedAt={view.checkedAt} />
        ))}
        <ConsolePageCard reference={reference} />
      </div>
    </div>
  );
}
