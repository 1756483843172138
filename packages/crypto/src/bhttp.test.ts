import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readTestdataJson } from '../../../test/support/testdata.js';
import { decodeBhttpRequest, decodeBhttpResponse } from './bhttp-decode.js';
import { encodeBhttpRequest, encodeBhttpResponse } from './bhttp-encode.js';
import type {
  BhttpEncodeOptions,
  BhttpField,
  BhttpLayout,
  BhttpRequest,
  BhttpResponse,
} from './bhttp-types.js';
import { bytesToHex, hexToBytes, utf8Encode } from './bytes.js';
import { TresorError } from '@tresor/protocol';

// ── Arbitraries: every message the model can hold, and the layouts it can be written in ────────

const TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const token = fc.string({ unit: fc.constantFrom(...TCHARS.split('')), minLength: 1, maxLength: 12 });

/** Field values: any byte but NUL, CR, LF; no space or tab at either end (RFC 9113 §8.2.1). */
const fieldValue = fc
  .array(
    fc.integer({ min: 1, max: 255 }).filter((c) => c !== 0x0a && c !== 0x0d),
    { maxLength: 40 },
  )
  .map((codes) => String.fromCharCode(...codes).replace(/^[ \t]+|[ \t]+$/g, ''));

const fieldSection = fc.array(fc.tuple(token, fieldValue), { maxLength: 6 });
const body = fc.uint8Array({ maxLength: 300 });
const visible = (extra: string) =>
  fc.string({
    unit: fc.constantFrom(...'abcXYZ019-._~%!$&()*+,;=:'.split(''), ...extra.split('')),
    maxLength: 30,
  });

const arbitraryRequest: fc.Arbitrary<BhttpRequest> = fc.record({
  method: token,
  scheme: fc.constantFrom('https', 'http', '', 'coap+tcp'),
  authority: visible('[]'),
  path: visible('/?@[]').map((p) => `/${p}`),
  headers: fieldSection,
  content: body,
  trailers: fieldSection,
});

const arbitraryResponse: fc.Arbitrary<BhttpResponse> = fc.record({
  informational: fc.array(fc.record({ status: fc.integer({ min: 100, max: 199 }), headers: fieldSection }), {
    maxLength: 3,
  }),
  status: fc.integer({ min: 200, max: 599 }),
  headers: fieldSection,
  content: body,
  trailers: fieldSection,
});

/** Sparse sections on purpose, so truncation (which needs empty trailing sections) is common. */
const sparseRequest = arbitraryRequest.chain((r) =>
  fc.record({ h: fc.boolean(), c: fc.boolean(), t: fc.boolean() }).map(({ h, c, t }) => ({
    ...r,
    headers: h ? r.headers : [],
    content: c ? r.content : new Uint8Array(0),
    trailers: t ? r.trailers : [],
  })),
);

const arbitraryLayout = fc.record({
  framing: fc.constantFrom('known-length' as const, 'indeterminate-length' as const),
  truncated: fc.boolean(),
  padding: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 20 })),
}) satisfies fc.Arbitrary<Required<BhttpEncodeOptions>>;

function bhttpArbitraries() {
  return { request: sparseRequest, response: arbitraryResponse, layout: arbitraryLayout };
}

/** testdata/protocol/bhttp/rfc9292-examples.json, parsed into the model at the boundary. */
interface Example {
  readonly name: string;
  readonly framing: number;
  readonly hex: string;
  readonly decoded: Record<string, unknown>;
}

function loadExamples(): Example[] {
  const file = readTestdataJson('protocol/bhttp/rfc9292-examples.json') as { examples: Example[] };
  expect(file.examples).toHaveLength(6);
  return file.examples;
}

function fields(value: unknown): BhttpField[] {
  expect(Array.isArray(value)).toBe(true);
  return (value as [string, string][]).map(([name, v]) => [name, v]);
}

function content(decoded: Record<string, unknown>): Uint8Array {
  const text = decoded.content_utf8 ?? decoded.content;
  expect(typeof text).toBe('string');
  return utf8Encode(text as string);
}

