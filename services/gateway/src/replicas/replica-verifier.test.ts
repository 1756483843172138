import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createSampleEvidenceAsync,
  parseHardwareEntries,
  parseReferenceValueSet,
  SampleSigningKey,
  type ReferenceValues,
  type ResidencyInventory,
} from '@tresor/attestation';
import {
  bytesToBase64,
  bytesToBase64Url,
  createGatewayKey,
  encodeKeyConfig,
  HpkeKeyPair,
  runtimeDataHash,
} from '@tresor/crypto';
import { isTresorError, type ComponentEvidence, type RuntimeData } from '@tresor/protocol';
import { PolicyReplicaVerifier, type ReplicaExpectations } from './replica-verifier.js';

const MEASUREMENT = 'ab'.repeat(48);
const NONCE = 'cd'.repeat(32);
const TLS = 'ef'.repeat(32);
const NOW = new Date('2026-12-01T12:00:00Z');

let sampleKey: SampleSigningKey;
let hpkeKeyConfig: string;
let referenceValues: ReferenceValues;
let inventory: ResidencyInventory;

interface EvidenceOptions {
  readonly runtimeData?: Partial<RuntimeData>;
  readonly measurement?: string;
  readonly signingKey?: SampleSigningKey;
  readonly producedAt?: Date;
  readonly tamperReportData?: boolean;
  readonly component?: 'gateway' | 'serving';
  readonly withoutReceiptKey?: boolean;
}

async function evidenceFor(options: EvidenceOptions = {}): Promise<ComponentEvidence> {
  const full: RuntimeData = {
    version: 1,
    component: 'serving',
    nonce: NONCE,
    hpkeKeyConfig,
    tlsSpkiSha256: TLS,
    models: [{ id: 'tiny', sha256: '01'.repeat(32) }],
    receiptKey: { kty: 'OKP', crv: 'Ed25519', x: bytesToBase64Url(new Uint8Array(32).fill(7)) },
    ...options.runtimeData,
  };
  const { receiptKey: _omitted, ...withoutKey } = full;
  const runtimeData: RuntimeData = options.withoutReceiptKey === true ? withoutKey : full;
  const reportData = await runtimeDataHash(runtimeData);
  if (options.tamperReportData === true) reportData[0] = (reportData[0] ?? 0) ^ 1;
  const evidence = await createSampleEvidenceAsync({
    reportData,
    svn: 1,
    signingKey: options.signingKey ?? sampleKey,
    measurement: Buffer.from(options.measurement ?? MEASUREMENT, 'hex'),
  });
  return {
    component: options.component ?? 'serving',
    id: 'serving-0',
    tee: 'sample',
    evidence: bytesToBase64(evidence),
    runtimeData,
    producedAt: (options.producedAt ?? NOW).toISOString(),
  };
}

function expectations(overrides: Partial<ReplicaExpectations> = {}): ReplicaExpectations {
  return {
    nonce: NONCE,
    peerTlsSpkiSha256: TLS,
    now: NOW,
    referenceValues,
    inventory,
    maxAgeMs: 300_000,
    ...overrides,
  };
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (isTresorError(err)) return err.code;
    throw err;
  }
  throw new Error('expected a refusal');
}

beforeAll(async () => {
  sampleKey = SampleSigningKey.generate();
  hpkeKeyConfig = bytesToBase64Url(encodeKeyConfig(createGatewayKey(3, await HpkeKeyPair.generate()).config));
  referenceValues = {
    referenceValues: [
      parseReferenceValueSet({
        component: 'serving',
        release: '1.0.0',
        tee: 'sample',
        measurements: { measurement: [MEASUREMENT] },
      }),
    ],
  };
  inventory = {
    hardware: parseHardwareEntries([
      { id: sampleKey.verifyKey.hex, kind: 'sample-machine', jurisdiction: 'CH' },
    ]),
  };
});

