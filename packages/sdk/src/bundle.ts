import { z } from 'zod';
import {
  ATTESTATION_BUNDLE_VERSION,
  TresorError,
  type AttestationBundle,
  type ComponentEvidence,
} from '@tresor/protocol';
import { schemaProblem, type ReferenceValueSet, type VerifierSet } from '@tresor/attestation';
import type { JSONWebKeySet } from 'jose';
import { verifyComponentEvidence, type ComponentIdentity } from './component-evidence.js';
import type { TresorPolicy } from './policy.js';
import { verifyTrustDocuments } from './trust-documents.js';
import type { CheckName, VerificationCheck } from './verification-document.js';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/, '64 lowercase hex digits');
const b64 = z
  .string()
  .max(4 * 1024 * 1024)
  .regex(/^[A-Za-z0-9+/_-]*={0,2}$/, 'base64');

const runtimeDataSchema = z.strictObject({
  version: z.number().int(),
  component: z.enum(['gateway', 'serving']),
  nonce: z.string().max(256),
  hpkeKeyConfig: b64,
  tlsSpkiSha256: hex64,
  gpuEvidenceSha256: hex64.optional(),
  models: z
    .array(z.strictObject({ id: z.string().min(1).max(256), sha256: hex64 }))
    .max(256)
    .optional(),
  receiptKey: z
    .strictObject({
      kty: z.literal('OKP'),
      crv: z.literal('Ed25519'),
      x: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
    })
    .optional(),
});

const componentSchema = z.strictObject({
  component: z.enum(['gateway', 'serving']),
  id: z.string().min(1).max(128),
  tee: z.enum(['snp', 'tdx', 'sample']),
  evidence: b64,
  runtimeData: runtimeDataSchema,
  gpu: z.strictObject({ evidence: b64 }).optional(),
  producedAt: z.string().max(64),
});

const bundleSchema = z.strictObject({
  version: z.literal(ATTESTATION_BUNDLE_VERSION),
  nonce: z.string().max(256),
  gateway: componentSchema,
  serving: z.array(componentSchema).max(256),
  referenceValues: z.string().max(1024 * 1024),
  residencyInventory: z.string().max(1024 * 1024),
  trustUrl: z.url().optional(),
});

/** Parses an attestation bundle (JSON value). Throws VERIFICATION_FAILED naming the bad member. */
export function parseAttestationBundle(value: unknown): AttestationBundle {
  const parsed = bundleSchema.safeParse(value);
  if (!parsed.success) {
    throw new TresorError(
      'VERIFICATION_FAILED',
      `the attestation bundle is malformed: ${schemaProblem(parsed.error)}`,
    );
  }
  // Optional members are omitted, never undefined, as the protocol types say.
  return JSON.parse(JSON.stringify(parsed.data)) as AttestationBundle;
}

export interface BundleExpectations {
  readonly policy: TresorPolicy;
  readonly nonce: string;
  readonly now: Date;
  /** Pinned document keys (see pinnedDocumentKeys). */
  readonly documentKeys: JSONWebKeySet;
  /** The gateway's TLS SPKI SHA-256 as this client saw it; undefined where not observable. */
  readonly gatewayTlsSpkiSha256?: string;
  readonly tlsNotObservableReason?: string;
  readonly verifiers?: VerifierSet;
}

export interface BundleVerification {
  readonly ok: boolean;
  readonly insecure: boolean;
  readonly entries: readonly VerificationCheck[];
  readonly gateway: ComponentIdentity;
  readonly serving: readonly ComponentIdentity[];
  /** When the oldest evidence stops being fresh enough to reuse. */
  readonly expiresAt: Date;
  /**
   * The release sets of the signed reference values, once their signature verified against a
   * pinned key (empty otherwise): e.g. the web console compares its page hash with them.
   */
  readonly referenceValues: readonly ReferenceValueSet[];
}

/**
 * Verifies a whole bundle: the nonce, both signed trust documents, the gateway's evidence and
 * every serving replica's. Every check becomes an entry; nothing is skipped after a failure, so
 * the document shows the whole picture.
 */
