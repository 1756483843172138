import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTrustFixture, type TrustFixture } from '../../../../test/support/trust-fixture.js';
import { sampleAttester } from './attester.js';

const FLOWS = 200;
const initData = (tenant: string): string =>
  `algorithm = "sha384"\nversion = "0.1.0"\n\n[data]\ntresor-tenant = "${tenant}"\n`;
const secretOf = (i: number): string => `secret-of-tenant-${i}-${'x'.repeat(i % 7)}`;

describe('200 parallel RCAR flows on loopback TLS', () => {
  let fx: TrustFixture;

  beforeAll(async () => {
    const resources: Record<string, Uint8Array> = {};
    for (let i = 0; i < FLOWS; i++) resources[`t${i}/key/model`] = new TextEncoder().encode(secretOf(i));
    fx = await startTrustFixture({
      resources,
      // Each workload may read only its own tenant's resources: the tenant comes from attested init data.
      config: {
        resourcePolicy:
          'permit(principal, action, resource) when { principal has tenant && principal.tenant == resource.repository };',
      },
    });
  });
  afterAll(async () => {
    await fx.close();
  });

  it('all succeed, and each workload receives only its own secret, encrypted to its own key', async () => {
    const clients = Array.from({ length: FLOWS }, (_, i) =>
      fx.client(sampleAttester({ signingKey: fx.sampleKey, initData: initData(`t${i}`) })),
    );
    const started = performance.now();
    const secrets = await Promise.all(
      clients.map((client, i) => client.getResource(`kbs:///t${i}/key/model`)),
    );
    const seconds = (performance.now() - started) / 1000;
    secrets.forEach((secret, i) => {
      expect(new TextDecoder().decode(secret)).toBe(secretOf(i));
    });
    const tokens = new Set(clients.map((c) => c.token));
    expect(tokens.size).toBe(FLOWS);
    expect(
      fx.audit.filter((e) => e.action === 'kbs.resource.release' && e.outcome === 'success'),
    ).toHaveLength(FLOWS);
    console.log(
      `${FLOWS} parallel key releases in ${seconds.toFixed(2)} s (${(FLOWS / seconds).toFixed(0)}/s)`,
    );
  });

  it("refuses a workload another tenant's secret", async () => {
    const client = fx.client(sampleAttester({ signingKey: fx.sampleKey, initData: initData('t0') }));
    await expect(client.getResource('kbs:///t1/key/model')).rejects.toMatchObject({ code: 'POLICY_DENIED' });
  });
});
