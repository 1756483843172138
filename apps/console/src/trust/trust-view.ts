import type { CheckName, CheckStatus, VerificationCheck, VerificationDocument } from '@tresor/sdk';

/**
 * The trust panel's view of a verification document: one checklist per component (the trust
 * service's signed documents, the gateway, each serving replica, each replica's GPU), each check
 * with a label a person understands, and the failures named up front. Pure: no DOM, no clock.
 */

/** What the trust panel knows about a component besides its checks (from the verified bundle). */
export interface ComponentFacts {
  readonly component: string;
  readonly id: string;
  readonly tee: string;
  readonly insecure: boolean;
  readonly releases: readonly string[];
  readonly measurements: Readonly<Record<string, string>>;
  readonly hardwareIds: readonly string[];
  readonly models: readonly { readonly id: string; readonly sha256: string }[];
  readonly tlsSpkiSha256: string;
  readonly hpkeKeyConfig: string;
  readonly evidenceSha256: string;
}

export type GroupKind = 'trust' | 'gateway' | 'serving' | 'gpu';

export interface CheckRow {
  readonly check: CheckName;
  readonly label: string;
  readonly status: CheckStatus;
  readonly seen: string;
  readonly expected: string;
  readonly code?: string;
}

export interface ComponentGroup {
  /** Unique within the view (a DOM id can be made of it). */
  readonly key: string;
  readonly kind: GroupKind;
  readonly title: string;
  /** `fail` when any row failed; `pass` otherwise (not-observable rows do not fail a group). */
  readonly status: 'pass' | 'fail';
  /** The TEE kind (`snp`, `tdx`, `sample`, `nvidia` for a GPU), when known. */
  readonly tee?: string;
  readonly rows: readonly CheckRow[];
  /** Public values to show under "raw claims" (never secrets: the bundle holds none). */
  readonly claims: Readonly<Record<string, unknown>>;
}

export interface FailedCheck {
  readonly group: string;
  readonly check: CheckName;
  readonly label: string;
  readonly code?: string;
  readonly seen: string;
}

export interface TrustView {
  readonly ok: boolean;
  /** The sample TEE is in play: nothing but software protects this gateway. */
  readonly sampleTee: boolean;
  readonly gatewayUrl: string;
  readonly checkedAt: string;
  readonly headline: string;
  readonly groups: readonly ComponentGroup[];
  readonly failed: readonly FailedCheck[];
  readonly counts: { readonly pass: number; readonly fail: number; readonly notObservable: number };
}

const LABELS: Readonly<Record<CheckName, string>> = {
  bundle_nonce: 'Bundle answers this page’s nonce',
  reference_values_signature: 'Reference values signed by a pinned key',
  residency_inventory_signature: 'Residency inventory signed by a pinned key',
  component: 'Evidence is from this component',
  evidence_signature: 'TEE evidence signature and certificate chain',
  sample_tee: 'TEE kind',
  debug_off: 'Debug off',
  tcb: 'TCB at or above the minimum',
  report_data: 'Key binding (report data = hash of runtime data)',
  nonce: 'Fresh for this page (nonce)',
  tls_key: 'TLS key binding',
  hpke_key: 'Encryption key (HPKE) bound',
  measurement: 'Measurement vs expected',
  models: 'Loaded models allowed',
  gpu: 'GPU in confidential-computing mode',
  residency: 'Residency (chip’s jurisdiction)',
  freshness: 'Evidence age',
  receipt_key: 'Response receipt key',
};

/** A person's name for a check. */
export function checkLabel(check: CheckName): string {
  return LABELS[check];
}

function row(e: VerificationCheck): CheckRow {
  return {
    check: e.check,
    label: LABELS[e.check],
    status: e.status,
    seen: e.seen,
    expected: e.expected,
    ...(e.code === undefined ? {} : { code: e.code }),
  };
}

function groupStatus(rows: readonly CheckRow[]): 'pass' | 'fail' {
  return rows.some((r) => r.status === 'fail') ? 'fail' : 'pass';
}

function claimsOf(facts: ComponentFacts | undefined): Record<string, unknown> {
  if (facts === undefined) return {};
  return {
    tee: facts.tee,
    releases: facts.releases,
    measurements: facts.measurements,
    hardwareIds: facts.hardwareIds,
    ...(facts.component === 'serving' ? { models: facts.models } : {}),
    tlsSpkiSha256: facts.tlsSpkiSha256,
    hpkeKeyConfig: facts.hpkeKeyConfig,
    evidenceSha256: facts.evidenceSha256,
  };
}

