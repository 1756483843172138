import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { bytesToHex, concatBytes, utf8Encode } from '@tresor/crypto';
import { readTestdata } from '../../../../test/support/testdata.js';
import { MAX_QUOTE_BYTES, parseTdxQuote } from './quote.js';
import { decodeTdAttributes } from './td-report.js';

/**
 * The quote parser on real quotes, then on everything else: truncated at every length, fields
 * overwritten, random bytes, oversized input. Parsing must yield a typed quote or
 * ATTESTATION_EVIDENCE_MALFORMED, never another exception.
 */

const v4 = readTestdata('attestation/tdx/dcap-qvl-v4-uptodate/quote.bin');
const v5 = readTestdata('attestation/tdx/dcap-qvl-v5-outdated/quote.bin');
const withText = readTestdata('attestation/tdx/go-tdx-guest-v4-spr/quote.bin');

function expectMalformed(input: Uint8Array, message?: RegExp): void {
  let caught: unknown;
  try {
    parseTdxQuote(input);
  } catch (error) {
    caught = error;
  }
  expect(isTresorError(caught) && caught.code === 'ATTESTATION_EVIDENCE_MALFORMED', String(caught)).toBe(
    true,
  );
  if (message !== undefined) expect((caught as Error).message).toMatch(message);
}

/** Parses or throws ATTESTATION_EVIDENCE_MALFORMED; anything else fails the property. */
function parsesOrRefusesCleanly(input: Uint8Array): boolean {
  try {
    parseTdxQuote(input);
    return true;
  } catch (error) {
    return isTresorError(error) && error.code === 'ATTESTATION_EVIDENCE_MALFORMED';
  }
}

function withU16(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const out = new Uint8Array(bytes);
  new DataView(out.buffer).setUint16(offset, value, true);
  return out;
}

function withU32(bytes: Uint8Array, offset: number, value: number): Uint8Array {
  const out = new Uint8Array(bytes);
  new DataView(out.buffer).setUint32(offset, value, true);
  return out;
}

describe('parseTdxQuote on real quotes', () => {
  it('reads a v4 quote by its declared lengths, counting the padding after it', () => {
    const quote = parseTdxQuote(v4);
    expect(quote.header).toMatchObject({ version: 4, attestationKeyType: 2, teeType: 0x81 });
    expect(quote.layout).toEqual({
      bodyType: 2,
      bodyOffset: 48,
      bodySize: 584,
      signedLength: 632,
      signatureDataLength: 4300,
      totalLength: 5006,
      trailingBytes: 70,
    });
    expect(quote.signedRegion.length).toBe(632);
    expect(quote.body.teeTcbSvn2).toBeUndefined();
    expect(quote.certificationDataTypes).toEqual([6, 5]);
    expect(new TextDecoder().decode(quote.pckChainPem)).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(quote.qeAuthData.length).toBe(32);
  });

  it('reads a v5 quote with the TDX 1.5 body (type 3)', () => {
    const quote = parseTdxQuote(v5);
    expect(quote.header.version).toBe(5);
    expect(quote.layout).toMatchObject({ bodyType: 3, bodyOffset: 54, bodySize: 648, signedLength: 702 });
    expect(bytesToHex(quote.body.teeTcbSvn2!)).toBe('0d010300000000000000000000000000');
    expect(quote.body.mrServiceTd?.length).toBe(48);
  });

  it('ignores unsigned text after the signature data (go-tdx-guest appends some)', () => {
    const quote = parseTdxQuote(withText);
    expect(quote.layout.trailingBytes).toBe(39);
    expect(new TextDecoder().decode(withText.subarray(withText.length - 39))).toContain('extra bytes');
  });

  it('accepts hex text: plain, 0x-prefixed, quoted, wrapped, either case', () => {
    const hex = bytesToHex(v4);
    const expected = parseTdxQuote(v4).layout;
    for (const text of [hex, `0x${hex}`, `"${hex}"\n`, hex.toUpperCase(), hex.replace(/(.{64})/g, '$1\n')]) {
      expect(parseTdxQuote(utf8Encode(text)).layout).toEqual(expected);
    }
    expectMalformed(utf8Encode(`${hex}0`), /neither a binary TDX quote nor hexadecimal/);
    expectMalformed(utf8Encode(`${hex.slice(0, 100)}zz`), /neither a binary TDX quote nor hexadecimal/);
  });

  it('decodes TD attributes bit by bit (DEBUG 0, SEPT_VE_DISABLE 28, PKS 30, KL 31, PERFMON 63)', () => {
    const bits = (n: number): Uint8Array => {
      const out = new Uint8Array(8);
      out[n >> 3] = 1 << (n & 7);
      return out;
    };
    const none = { debug: false, sept_ve_disable: false, pks: false, kl: false, perfmon: false };
    expect(decodeTdAttributes(new Uint8Array(8))).toEqual(none);
    expect(decodeTdAttributes(bits(0))).toEqual({ ...none, debug: true });
    expect(decodeTdAttributes(bits(28))).toEqual({ ...none, sept_ve_disable: true });
    expect(decodeTdAttributes(bits(30))).toEqual({ ...none, pks: true });
    expect(decodeTdAttributes(bits(31))).toEqual({ ...none, kl: true });
    expect(decodeTdAttributes(bits(63))).toEqual({ ...none, perfmon: true });
    expect(decodeTdAttributes(bits(1))).toEqual(none);
  });
});

