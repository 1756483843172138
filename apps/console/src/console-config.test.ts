import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConsoleLink } from './console-config.js';

/** What `tresor up` prints: base64url (no padding) of the policy's JSON. */
const link = (policy: unknown, aud?: string): string =>
  `#policy=${Buffer.from(JSON.stringify(policy)).toString('base64url')}${aud === undefined ? '' : `&aud=${encodeURIComponent(aud)}`}`;

const POLICY = { version: 1, trustServiceKeys: [{ jwk: { kty: 'EC', crv: 'P-256', x: 'é', y: 'y' } }] };

describe('parseConsoleLink', () => {
  it('reads the policy and the admin audience from the fragment', () => {
    expect(parseConsoleLink(link(POLICY, 'tresor-local-gateway'))).toEqual({
      policy: POLICY,
      adminAudience: 'tresor-local-gateway',
    });
  });

  it('reads nothing from an empty fragment', () => {
    expect(parseConsoleLink('')).toEqual({});
    expect(parseConsoleLink('#')).toEqual({});
  });

  it('round-trips any JSON object (property)', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (policy) => {
        expect(parseConsoleLink(link(policy)).policy).toEqual(JSON.parse(JSON.stringify(policy)));
      }),
      { seed: 7, numRuns: 200 },
    );
  });

  it.each([
    ['not base64url', '#policy=a+b/c'],
    ['not JSON', `#policy=${Buffer.from('{nope').toString('base64url')}`],
    ['not UTF-8', `#policy=${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}`],
    ['an array', link([1, 2])],
    ['a string', link('policy')],
    ['null', link(null)],
    ['too long', `#policy=${'A'.repeat(20_000)}`],
    ['an empty audience', `${link(POLICY)}&aud=`],
    ['an audience that is too long', `${link(POLICY)}&aud=${'a'.repeat(201)}`],
  ])('refuses %s', (_what, fragment) => {
    expect(() => parseConsoleLink(fragment)).toThrow(/link/);
  });
});