const PRODUCED_AT = /produced at (\S+)/;

/**
 * How old the evidence was when the document was made, in whole seconds, when a freshness entry
 * says when it was produced; undefined otherwise.
 */
export function evidenceAgeSeconds(freshnessSeen: string, checkedAt: string): number | undefined {
  const match = PRODUCED_AT.exec(freshnessSeen);
  if (match?.[1] === undefined) return undefined;
  const produced = Date.parse(match[1]);
  const checked = Date.parse(checkedAt);
  if (Number.isNaN(produced) || Number.isNaN(checked)) return undefined;
  return Math.max(0, Math.round((checked - produced) / 1000));
}

/** Builds the panel's view. `facts` (from the verified bundle) add TEE kinds and raw claims. */
export function buildTrustView(doc: VerificationDocument, facts: readonly ComponentFacts[] = []): TrustView {
  const order: string[] = [];
  const byKey = new Map<string, { kind: GroupKind; component: string; id: string; rows: CheckRow[] }>();
  const groupFor = (kind: GroupKind, component: string, id: string): CheckRow[] => {
    const key = `${kind}:${id}`;
    let g = byKey.get(key);
    if (g === undefined) {
      g = { kind, component, id, rows: [] };
      byKey.set(key, g);
      order.push(key);
    }
    return g.rows;
  };
  for (const e of doc.entries) {
    if (e.component === 'trust') {
      groupFor('trust', 'trust', '').push(row(e));
    } else if (e.check === 'gpu' && e.component === 'serving') {
      // The GPU is a component of its own on the panel, attested through its replica.
      groupFor('serving', e.component, e.id);
      groupFor('gpu', e.component, e.id).push(row(e));
    } else {
      groupFor(e.component === 'gateway' ? 'gateway' : 'serving', e.component, e.id).push(row(e));
    }
  }
  const factsOf = (component: string, id: string): ComponentFacts | undefined =>
    facts.find((f) => f.component === component && f.id === id);

  const groups: ComponentGroup[] = order.map((key) => {
    const g = byKey.get(key)!;
    const f = factsOf(g.component, g.id);
    const status = groupStatus(g.rows);
    switch (g.kind) {
      case 'trust':
        return { key, kind: g.kind, title: 'Trust service documents', status, rows: g.rows, claims: {} };
      case 'gpu': {
        const gpuSeen = g.rows[0]?.seen ?? '';
        const hasGpu = !gpuSeen.startsWith('no GPU evidence');
        return {
          key,
          kind: g.kind,
          title: `GPU of ${g.id}`,
          status,
          ...(hasGpu ? { tee: 'nvidia' } : {}),
          rows: g.rows,
          claims: { attestedBy: g.id, evidence: gpuSeen },
        };
      }
      default:
        return {
          key,
          kind: g.kind,
          title: `${g.kind === 'gateway' ? 'Gateway' : 'Serving replica'} ${g.id}`,
          status,
          ...(f === undefined ? {} : { tee: f.tee }),
          rows: g.rows,
          claims: claimsOf(f),
        };
    }
  });

  const failed: FailedCheck[] = groups.flatMap((g) =>
    g.rows
      .filter((r) => r.status === 'fail')
      .map((r) => ({
        group: g.title,
        check: r.check,
        label: r.label,
        seen: r.seen,
        ...(r.code === undefined ? {} : { code: r.code }),
      })),
  );
  const all = groups.flatMap((g) => g.rows);
  const counts = {
    pass: all.filter((r) => r.status === 'pass').length,
    fail: all.filter((r) => r.status === 'fail').length,
    notObservable: all.filter((r) => r.status === 'not-observable').length,
  };
  const ok = doc.ok && counts.fail === 0 && all.length > 0;
  const first = failed[0];
  const headline = ok
    ? `Verified: ${counts.pass} checks passed${counts.notObservable > 0 ? `, ${counts.notObservable} not observable from a browser` : ''}`
    : first === undefined
      ? 'Not verified: the document holds no checks'
      : `Not verified: ${failed.length} check${failed.length === 1 ? '' : 's'} failed — first: ${first.group}, ${first.label} (${first.check}${first.code === undefined ? '' : `, ${first.code}`})`;
  return {
    ok,
    sampleTee: doc.insecure || facts.some((f) => f.insecure || f.tee === 'sample'),
    gatewayUrl: doc.gatewayUrl,
    checkedAt: doc.time,
    headline,
    groups,
    failed,
    counts,
  };
}