describe('PolicyReplicaVerifier (the SDK verifier behind the gateway)', () => {
  const local = (): PolicyReplicaVerifier =>
    new PolicyReplicaVerifier({ sampleVerifyKey: sampleKey.verifyKey, maxEvidenceAgeSeconds: 300 });

  it('accepts a released, resident, fresh sample replica and returns what routing needs', async () => {
    const verified = await local().verify(await evidenceFor(), expectations());
    expect(verified.id).toBe('serving-0');
    expect(verified.tee).toBe('sample');
    expect(verified.models).toEqual(['tiny']);
    expect(verified.hpkeKeyConfig.keyId).toBe(3);
    expect(verified.tlsSpkiSha256).toBe(TLS);
    expect(verified.producedAt.getTime()).toBe(NOW.getTime());
  });

  it('holds replicas to the same policy a client would: sample only with a key, any signed release', () => {
    const policy = local().policy;
    expect(policy.allowSampleTee).toBe(true);
    expect(policy.trustSignedReferenceValues).toBe(true);
    expect(policy.jurisdictions).toEqual(['CH']);
    const production = new PolicyReplicaVerifier({ maxEvidenceAgeSeconds: 300 }).policy;
    expect(production.allowSampleTee).toBe(false);
    expect(production.sampleVerifyKeys).toEqual([]);
  });

  it('refuses sample evidence without a sample key (production)', async () => {
    const verifier = new PolicyReplicaVerifier({ maxEvidenceAgeSeconds: 300 });
    expect(await refusal(verifier.verify(await evidenceFor(), expectations()))).toBe(
      'SAMPLE_TEE_NOT_ALLOWED',
    );
  });

  it('refuses evidence signed by another installation key', async () => {
    const other = SampleSigningKey.generate();
    expect(await refusal(local().verify(await evidenceFor({ signingKey: other }), expectations()))).toBe(
      'ATTESTATION_SIGNATURE_INVALID',
    );
  });

  it('refuses a nonce other than the one sent', async () => {
    const code = await refusal(local().verify(await evidenceFor(), expectations({ nonce: '11'.repeat(32) })));
    expect(code).toBe('EVIDENCE_STALE');
  });

  it('refuses an mTLS key other than the bound one', async () => {
    const code = await refusal(
      local().verify(await evidenceFor(), expectations({ peerTlsSpkiSha256: '22'.repeat(32) })),
    );
    expect(code).toBe('TLS_KEY_MISMATCH');
  });

  it('refuses report data that is not the hash of the runtime data', async () => {
    const code = await refusal(local().verify(await evidenceFor({ tamperReportData: true }), expectations()));
    expect(code).toBe('REPORT_DATA_MISMATCH');
  });

  it('refuses a measurement the signed reference values do not release', async () => {
    const code = await refusal(
      local().verify(await evidenceFor({ measurement: '99'.repeat(48) }), expectations()),
    );
    expect(code).toBe('MEASUREMENT_NOT_ALLOWED');
  });

  it('refuses hardware outside the residency inventory or the jurisdiction', async () => {
    const empty = await refusal(
      local().verify(await evidenceFor(), expectations({ inventory: { hardware: [] } })),
    );
    expect(empty).toBe('RESIDENCY_VIOLATION');
    const elsewhere = await refusal(
      local().verify(await evidenceFor(), expectations({ jurisdiction: 'DE' })),
    );
    expect(elsewhere).toBe('RESIDENCY_VIOLATION');
  });

  it('refuses stale evidence', async () => {
    const old = new Date(NOW.getTime() - 3_600_000);
    expect(await refusal(local().verify(await evidenceFor({ producedAt: old }), expectations()))).toBe(
      'EVIDENCE_STALE',
    );
  });

  it('refuses evidence without a receipt key, or of a gateway', async () => {
    const withoutKey = await evidenceFor({ withoutReceiptKey: true });
    expect(await refusal(local().verify(withoutKey, expectations()))).toBe('RECEIPT_INVALID');
    const gateway = await evidenceFor({ component: 'gateway', runtimeData: { component: 'gateway' } });
    expect(await refusal(local().verify(gateway, expectations()))).toBe('VERIFICATION_FAILED');
  });

  it('refuses malformed evidence at the edge, naming where', async () => {
    for (const bad of [
      null,
      {},
      { ...(await evidenceFor()), tee: 'sgx' },
      { ...(await evidenceFor()), extra: 1 },
    ]) {
      expect(await refusal(local().verify(bad, expectations()))).toBe('ATTESTATION_EVIDENCE_MALFORMED');
    }
  });

  it('refuses when fresh randomness is bound as the HPKE key instead of a key configuration', async () => {
    const code = await refusal(
      local().verify(
        await evidenceFor({ runtimeData: { hpkeKeyConfig: bytesToBase64Url(randomBytes(5)) } }),
        expectations(),
      ),
    );
    expect(code).toBe('OHTTP_KEY_CONFIG_MALFORMED');
  });
});