function expectedRequest(d: Record<string, unknown>): BhttpRequest {
  return {
    method: d.method as string,
    scheme: d.scheme as string,
    authority: d.authority as string,
    path: d.path as string,
    headers: fields(d.header_fields),
    content: content(d),
    trailers: fields(d.trailer_fields),
  };
}

function expectedResponse(d: Record<string, unknown>): BhttpResponse {
  const informational = (d.informational_responses ?? []) as { status: number; header_fields: unknown }[];
  return {
    informational: informational.map((i) => ({ status: i.status, headers: fields(i.header_fields) })),
    status: d.status as number,
    headers: fields(d.header_fields),
    content: content(d),
    trailers: fields(d.trailer_fields),
  };
}

/** The layout each example was written in (read off the RFC text and the vector notes). */
const EXPECTED_LAYOUT: Record<string, BhttpLayout> = {
  'rfc9292-5.1-request-known-length': { framing: 'known-length', truncated: false, padding: 0 },
  'rfc9292-5.1-request-indeterminate-length': {
    framing: 'indeterminate-length',
    truncated: false,
    padding: 10,
  },
  'rfc9292-5.2-response-indeterminate-length-with-informational': {
    framing: 'indeterminate-length',
    truncated: false,
    padding: 0,
  },
  'rfc9292-5.2-response-known-length-with-trailer': {
    framing: 'known-length',
    truncated: false,
    padding: 0,
  },
  'rfc9458-a-request-tiny': { framing: 'known-length', truncated: true, padding: 0 },
  'rfc9458-a-response-tiny': { framing: 'known-length', truncated: true, padding: 0 },
};

describe('Binary HTTP: RFC 9292 §5 and RFC 9458 Appendix A examples', () => {
  const examples = loadExamples();

  it.each(examples.map((e) => [e.name, e] as const))(
    '%s decodes to its meaning and re-encodes byte for byte',
    (name, example) => {
      const bytes = hexToBytes(example.hex);
      const layout = EXPECTED_LAYOUT[name];
      expect(layout).toBeDefined();
      if (example.framing % 2 === 0) {
        const decoded = decodeBhttpRequest(bytes);
        expect(decoded.message).toEqual(expectedRequest(example.decoded));
        expect(decoded.layout).toEqual(layout);
        expect(bytesToHex(encodeBhttpRequest(decoded.message, decoded.layout))).toBe(example.hex);
        expect(bytesToHex(encodeBhttpRequest(expectedRequest(example.decoded), layout))).toBe(example.hex);
      } else {
        const decoded = decodeBhttpResponse(bytes);
        expect(decoded.message).toEqual(expectedResponse(example.decoded));
        expect(decoded.layout).toEqual(layout);
        expect(bytesToHex(encodeBhttpResponse(decoded.message, decoded.layout))).toBe(example.hex);
        expect(bytesToHex(encodeBhttpResponse(expectedResponse(example.decoded), layout))).toBe(example.hex);
      }
    },
  );

  it('keeps field order and case: host stays a header field, authority stays empty', () => {
    const known = examples.find((e) => e.name === 'rfc9292-5.1-request-known-length')!;
    const { message } = decodeBhttpRequest(hexToBytes(known.hex));
    expect(message.authority).toBe('');
    expect(message.headers.map(([n]) => n)).toEqual(['user-agent', 'host', 'accept-language']);
    const response = examples.find((e) => e.name.startsWith('rfc9292-5.2-response-indeterminate'))!;
    const decoded = decodeBhttpResponse(hexToBytes(response.hex)).message;
    expect(decoded.informational.map((i) => i.status)).toEqual([102, 103]);
    expect(decoded.headers).toContainEqual(['vary', 'Accept-Encoding']);
  });

  it('reads the known-length request with its last one or two bytes truncated (RFC 9292 §5.1)', () => {
    const known = examples.find((e) => e.name === 'rfc9292-5.1-request-known-length')!;
    const full = hexToBytes(known.hex);
    const meaning = decodeBhttpRequest(full).message;
    for (const cut of [1, 2]) {
      const decoded = decodeBhttpRequest(full.subarray(0, full.length - cut));
      expect(decoded.message).toEqual(meaning);
      expect(decoded.layout.truncated).toBe(true);
    }
  });

  it('reads the indeterminate request with up to 12 trailing bytes removed (RFC 9292 §5.1)', () => {
    const indeterminate = examples.find((e) => e.name === 'rfc9292-5.1-request-indeterminate-length')!;
    const full = hexToBytes(indeterminate.hex);
    const meaning = decodeBhttpRequest(full).message;
    for (let cut = 0; cut <= 12; cut++) {
      const decoded = decodeBhttpRequest(full.subarray(0, full.length - cut));
      expect(decoded.message).toEqual(meaning);
      expect(decoded.layout.padding).toBe(Math.max(0, 10 - cut));
    }
    // A 13th byte is the header section's terminator: without it the section never ends.
    expect(() => decodeBhttpRequest(full.subarray(0, full.length - 13))).toThrow(/without its terminator/);
  });

  it('writes the same example in the other framing and reads it back', () => {
    for (const example of examples) {
      const bytes = hexToBytes(example.hex);
      if (example.framing % 2 === 0) {
        const { message, layout } = decodeBhttpRequest(bytes);
        const other = layout.framing === 'known-length' ? 'indeterminate-length' : 'known-length';
        const reencoded = encodeBhttpRequest(message, { framing: other });
        expect(decodeBhttpRequest(reencoded).message).toEqual(message);
        expect(reencoded[0]).toBe(other === 'known-length' ? 0 : 2);
      } else {
        const { message, layout } = decodeBhttpResponse(bytes);
        const other = layout.framing === 'known-length' ? 'indeterminate-length' : 'known-length';
        const reencoded = encodeBhttpResponse(message, { framing: other });
        expect(decodeBhttpResponse(reencoded).message).toEqual(message);
        expect(reencoded[0]).toBe(other === 'known-length' ? 1 : 3);
      }
    }
  });
});