describe('parseTdxQuote refuses what is not a TDX quote', () => {
  it('names the field for each unsupported header or layout value', () => {
    expectMalformed(withU16(v4, 0, 3), /quote version 3 is not supported/);
    expectMalformed(withU16(v4, 2, 3), /attestation key type 3/);
    expectMalformed(withU32(v4, 4, 0), /TEE type 0x0 is not TDX/);
    expectMalformed(withU16(v5, 48, 1), /body type 1 is not a TD report/);
    expectMalformed(withU32(v5, 50, 584), /body size 584 does not match body type 3/);
    expectMalformed(withU16(v4, 632 + 4 + 128, 5), /certification data type 5 is not supported/);
    const innerType = 632 + 4 + 134 + 384 + 64 + 2 + 32;
    expectMalformed(withU16(v4, innerType, 4), /nested certification data type 4/);
  });

  it('refuses length fields larger than what follows, before reading', () => {
    expectMalformed(withU32(v4, 632, 0xffffffff), /signature data needs 4294967295 bytes/);
    expectMalformed(withU32(v4, 632 + 4 + 130, 1 << 30), /certification data needs/);
    expectMalformed(withU16(v4, 632 + 4 + 134 + 448, 0xffff), /QE auth data needs 65535 bytes/);
  });

  it('refuses the quote cut at every length', () => {
    // The PEM chain ends 70 bytes before the end of this quote (its padding); any cut before is fatal.
    const end = v4.length - parseTdxQuote(v4).layout.trailingBytes;
    for (let length = 0; length < end; length++) expectMalformed(v4.subarray(0, length));
    expect(parseTdxQuote(v4.subarray(0, end)).layout.trailingBytes).toBe(0);
  });

  it('refuses empty and oversized input', () => {
    expectMalformed(new Uint8Array(0), /empty/);
    expectMalformed(concatBytes(v4, new Uint8Array(MAX_QUOTE_BYTES)), /more than/);
    expectMalformed(new Uint8Array(3 * MAX_QUOTE_BYTES).fill(0x41), /more than any TDX quote/);
  });
});

describe('parseTdxQuote under fuzzing', () => {
  it('refuses random bytes cleanly', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), parsesOrRefusesCleanly), { numRuns: 3000 });
  });

  it('refuses random text cleanly', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 512 }), (text) => parsesOrRefusesCleanly(utf8Encode(text))),
      { numRuns: 1000 },
    );
  });

  it('handles random truncation, extension and byte overwrites of real quotes', () => {
    const base = fc.constantFrom(v4, v5, withText);
    const mutation = fc.record({
      cut: fc.option(fc.nat(), { nil: undefined }),
      extra: fc.uint8Array({ maxLength: 64 }),
      overwrites: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 6 }),
    });
    fc.assert(
      fc.property(base, mutation, (quote, { cut, extra, overwrites }) => {
        const bytes = concatBytes(
          quote.subarray(0, cut === undefined ? quote.length : cut % quote.length),
          extra,
        );
        for (const [at, value] of overwrites) if (bytes.length > 0) bytes[at % bytes.length] = value;
        return parsesOrRefusesCleanly(bytes);
      }),
      { numRuns: 4000 },
    );
  });

  it('handles hostile values in every length and type field', () => {
    // Offsets of the header, descriptor and nested length/type fields of the v5 quote.
    const certification = 702 + 4 + 134;
    const fields: readonly [number, 2 | 4][] = [
      [0, 2],
      [2, 2],
      [4, 4],
      [48, 2],
      [50, 4],
      [702, 4],
      [702 + 4 + 128, 2],
      [702 + 4 + 130, 4],
      [certification + 448, 2],
      [certification + 450 + 32, 2],
      [certification + 450 + 34, 4],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.nat({ max: 0xffffffff }), ([offset, size], value) => {
        const bytes = size === 2 ? withU16(v5, offset, value & 0xffff) : withU32(v5, offset, value);
        return parsesOrRefusesCleanly(bytes);
      }),
      { numRuns: 2000 },
    );
  });
});
