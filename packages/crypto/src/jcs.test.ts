import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readTestdataJson, readTestdataText } from '../../../test/support/testdata.js';
import { bytesToHex, hexToBytes, utf8Encode } from './bytes.js';
import { canonicalJson, REPORT_DATA_LENGTH, reportDataMatches, runtimeDataHash } from './jcs.js';

const JCS_FILES = ['arrays', 'french', 'structures', 'unicode', 'values', 'weird'];

/** Matches a JCS_VALUE_INVALID TresorError (vitest types asymmetric matchers as any). */
const invalid = (pattern: RegExp): Error =>
  expect.objectContaining({
    code: 'JCS_VALUE_INVALID',
    message: expect.stringMatching(pattern) as unknown,
  }) as Error;

describe('RFC 8785 canonical JSON (cyberphone/json-canonicalization test data)', () => {
  it.each(JCS_FILES)('%s.json canonicalises to output/ byte for byte and to outhex/', (name) => {
    const input: unknown = JSON.parse(readTestdataText(`protocol/jcs/input/${name}.json`));
    const expected = readTestdataText(`protocol/jcs/output/${name}.json`);
    const expectedHex = readTestdataText(`protocol/jcs/outhex/${name}.txt`).replace(/\s+/g, '');
    const text = canonicalJson(input);
    expect(text).toBe(expected);
    expect(bytesToHex(utf8Encode(text))).toBe(expectedHex);
  });

  it('serialises all 10,000 ES6 number vectors like ECMAScript (RFC 8785 §3.2.2.3)', () => {
    const lines = readTestdataText('protocol/jcs/es6-numbers-10000.csv')
      .split('\n')
      .filter((l) => l !== '');
    expect(lines).toHaveLength(10_000);
    const view = new DataView(new ArrayBuffer(8));
    let checked = 0;
    for (const line of lines) {
      const [bits, expected] = line.split(',');
      view.setBigUint64(0, BigInt(`0x${bits!.padStart(16, '0')}`));
      const value = view.getFloat64(0);
      if (!Number.isFinite(value)) {
        // The file lists no NaN or Infinity lines, but if it did, JCS must refuse them.
        expect(() => canonicalJson(value)).toThrow(invalid(/NaN or Infinity/));
        continue;
      }
      expect(canonicalJson(value)).toBe(expected);
      checked++;
    }
    expect(checked).toBe(10_000);
  });

  it('sorts members by UTF-16 code units, not code points (RFC 8785 §3.2.3)', () => {
    // U+1F600 is the surrogate pair D83D DE00, which sorts before U+FB33 in UTF-16 order.
    expect(canonicalJson({ '\ufb33': 3, '\u{1f600}': 2, '\u20ac': 1 })).toBe(
      '{"\u20ac":1,"\u{1f600}":2,"\ufb33":3}',
    );
  });

  it('follows JSON.stringify for undefined members, -0, toJSON and keeps "__proto__" a member', () => {
    expect(canonicalJson({ b: undefined, a: [undefined, -0] })).toBe('{"a":[null,0]}');
    expect(canonicalJson({ at: new Date(Date.UTC(2026, 0, 2)) })).toBe('{"at":"2026-01-02T00:00:00.000Z"}');
    expect(canonicalJson(JSON.parse('{"__proto__":{"x":1},"a":2}'))).toBe('{"__proto__":{"x":1},"a":2}');
    expect(canonicalJson(Object.assign(Object.create(null) as object, { z: 1, y: 2 }))).toBe('{"y":2,"z":1}');
  });

  it('is order independent and idempotent for any JSON value (fast-check)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const text = canonicalJson(value);
        expect(canonicalJson(JSON.parse(text))).toBe(text);
        expect(text).toBe(canonicalJson(JSON.parse(JSON.stringify(reverseMembers(value)))));
      }),
      { numRuns: 1000 },
    );
  });
});

/** The same JSON value with every object's members inserted in reverse order. */
function reverseMembers(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reverseMembers);
  if (value !== null && typeof value === 'object') {
    const out = Object.create(null) as Record<string, unknown>;
    for (const [k, v] of Object.entries(value).reverse()) out[k] = reverseMembers(v);
    return out;
  }
  return value;
}

