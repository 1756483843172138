import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readTestdataJson } from '../../../../../test/support/testdata.js';
import type { DcapQvlCollateral } from '../../../../../test/support/fake-collateral-services.js';
import { rawJsonMember } from './raw-json-member.js';

const collateral = readTestdataJson(
  'attestation/tdx/dcap-qvl-v4-uptodate/collateral.json',
) as DcapQvlCollateral;

describe('rawJsonMember', () => {
  it('cuts the signed tcbInfo text out of a PCS-shaped response byte for byte', () => {
    const body = `{"tcbInfo":${collateral.tcb_info},"signature":"${collateral.tcb_info_signature}"}`;
    expect(rawJsonMember(body, 'tcbInfo')).toEqual({ found: true, text: collateral.tcb_info });
    const spaced = `{\n  "signature" : "${collateral.qe_identity_signature}" ,\n  "enclaveIdentity"\t:\r\n${collateral.qe_identity}\n}`;
    expect(rawJsonMember(spaced, 'enclaveIdentity')).toEqual({ found: true, text: collateral.qe_identity });
  });

  it('keeps the spelling a re-serialisation would change (escapes, number forms, key order)', () => {
    const value = '{"z":1.50,"a":"\\u00e9\\/","n":1e2,"s":"}]\\"{["}';
    expect(rawJsonMember(`{"x":${value}}`, 'x')).toEqual({ found: true, text: value });
    expect(JSON.stringify(JSON.parse(value))).not.toBe(value);
  });

  it('matches member names after unescaping, like JSON.parse', () => {
    expect(rawJsonMember('{"tcb\\u0049nfo":[1, 2]}', 'tcbInfo')).toEqual({ found: true, text: '[1, 2]' });
  });

  it('refuses what is not one JSON object with exactly one such member', () => {
    expect(rawJsonMember('<html>', 'tcbInfo')).toEqual({ found: false, problem: 'the response is not JSON' });
    expect(rawJsonMember('[{"tcbInfo":1}]', 'tcbInfo')).toEqual({
      found: false,
      problem: 'the response is not a JSON object',
    });
    expect(rawJsonMember('{"other":{"tcbInfo":1}}', 'tcbInfo')).toEqual({
      found: false,
      problem: 'the response has no "tcbInfo" member',
    });
    expect(rawJsonMember('{"tcbInfo":1,"tcbInfo":2}', 'tcbInfo')).toEqual({
      found: false,
      problem: 'the response has more than one "tcbInfo" member',
    });
  });

  it('returns exactly the value text, however the document around it is formatted', () => {
    const space = fc.stringMatching(/^[ \t\n\r]{0,3}$/);
    const member = fc.tuple(
      fc.string({ maxLength: 8 }),
      fc.jsonValue({ maxDepth: 3 }),
      fc.integer({ min: 0, max: 2 }),
    );
    fc.assert(
      fc.property(
        fc.array(member, { maxLength: 5 }),
        fc.jsonValue({ maxDepth: 4 }),
        fc.nat(),
        space,
        space,
        (others, target, at, s1, s2) => {
          const entries = others
            .filter(([name]) => name !== 'target')
            .map(
              ([name, value, indent]) =>
                `${JSON.stringify(name)}${s1}:${s2}${JSON.stringify(value, null, indent)}`,
            );
          const targetText = JSON.stringify(target, null, at % 3);
          entries.splice(at % (entries.length + 1), 0, `"target"${s2}:${s1}${targetText}`);
          const document = `${s1}{${s2}${entries.join(`${s1},${s2}`)}${s1}}${s2}`;
          expect(rawJsonMember(document, 'target')).toEqual({ found: true, text: targetText });
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('never throws on arbitrary input', () => {
    const jsonish = fc.oneof(
      fc.string(),
      fc.json().map((j) => j.slice(0, Math.max(0, j.length - 1))),
      fc.json().map((j) => `{"tcbInfo":${j}}`),
    );
    fc.assert(
      fc.property(jsonish, (text) => {
        const result = rawJsonMember(text, 'tcbInfo');
        if (result.found)
          expect(JSON.parse(result.text)).toEqual((JSON.parse(text) as { tcbInfo: unknown }).tcbInfo);
      }),
      { numRuns: 10_000 },
    );
  });
});
