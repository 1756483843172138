import { afterAll, describe, expect, it } from 'vitest';
import { observe, type Attack, type Control, type Observed } from './negative-matrix/attack.js';
import { matrixEnv } from './negative-matrix/env.js';
import { attestationAttacks, attestationControls } from './negative-matrix/rows-attestation.js';
import {
  ohttpAttacks,
  ohttpControls,
  sealedModelAttacks,
  sealedModelControls,
} from './negative-matrix/rows-crypto.js';
import { clientAttacks, clientControls } from './negative-matrix/rows-client.js';
import { gatewayAttacks, gatewayControls } from './negative-matrix/rows-gateway.js';
import { servingAttacks, servingControls } from './negative-matrix/rows-serving.js';
import {
  adminAttacks,
  adminControls,
  keyReleaseAttacks,
  keyReleaseControls,
} from './negative-matrix/rows-trust.js';

/**
 * The negative matrix (issue #13): every attack and misconfiguration, the component that must
 * refuse it, and the catalogue code it must be refused with, run against real components (recorded
 * hardware evidence, a trust service on loopback TLS, real sealed models and OHTTP messages).
 * Controls run first: the unattacked path is accepted, so each refusal comes from its attack.
 */

const ATTACKS: readonly Attack[] = [
  ...attestationAttacks,
  ...keyReleaseAttacks,
  ...adminAttacks,
  ...sealedModelAttacks,
  ...ohttpAttacks,
  ...gatewayAttacks,
  ...servingAttacks,
  ...clientAttacks,
];
const CONTROLS: readonly Control[] = [
  ...attestationControls,
  ...keyReleaseControls,
  ...adminControls,
  ...sealedModelControls,
  ...ohttpControls,
  ...gatewayControls,
  ...servingControls,
  ...clientControls,
];

const env = matrixEnv();
const outcomes: { row: Attack; observed: Observed }[] = [];

afterAll(async () => {
  await env.close();
  const refused = outcomes.filter((o) => o.observed === o.row.expect).length;
  const byComponent = new Map<string, { tried: number; refused: number }>();
  for (const o of outcomes) {
    const c = byComponent.get(o.row.component) ?? { tried: 0, refused: 0 };
    c.tried++;
    if (o.observed === o.row.expect) c.refused++;
    byComponent.set(o.row.component, c);
  }
  const lines = outcomes.map(
    (o) =>
      `${o.observed === o.row.expect ? 'refused ' : 'MISMATCH'}  ${o.row.component.padEnd(21)} ${o.row.expect.padEnd(34)} ${o.row.attack}${o.observed === o.row.expect ? '' : `  (got ${o.observed})`}`,
  );
  const perComponent = [...byComponent.entries()].map(
    ([component, c]) =>
      `  ${component.padEnd(21)} ${c.tried} tried, ${c.refused} refused with the expected code`,
  );
  console.log(
    [
      '',
      'Negative matrix',
      ...lines,
      '',
      ...perComponent,
      `${outcomes.length} attacks tried, ${refused} refused with the expected code`,
    ].join('\n'),
  );
});

describe('negative matrix', () => {
  it.each(CONTROLS.map((c) => [`${c.component}: ${c.what}`, c] as const))(
    'control — %s — is accepted',
    async (_name, control) => {
      expect(await observe(() => control.run(env))).toBe('ACCEPTED');
    },
  );

  it.each(ATTACKS.map((a) => [`${a.component}: ${a.attack}`, a] as const))('%s', async (_name, row) => {
    const observed = await observe(() => row.run(env));
    outcomes.push({ row, observed });
    expect(observed).toBe(row.expect);
  });

  it('lists every row once, each with a catalogue code', () => {
    const names = ATTACKS.map((a) => `${a.component}: ${a.attack}`);
    expect(new Set(names).size).toBe(names.length);
    expect(ATTACKS.length).toBeGreaterThanOrEqual(140);
  });
});
