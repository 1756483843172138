import type { ErrorCode } from '@tresor/protocol';

/** What a check found: passed, failed, or could not be observed from where the client runs. */
export type CheckStatus = 'pass' | 'fail' | 'not-observable';

/** The steps a client verifies, one entry each per component (DESIGN.md §3 "Verification document"). */
export type CheckName =
  | 'bundle_nonce'
  | 'reference_values_signature'
  | 'residency_inventory_signature'
  | 'component'
  | 'evidence_signature'
  | 'sample_tee'
  | 'debug_off'
  | 'tcb'
  | 'report_data'
  | 'nonce'
  | 'tls_key'
  | 'hpke_key'
  | 'measurement'
  | 'models'
  | 'gpu'
  | 'residency'
  | 'freshness'
  | 'receipt_key';

/** One check of the verification document. */
export interface VerificationCheck {
  /** `gateway`, `serving`, or `trust` for the signed documents. */
  readonly component: string;
  /** Replica id, or the trust document's issuer. */
  readonly id: string;
  readonly check: CheckName;
  readonly status: CheckStatus;
  /** What the evidence showed (public values only). */
  readonly seen: string;
  /** What the policy required. */
  readonly expected: string;
  /** The catalogue code of a failure. */
  readonly code?: ErrorCode;
}

export const VERIFICATION_DOCUMENT_VERSION = 1;

/** The client's record of what it checked, JSON for machines (`tresor verify --json`). */
export interface VerificationDocument {
  readonly version: number;
  readonly gatewayUrl: string;
  /** When the verification ran (ISO 8601). */
  readonly time: string;
  /** True when any component runs in the sample TEE: no hardware protects it. */
  readonly insecure: boolean;
  /** True when no entry failed. */
  readonly ok: boolean;
  readonly entries: readonly VerificationCheck[];
}

export function failedChecks(entries: readonly VerificationCheck[]): readonly VerificationCheck[] {
  return entries.filter((e) => e.status === 'fail');
}

const MARK: Readonly<Record<CheckStatus, string>> = { pass: 'PASS', fail: 'FAIL', 'not-observable': 'N/A ' };

/**
 * The readable checklist `tresor verify` prints. The first line says INSECURE when the sample TEE
 * is in play, so nobody mistakes a local stack for a protected one.
 */
export function renderVerificationDocument(doc: VerificationDocument): string {
  const verdict = doc.ok ? 'VERIFIED' : 'NOT VERIFIED';
  const first = doc.insecure
    ? `INSECURE (sample TEE: no hardware protects this gateway) — ${verdict}: ${doc.gatewayUrl}`
    : `${verdict}: ${doc.gatewayUrl}`;
  const lines = [first, `checked at ${doc.time}`];
  for (const e of doc.entries) {
    const who = `${e.component}${e.id === '' ? '' : ` ${e.id}`}`;
    lines.push(`  [${MARK[e.status]}] ${who}: ${e.check}${e.code === undefined ? '' : ` (${e.code})`}`);
    lines.push(`         seen:     ${e.seen}`);
    lines.push(`         expected: ${e.expected}`);
  }
  const failed = failedChecks(doc.entries);
  lines.push(
    failed.length === 0
      ? `${doc.entries.length} checks, all passed`
      : `${failed.length} of ${doc.entries.length} checks failed: ${failed.map((f) => `${f.component}.${f.check}`).join(', ')}`,
  );
  return `${lines.join('\n')}\n`;
}