describe('Binary HTTP round trips (fast-check)', () => {
  const { request, response, layout } = bhttpArbitraries();

  it('decode(encode(request)) is the request, in both framings, truncated and padded', () => {
    fc.assert(
      fc.property(request, layout, (message, options) => {
        const bytes = encodeBhttpRequest(message, options);
        const decoded = decodeBhttpRequest(bytes);
        expect(decoded.message).toEqual(message);
        expect(decoded.layout.framing).toBe(options.framing);
        if (options.padding === 0) {
          // Unpadded encodings carry their layout exactly, so they re-encode to the same bytes.
          expect(encodeBhttpRequest(decoded.message, decoded.layout)).toEqual(bytes);
        } else if (!options.truncated) {
          expect(decoded.layout.padding).toBe(options.padding);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('decode(encode(response)) is the response, informational responses included', () => {
    fc.assert(
      fc.property(response, layout, (message, options) => {
        const bytes = encodeBhttpResponse(message, options);
        const decoded = decodeBhttpResponse(bytes);
        expect(decoded.message).toEqual(message);
        expect(decoded.layout.framing).toBe(options.framing);
        if (options.padding === 0) {
          expect(encodeBhttpResponse(decoded.message, decoded.layout)).toEqual(bytes);
        } else if (!options.truncated) {
          expect(decoded.layout.padding).toBe(options.padding);
        }
      }),
      { numRuns: 1500 },
    );
  });

  it('truncation only ever shortens the encoding, never changes the meaning', () => {
    fc.assert(
      fc.property(
        request,
        fc.constantFrom('known-length', 'indeterminate-length' as const),
        (message, framing) => {
          const full = encodeBhttpRequest(message, { framing });
          const short = encodeBhttpRequest(message, { framing, truncated: true });
          expect(short.length).toBeLessThanOrEqual(full.length);
          expect(full.subarray(0, short.length)).toEqual(short);
          expect(decodeBhttpRequest(short).message).toEqual(message);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('Binary HTTP decoder hardening (fast-check)', () => {
  const { request, response, layout } = bhttpArbitraries();

  /** Decoding either yields a message or throws BHTTP_MALFORMED; nothing else may escape. */
  function decodesOrRefuses(bytes: Uint8Array): void {
    for (const decode of [decodeBhttpRequest, decodeBhttpResponse]) {
      let decoded: { message: BhttpRequest | BhttpResponse } | undefined;
      try {
        decoded = decode(bytes);
      } catch (error) {
        expect(error).toBeInstanceOf(TresorError);
        expect((error as TresorError).code).toBe('BHTTP_MALFORMED');
        continue;
      }
      // Whatever was accepted is a valid message: it encodes, and decodes back to itself.
      const again =
        decode === decodeBhttpRequest
          ? decodeBhttpRequest(encodeBhttpRequest(decoded.message as BhttpRequest)).message
          : decodeBhttpResponse(encodeBhttpResponse(decoded.message as BhttpResponse)).message;
      expect(again).toEqual(decoded.message);
    }
  }

  it('random bytes only ever decode or throw BHTTP_MALFORMED', () => {
    const framed = fc
      .tuple(fc.integer({ min: 0, max: 3 }), fc.uint8Array({ maxLength: 80 }))
      .map(([indicator, rest]) => Uint8Array.of(indicator, ...rest));
    fc.assert(fc.property(fc.oneof(fc.uint8Array({ maxLength: 80 }), framed), decodesOrRefuses), {
      numRuns: 5000,
    });
  });

  /** Byte-level damage to a valid encoding: flips, cuts, insertions, deletions. */
  type Mutation =
    | { readonly kind: 'set' | 'insert'; readonly at: number; readonly byte: number }
    | { readonly kind: 'cut' | 'delete'; readonly at: number };
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  );

  function mutate(bytes: Uint8Array, mutations: readonly Mutation[]): Uint8Array {
    let out = Array.from(bytes);
    for (const m of mutations) {
      const at = out.length === 0 ? 0 : m.at % (out.length + 1);
      if (m.kind === 'set' && at < out.length) out[at] = m.byte;
      if (m.kind === 'insert') out.splice(at, 0, m.byte);
      if (m.kind === 'cut') out = out.slice(0, at);
      if (m.kind === 'delete') out.splice(at, 1);
    }
    return Uint8Array.from(out);
  }

  it('mutated and truncated valid requests only ever decode or throw BHTTP_MALFORMED', () => {
    fc.assert(
      fc.property(
        request,
        layout,
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (message, options, mutations) => {
          decodesOrRefuses(mutate(encodeBhttpRequest(message, options), mutations));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('mutated and truncated valid responses only ever decode or throw BHTTP_MALFORMED', () => {
    fc.assert(
      fc.property(
        response,
        layout,
        fc.array(mutation, { minLength: 1, maxLength: 4 }),
        (message, options, mutations) => {
          decodesOrRefuses(mutate(encodeBhttpResponse(message, options), mutations));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('refuses any declared length larger than the input before allocating', () => {
    // Each position that carries a length, in front of a tiny remainder. Were anything allocated
    // for the declared length first, 2^50 bytes would fail with a RangeError, not BHTTP_MALFORMED.
    const huge = 'c004000000000000'; // 2^50 as an 8-byte varint
    const cases: [string, (b: Uint8Array) => unknown, RegExp][] = [
      [`00${huge}474554`, decodeBhttpRequest, /method declares 1125899906842624 bytes but only 3 remain/],
      [`0003474554${huge}`, decodeBhttpRequest, /scheme declares/],
      [`000347455405687474707300${huge}2f`, decodeBhttpRequest, /path declares/],
      [`000347455405687474707300012f${huge}0000`, decodeBhttpRequest, /header section declares/],
      [`0140c800${huge}41`, decodeBhttpResponse, /content declares/],
      [`0340c800${huge}41`, decodeBhttpResponse, /content chunk declares/],
      [`0140c80a${huge}6100`, decodeBhttpResponse, /header field name declares .* only 2 remain/],
      [`0340c80161${huge}76`, decodeBhttpResponse, /header field value declares/],
      [`0140c80000${huge}`, decodeBhttpResponse, /trailer section declares/],
    ];
    for (const [hex, decode, message] of cases) {
      expect(() => decode(hexToBytes(hex))).toThrow(message);
    }
    // Above 2^53 the length cannot even be represented, and is refused as such.
    expect(() => decodeBhttpResponse(hexToBytes('0140c8ffffffffffffffff'))).toThrow(
      expect.objectContaining({ code: 'BHTTP_MALFORMED' }),
    );
  });
});
