import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { CheckName, VerificationCheck, VerificationDocument } from '@tresor/sdk';
import {
  GATEWAY_URL,
  createSampleGateway,
  type SampleGatewayOptions,
} from '../../../../test/support/sdk-sample-gateway.js';
import { openSession } from '../chat/gateway-session.js';
import { buildTrustView, checkLabel, evidenceAgeSeconds } from './trust-view.js';

async function session(options: SampleGatewayOptions = {}) {
  const gateway = await createSampleGateway(options);
  const state = await openSession(GATEWAY_URL, gateway.policy, gateway.fetch);
  return { gateway, state };
}

describe('trust view of a real verification (sample-TEE gateway, sdk in this process)', () => {
  it('shows every component passing, the GPU as its own component, and the sample-TEE banner', async () => {
    const { state } = await session();
    const view = state.view;
    expect(view.ok).toBe(true);
    expect(view.sampleTee).toBe(true);
    expect(view.failed).toEqual([]);
    expect(view.groups.map((g) => g.kind)).toEqual(['gateway', 'trust', 'serving', 'gpu']);
    expect(view.groups.every((g) => g.status === 'pass')).toBe(true);
    const gateway = view.groups.find((g) => g.kind === 'gateway')!;
    expect(gateway.tee).toBe('sample');
    expect(gateway.rows.map((r) => r.check)).toEqual(
      expect.arrayContaining([
        'sample_tee',
        'measurement',
        'tcb',
        'debug_off',
        'report_data',
        'residency',
        'freshness',
      ]),
    );
    expect(gateway.claims).toMatchObject({ tee: 'sample', releases: ['gateway@1.0.0'] });
    // A browser cannot see TLS certificates: shown as not observable, never as passed.
    expect(view.counts.notObservable).toBeGreaterThan(0);
    expect(view.headline).toMatch(/^Verified: \d+ checks passed, \d+ not observable from a browser$/);
    expect(state.client).not.toBeNull();
  });

  it('a chip outside the allowed jurisdictions: red, names residency, opens no client and sends nothing', async () => {
    const { gateway, state } = await session({ machineJurisdiction: 'DE' });
    expect(state.view.ok).toBe(false);
    expect(state.client).toBeNull();
    expect(state.view.failed.map((f) => f.check)).toContain('residency');
    expect(state.view.headline).toMatch(/^Not verified: .*Residency/);
    expect(gateway.calls.filter((c) => c.includes('/v1/ohttp'))).toEqual([]);
  });

  it('a measurement nobody released: fails the measurement check with its code', async () => {
    const { state } = await session({ gatewayMeasurement: new Uint8Array(48).fill(0x99) });
    const failed = state.view.failed.find((f) => f.check === 'measurement');
    expect(failed?.code).toBe('MEASUREMENT_NOT_ALLOWED');
    expect(failed?.group).toMatch(/^Gateway /);
    expect(state.client).toBeNull();
  });

  it('runtime data changed in transit: the key binding (report data) fails', async () => {
    const { state } = await session({
      bundle: (b) => {
        b.gateway.runtimeData.tlsSpkiSha256 = '00'.repeat(32);
      },
    });
    expect(state.view.failed.map((f) => f.check)).toContain('report_data');
    expect(state.view.groups.find((g) => g.kind === 'gateway')?.status).toBe('fail');
    expect(state.client).toBeNull();
  });

  it('trust documents signed by an unpinned key: the trust group fails, so does every component', async () => {
    const { state } = await session({ signDocumentsWithUnpinnedKey: true });
    const trust = state.view.groups.find((g) => g.kind === 'trust');
    expect(trust?.status).toBe('fail');
    expect(state.view.groups.filter((g) => g.status === 'fail').length).toBeGreaterThan(1);
  });
});

const CHECKS: CheckName[] = [
  'bundle_nonce',
  'component',
  'evidence_signature',
  'sample_tee',
  'debug_off',
  'tcb',
  'report_data',
  'nonce',
  'tls_key',
  'hpke_key',
  'measurement',
  'models',
  'gpu',
  'residency',
  'freshness',
  'receipt_key',
];

const entry = fc.record({
  component: fc.constantFrom('gateway', 'serving', 'trust'),
  id: fc.constantFrom('', 'a', 'b'),
  check: fc.constantFrom(...CHECKS),
  status: fc.constantFrom('pass' as const, 'fail' as const, 'not-observable' as const),
  seen: fc.string(),
  expected: fc.string(),
});

function doc(entries: VerificationCheck[], ok: boolean, insecure = false): VerificationDocument {
  return { version: 1, gatewayUrl: GATEWAY_URL, time: '2026-01-01T00:00:00.000Z', insecure, ok, entries };
}

describe('trust view: properties', () => {
  it('counts every entry once, and is ok exactly when nothing failed', () => {
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 40 }), (entries) => {
        const anyFail = entries.some((e) => e.status === 'fail');
        const view = buildTrustView(doc(entries, !anyFail));
        const { pass, fail, notObservable } = view.counts;
        expect(pass + fail + notObservable).toBe(entries.length);
        expect(view.ok).toBe(!anyFail && entries.length > 0);
        expect(view.failed.length).toBe(fail);
        expect(new Set(view.groups.map((g) => g.key)).size).toBe(view.groups.length);
        for (const g of view.groups)
          expect(g.status === 'fail').toBe(g.rows.some((r) => r.status === 'fail'));
      }),
    );
  });

  it('never reports ok when the document itself says not ok, even with no failed entry', () => {
    fc.assert(
      fc.property(
        fc.array(
          entry.filter((e) => e.status !== 'fail'),
          { minLength: 1, maxLength: 10 },
        ),
        (entries) => {
          expect(buildTrustView(doc(entries, false)).ok).toBe(false);
        },
      ),
    );
  });

  it('an empty document is not verified', () => {
    const view = buildTrustView(doc([], true));
    expect(view.ok).toBe(false);
    expect(view.headline).toMatch(/no checks/);
  });

  it('shows the sample-TEE banner when the document says insecure, or any component is a sample TEE', () => {
    expect(buildTrustView(doc([], true, true)).sampleTee).toBe(true);
    expect(buildTrustView(doc([], true, false)).sampleTee).toBe(false);
  });

  it('labels every check in words', () => {
    for (const c of [...CHECKS, 'reference_values_signature', 'residency_inventory_signature'] as CheckName[])
      expect(checkLabel(c)).toMatch(/^[A-Z]/);
  });
});

describe('evidenceAgeSeconds', () => {
  it('is the difference between production and check time', () => {
    expect(evidenceAgeSeconds('produced at 2026-01-01T00:00:00.000Z', '2026-01-01T00:00:42.400Z')).toBe(42);
  });
  it('is undefined without a readable production time', () => {
    expect(evidenceAgeSeconds('age 3 s', '2026-01-01T00:00:00Z')).toBeUndefined();
    expect(evidenceAgeSeconds('produced at yesterday', '2026-01-01T00:00:00Z')).toBeUndefined();
    expect(evidenceAgeSeconds('produced at 2026-01-01T00:00:00Z', 'now')).toBeUndefined();
  });
  it('never goes negative for evidence stamped slightly in the future', () => {
    expect(evidenceAgeSeconds('produced at 2026-01-01T00:00:05Z', '2026-01-01T00:00:00Z')).toBe(0);
  });
});