export async function verifyAttestationBundle(
  bundle: AttestationBundle,
  expectations: BundleExpectations,
): Promise<BundleVerification> {
  const { policy, nonce, now } = expectations;
  const entries: VerificationCheck[] = [];
  const add = (
    check: CheckName,
    ok: boolean,
    seen: string,
    expected: string,
    code: VerificationCheck['code'],
    id = '',
  ): void => {
    entries.push({
      component: 'trust',
      id,
      check,
      status: ok ? 'pass' : 'fail',
      seen,
      expected,
      ...(ok || code === undefined ? {} : { code }),
    });
  };
  entries.push({
    component: 'gateway',
    id: bundle.gateway.id,
    check: 'bundle_nonce',
    status: bundle.nonce === nonce ? 'pass' : 'fail',
    seen: bundle.nonce,
    expected: `${nonce} (the nonce this client sent)`,
    ...(bundle.nonce === nonce ? {} : { code: 'EVIDENCE_STALE' as const }),
  });

  const docs = await verifyTrustDocuments(
    bundle.referenceValues,
    bundle.residencyInventory,
    expectations.documentKeys,
    policy.trustIssuer,
  );
  const pinnedKeys = `signed (ES256) by a pinned trust-service key (${expectations.documentKeys.keys.length} pinned)${policy.trustIssuer === undefined ? '' : `, issuer ${policy.trustIssuer}`}`;
  const rv = docs.referenceValues;
  add(
    'reference_values_signature',
    !(rv instanceof TresorError),
    rv instanceof TresorError
      ? rv.message
      : `version ${rv.version} by ${rv.issuer} (key ${rv.keyId}), ${rv.body.referenceValues.length} release sets`,
    pinnedKeys,
    rv instanceof TresorError ? rv.code : undefined,
    rv instanceof TresorError ? '' : rv.issuer,
  );
  const inv = docs.inventory;
  add(
    'residency_inventory_signature',
    !(inv instanceof TresorError),
    inv instanceof TresorError
      ? inv.message
      : `version ${inv.version} by ${inv.issuer} (key ${inv.keyId}), ${inv.body.hardware.length} machines`,
    pinnedKeys,
    inv instanceof TresorError ? inv.code : undefined,
    inv instanceof TresorError ? '' : inv.issuer,
  );
  // Unverified documents count as empty: nothing matches them, so every component fails closed.
  const referenceValues = rv instanceof TresorError ? { referenceValues: [] } : rv.body;
  const inventory = inv instanceof TresorError ? { hardware: [] } : inv.body;

  const common = {
    policy,
    nonce,
    now,
    referenceValues,
    inventory,
    ...(expectations.verifiers === undefined ? {} : { verifiers: expectations.verifiers }),
  };
  const gateway = await verifyComponentEvidence(bundle.gateway, {
    ...common,
    component: 'gateway',
    ...(expectations.gatewayTlsSpkiSha256 === undefined
      ? { tlsNotObservableReason: expectations.tlsNotObservableReason ?? 'not observable from this client' }
      : { tlsSpkiSha256: expectations.gatewayTlsSpkiSha256 }),
  });
  entries.push(...gateway.checks);
  const serving = [];
  const ids = new Set<string>();
  for (const replica of bundle.serving) {
    const verified = await verifyComponentEvidence(replica, {
      ...common,
      component: 'serving',
      tlsNotObservableReason: 'the gateway-to-serving mesh connection (mTLS, checked by the gateway)',
    });
    entries.push(...verified.checks);
    if (ids.has(replica.id)) {
      entries.push({
        component: 'serving',
        id: replica.id,
        check: 'component',
        status: 'fail',
        seen: 'replica id listed twice',
        expected: 'one entry per replica',
        code: 'VERIFICATION_FAILED',
      });
    }
    ids.add(replica.id);
    serving.push(verified.identity);
  }
  const times = [bundle.gateway, ...bundle.serving].map((c: ComponentEvidence) => Date.parse(c.producedAt));
  const oldest = Math.min(...times.map((t) => (Number.isNaN(t) ? now.getTime() : t)));
  return {
    ok: entries.every((e) => e.status !== 'fail'),
    insecure: [gateway.identity, ...serving].some((c) => c.insecure),
    entries,
    gateway: gateway.identity,
    serving,
    expiresAt: new Date(Math.min(oldest, now.getTime()) + policy.maxEvidenceAgeSeconds * 1000),
    referenceValues: referenceValues.referenceValues,
  };
}