describe('canonicalJson refuses values JSON cannot carry (JCS_VALUE_INVALID)', () => {
  class Key {
    constructor(readonly x: number) {}
  }
  const circular: Record<string, unknown> = { a: 1 };
  circular.self = circular;
  let deep: unknown = 1;
  for (let i = 0; i < 300; i++) deep = [deep];

  it.each<[string, unknown, RegExp]>([
    ['NaN', Number.NaN, /\$ is NaN or Infinity/],
    ['Infinity', Number.POSITIVE_INFINITY, /NaN or Infinity/],
    ['-Infinity inside an object', { n: [1, Number.NEGATIVE_INFINITY] }, /\$\.n\[1\] is NaN or Infinity/],
    ['undefined at the top', undefined, /\$ is undefined/],
    ['a function at the top', () => 1, /function/],
    ['a function member (canonicalize would write "undefined")', { f: () => 1 }, /\$\.f is a function/],
    ['a function array element', [() => 1], /\$\[0\] is a function/],
    ['a BigInt', { n: 10n }, /BigInt/],
    ['a symbol', { s: Symbol('s') }, /symbol/],
    ['a lone surrogate in a value', { s: 'a\ud800' }, /lone UTF-16 surrogate/],
    ['a lone surrogate in a member name', { ['\udc00']: 1 }, /member name with a lone/],
    ['a circular reference', circular, /\$\.self is a circular reference/],
    ['a Map', new Map([['a', 1]]), /not a plain object/],
    ['a Set', { s: new Set([1]) }, /not a plain object/],
    ['a typed array', { key: new Uint8Array([1, 2]) }, /not a plain object/],
    ['a class instance', new Key(1), /not a plain object/],
    ['nesting deeper than 256', deep, /nested more than 256/],
    [
      'a getter that throws',
      Object.defineProperty({}, 'x', {
        enumerable: true,
        get() {
          throw new Error('boom');
        },
      }),
      /reading the value threw/,
    ],
  ])('%s', (_name, value, pattern) => {
    expect(() => canonicalJson(value)).toThrow(invalid(pattern));
  });

  it('never puts the value into the error message', () => {
    try {
      canonicalJson({ apiKey: 'sk-secret-value', bad: Number.NaN });
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).not.toContain('sk-secret-value');
    }
  });
});

describe('evidence binding: report_data = SHA-384(JCS(runtime data)) zero-padded to 64 bytes', () => {
  interface BindingVector {
    name: string;
    input: unknown;
    jcs: string;
    hash: string;
    digest: string;
    report_data_64?: string;
  }
  const { vectors } = readTestdataJson('protocol/kbs/runtime-data-binding-vectors.json') as {
    vectors: BindingVector[];
  };

  it('has both recorded vectors', () => {
    expect(vectors.map((v) => v.hash)).toEqual(['sha384', 'sha384']);
  });

  it.each(vectors.map((v) => [v.name, v] as const))('%s', async (_name, vector) => {
    expect(canonicalJson(vector.input)).toBe(vector.jcs);
    const reportData = await runtimeDataHash(vector.input);
    expect(reportData).toHaveLength(REPORT_DATA_LENGTH);
    expect(bytesToHex(reportData)).toBe(`${vector.digest}${'00'.repeat(16)}`);
    if (vector.report_data_64 !== undefined) {
      expect(bytesToHex(reportData)).toBe(vector.report_data_64);
    }
    expect(await reportDataMatches(reportData, vector.input)).toBe(true);
  });

  it('matches the real Trustee report_data and nothing else', async () => {
    const vector = vectors.find((v) => v.report_data_64 !== undefined)!;
    const reportData = hexToBytes(vector.report_data_64!);
    const input = vector.input as Record<string, unknown>;
    expect(await reportDataMatches(reportData, { ...input })).toBe(true);
    // The trap KBS.md records: hashing runtime-data as sent (without additional-evidence) fails.
    const withoutAdditional = { nonce: input.nonce, 'tee-pubkey': input['tee-pubkey'] };
    expect(await reportDataMatches(reportData, withoutAdditional)).toBe(false);
    expect(await reportDataMatches(reportData, { ...input, nonce: 'other' })).toBe(false);
    // Padding is compared too, and report data of another length never matches.
    const flippedPadding = reportData.slice();
    flippedPadding[63] = 1;
    expect(await reportDataMatches(flippedPadding, input)).toBe(false);
    expect(await reportDataMatches(reportData.subarray(0, 48), input)).toBe(false);
  });

  it('refuses runtime data that is not JSON', async () => {
    await expect(runtimeDataHash({ nonce: Number.NaN })).rejects.toThrow(invalid(/NaN/));
    await expect(reportDataMatches(new Uint8Array(64), undefined)).rejects.toThrow(invalid(/undefined/));
  });

  it('binds every JSON value to a digest that changes when the value does (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue(), fc.jsonValue(), async (a, b) => {
        const ha = await runtimeDataHash({ v: a });
        expect(ha.subarray(48)).toEqual(new Uint8Array(16));
        expect(await reportDataMatches(ha, { v: a })).toBe(true);
        if (canonicalJson({ v: a }) !== canonicalJson({ v: b })) {
          expect(await reportDataMatches(ha, { v: b })).toBe(false);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
