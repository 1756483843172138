import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeBhttpRequest, decodeBhttpResponse } from './bhttp-decode.js';
import { encodeBhttpRequest, encodeBhttpResponse } from './bhttp-encode.js';
import type { BhttpRequest, BhttpResponse } from './bhttp-types.js';
import { byteStringToBytes, bytesToByteString } from './bhttp-syntax.js';
import { bytesToHex, hexToBytes, utf8Encode } from './bytes.js';

/** Hex of the RFC 9458 Appendix A request: GET https://example.com/, truncated after control data. */
const TINY_REQUEST = '00034745540568747470730b6578616d706c652e636f6d012f';

const request = (overrides: Partial<BhttpRequest> = {}): BhttpRequest => ({
  method: 'POST',
  scheme: 'https',
  authority: 'tresor.example',
  path: '/v1/chat/completions?stream=true',
  headers: [['content-type', 'application/json']],
  content: utf8Encode('{"model":"m"}'),
  trailers: [],
  ...overrides,
});

const response = (overrides: Partial<BhttpResponse> = {}): BhttpResponse => ({
  informational: [],
  status: 200,
  headers: [['content-type', 'text/event-stream']],
  content: utf8Encode('data: {}\n\n'),
  trailers: [],
  ...overrides,
});

/** Field section bytes of one line, for hand-built messages. */
function line(name: string, value: string): string {
  const n = bytesToHex(byteStringToBytes(name, 'name'));
  const v = bytesToHex(byteStringToBytes(value, 'value'));
  return `${name.length.toString(16).padStart(2, '0')}${n}${value.length.toString(16).padStart(2, '0')}${v}`;
}

/** Matches a BHTTP_MALFORMED TresorError (vitest types asymmetric matchers as any). */
function malformed(pattern: RegExp): Error {
  return expect.objectContaining({
    code: 'BHTTP_MALFORMED',
    message: expect.stringMatching(pattern) as unknown,
  }) as Error;
}

describe('Binary HTTP decoder refuses malformed messages with BHTTP_MALFORMED', () => {
  it('refuses an empty input and unknown or mismatched framing indicators (RFC 9292 §3.3)', () => {
    expect(() => decodeBhttpRequest(new Uint8Array(0))).toThrow(
      malformed(/ends before the framing indicator/),
    );
    expect(() => decodeBhttpRequest(hexToBytes('04'))).toThrow(malformed(/framing indicator 4 is not 0..3/));
    expect(() => decodeBhttpRequest(hexToBytes('0140c8'))).toThrow(malformed(/is a response/));
    expect(() => decodeBhttpResponse(hexToBytes(TINY_REQUEST))).toThrow(malformed(/is a request/));
    // A non-shortest integer is allowed (RFC 9292 §3): 0x4000 is framing indicator 0.
    expect(decodeBhttpRequest(hexToBytes(`4000${TINY_REQUEST.slice(2)}`)).message.path).toBe('/');
  });

  it('refuses control data that is cut short, since control data cannot be truncated (§3.8)', () => {
    for (let cut = 1; cut < TINY_REQUEST.length / 2; cut++) {
      const bytes = hexToBytes(TINY_REQUEST).subarray(0, cut);
      expect(() => decodeBhttpRequest(bytes)).toThrow(malformed(/ends before|declares/));
    }
    expect(() => decodeBhttpResponse(hexToBytes('01'))).toThrow(malformed(/ends before the status code/));
    expect(() => decodeBhttpResponse(hexToBytes('0140'))).toThrow(malformed(/ends inside the status code/));
  });

  it('refuses status codes outside 100..599 and responses that end after an informational one', () => {
    expect(() => decodeBhttpResponse(hexToBytes('014063'))).toThrow(
      malformed(/status 99 is outside 100..599/),
    );
    expect(() => decodeBhttpResponse(hexToBytes('014258'))).toThrow(malformed(/status 600 is outside/));
    expect(() => decodeBhttpResponse(hexToBytes('0100'))).toThrow(malformed(/status 0 is outside/));
    // 103 with an empty header section, then nothing: the final status is missing.
    expect(() => decodeBhttpResponse(hexToBytes('014067'))).toThrow(malformed(/ends before/));
    expect(() => decodeBhttpResponse(hexToBytes('01406700'))).toThrow(
      malformed(/ends before the status code/),
    );
    expect(() => decodeBhttpResponse(hexToBytes('034067'))).toThrow(malformed(/without its terminator/));
  });

  it('refuses field names that are not tokens, pseudo-fields and empty names (§3.6)', () => {
    const withHeader = (lines: string) =>
      hexToBytes(`0140c8${(lines.length / 2).toString(16).padStart(2, '0')}${lines}`);
    expect(() => decodeBhttpResponse(withHeader(line('bad name', 'x')))).toThrow(
      malformed(/outside the HTTP token set/),
    );
    expect(() => decodeBhttpResponse(withHeader(line('x\u00e9', 'x')))).toThrow(malformed(/token set/));
    expect(() => decodeBhttpResponse(withHeader(line(':status', '200')))).toThrow(
      malformed(/pseudo-field ":status"/),
    );
    expect(() => decodeBhttpResponse(withHeader(line(':protocol', 'x')))).toThrow(malformed(/pseudo-field/));
    expect(() => decodeBhttpResponse(withHeader('0001'))).toThrow(malformed(/empty field name/));
    // Upper case is a token character and RFC 9292 does not forbid it; it is kept as sent.
    const decoded = decodeBhttpResponse(withHeader(line('Content-Type', 'text/plain')));
    expect(decoded.message.headers).toEqual([['Content-Type', 'text/plain']]);
  });

  it('refuses field values with NUL, CR, LF or surrounding whitespace (RFC 9113 §8.2.1)', () => {
    const withTrailer = (lines: string) =>
      hexToBytes(`0140c80000${(lines.length / 2).toString(16).padStart(2, '0')}${lines}`);
    for (const value of ['a\r\nx-injected: 1', 'a\nb', 'a\u0000b', ' a', 'a ', '\ta', 'a\t']) {
      expect(() => decodeBhttpResponse(withTrailer(line('x', value)))).toThrow(
        malformed(/field value|space or tab/),
      );
    }
    // obs-text (0x80..0xff) and inner whitespace are valid field value bytes.
    const ok = decodeBhttpResponse(withTrailer(line('x', 'caf\u00e9 \u00ff')));
    expect(ok.message.trailers).toEqual([['x', 'caf\u00e9 \u00ff']]);
  });

  it('refuses invalid request control data', () => {
    const control = (method: string, scheme: string, authority: string, path: string) =>
      hexToBytes(`00${[method, scheme, authority, path].map((f) => line(f, '').slice(0, -2)).join('')}`);
    expect(decodeBhttpRequest(control('GET', 'https', 'a.example:8443', '/x?y=1')).message.authority).toBe(
      'a.example:8443',
    );
    expect(() => decodeBhttpRequest(control('', 'https', 'a', '/'))).toThrow(
      malformed(/method is not an HTTP token/),
    );
    expect(() => decodeBhttpRequest(control('GE T', 'https', 'a', '/'))).toThrow(malformed(/method/));
    expect(() => decodeBhttpRequest(control('GET', '1http', 'a', '/'))).toThrow(
      malformed(/not a URI scheme/),
    );
    expect(() => decodeBhttpRequest(control('GET', 'https', 'user@a', '/'))).toThrow(
      malformed(/host\[:port\]/),
    );
    expect(() => decodeBhttpRequest(control('GET', 'https', 'a/b', '/'))).toThrow(malformed(/host\[:port\]/));
    expect(() => decodeBhttpRequest(control('GET', 'https', 'a', '/a b'))).toThrow(
      malformed(/not visible ASCII/),
    );
    expect(() => decodeBhttpRequest(control('GET', 'https', 'a', '/a#f'))).toThrow(malformed(/fragment/));
  });

  it('refuses sections that overrun their length or lack their terminator', () => {
    // Known-length header section of 3 bytes holding a field line that needs 4.
    expect(() => decodeBhttpResponse(hexToBytes('0140c803016101'))).toThrow(
      malformed(/declares 1 bytes but only 0 remain/),
    );
    // Indeterminate header section, content and trailer section each cut before their terminator.
    expect(() => decodeBhttpResponse(hexToBytes('0340c8016101'))).toThrow(
      malformed(/declares 1 bytes but only 0 remain/),
    );
    expect(() => decodeBhttpResponse(hexToBytes('0340c801610162'))).toThrow(
      malformed(/header section ends without its terminator/),
    );
    expect(() => decodeBhttpResponse(hexToBytes('0340c8000141'))).toThrow(
      malformed(/content ends without its terminator/),
    );
    expect(() => decodeBhttpResponse(hexToBytes('0340c80000016101'))).toThrow(malformed(/declares 1 bytes/));
    expect(() => decodeBhttpResponse(hexToBytes('0340c8000001610162'))).toThrow(
      malformed(/trailer section ends without/),
    );
  });

  it('accepts zero padding and refuses a non-zero byte after the message (§3.8)', () => {
    const bytes = encodeBhttpResponse(response(), { padding: 5 });
    expect(decodeBhttpResponse(bytes).layout.padding).toBe(5);
    bytes[bytes.length - 2] = 1;
    expect(() => decodeBhttpResponse(bytes)).toThrow(malformed(/non-zero byte after its end/));
    try {
      decodeBhttpResponse(bytes);
    } catch (error) {
      expect((error as { details: unknown }).details).toEqual({ offset: bytes.length - 2 });
    }
  });
});

describe('Binary HTTP decoder limits', () => {
  it('refuses more field lines than maxFieldLines, across all sections', () => {
    const message = response({
      informational: [
        {
          status: 103,
          headers: [
            ['link', '</a>'],
            ['link', '</b>'],
          ],
        },
      ],
      headers: [
        ['a', '1'],
        ['b', '2'],
      ],
      trailers: [['t', '3']],
    });
    for (const framing of ['known-length', 'indeterminate-length'] as const) {
      const bytes = encodeBhttpResponse(message, { framing });
      expect(decodeBhttpResponse(bytes, { maxFieldLines: 5 }).message).toEqual(message);
      expect(() => decodeBhttpResponse(bytes, { maxFieldLines: 4 })).toThrow(
        malformed(/more than the limit of 4 field lines/),
      );
    }
  });

  it('refuses a field line or control-data field larger than maxFieldSize', () => {
    const bytes = encodeBhttpRequest(request({ headers: [['x-long', 'v'.repeat(100)]] }));
    expect(decodeBhttpRequest(bytes, { maxFieldSize: 106 }).message.headers).toHaveLength(1);
    expect(() => decodeBhttpRequest(bytes, { maxFieldSize: 105 })).toThrow(
      malformed(/field line of 106 bytes exceeds the limit of 105/),
    );
    const longPath = encodeBhttpRequest(request({ path: `/${'p'.repeat(200)}`, headers: [] }));
    expect(() => decodeBhttpRequest(longPath, { maxFieldSize: 200 })).toThrow(
      malformed(/path of 201 bytes exceeds/),
    );
  });

  it('refuses content larger than maxContentSize in both framings, chunks counted together', () => {
    const message = response({ content: new Uint8Array(1000).fill(7) });
    for (const framing of ['known-length', 'indeterminate-length'] as const) {
      const bytes = encodeBhttpResponse(message, { framing });
      expect(decodeBhttpResponse(bytes, { maxContentSize: 1000 }).message.content).toEqual(message.content);
      expect(() => decodeBhttpResponse(bytes, { maxContentSize: 999 })).toThrow(
        malformed(/content of at least 1000 bytes exceeds the limit of 999/),
      );
    }
    // Two indeterminate chunks of 600 bytes: the second pushes the total over the limit.
    const chunked = hexToBytes(`0340c8004258${'00'.repeat(600)}4258${'00'.repeat(600)}00`);
    expect(decodeBhttpResponse(chunked, { maxContentSize: 1200 }).message.content).toHaveLength(1200);
    expect(() => decodeBhttpResponse(chunked, { maxContentSize: 1000 })).toThrow(
      malformed(/at least 1200 bytes/),
    );
  });

  it('refuses more informational responses than maxInformationalResponses', () => {
    const many = response({ informational: Array.from({ length: 4 }, () => ({ status: 100, headers: [] })) });
    const bytes = encodeBhttpResponse(many);
    expect(decodeBhttpResponse(bytes, { maxInformationalResponses: 4 }).message.informational).toHaveLength(
      4,
    );
    expect(() => decodeBhttpResponse(bytes, { maxInformationalResponses: 3 })).toThrow(
      malformed(/more than the limit of 3 informational/),
    );
  });

  it('refuses limits that would switch a check off (CONFIG_INVALID)', () => {
    const bytes = hexToBytes(TINY_REQUEST);
    for (const bad of [Number.NaN, -1, 1.5, Number.POSITIVE_INFINITY]) {
      expect(() => decodeBhttpRequest(bytes, { maxContentSize: bad })).toThrow(
        expect.objectContaining({
          code: 'CONFIG_INVALID',
          message: expect.stringMatching(/maxContentSize/) as unknown,
        }),
      );
    }
  });
});

describe('Binary HTTP encoder refuses messages a decoder would refuse', () => {
  it.each<[string, () => Uint8Array, RegExp]>([
    [
      'a field name with a space',
      () => encodeBhttpRequest(request({ headers: [['bad name', 'x']] })),
      /token set/,
    ],
    [
      'pseudo-field header',
      () => encodeBhttpRequest(request({ headers: [[':authority', 'x']] })),
      /pseudo-field/,
    ],
    [
      'pseudo-field trailer',
      () => encodeBhttpResponse(response({ trailers: [[':status', '200']] })),
      /pseudo-field/,
    ],
    [
      'CRLF in a value',
      () => encodeBhttpRequest(request({ headers: [['x', 'a\r\nb: c']] })),
      /NUL, CR or LF/,
    ],
    [
      'a character above U+00FF',
      () => encodeBhttpRequest(request({ headers: [['x', 'Z\u00fcrich \u20ac']] })),
      /above U\+00FF/,
    ],
    ['non-ASCII path', () => encodeBhttpRequest(request({ path: '/z\u00fcrich' })), /not visible ASCII/],
    ['empty method', () => encodeBhttpRequest(request({ method: '' })), /method/],
    [
      'final status 199',
      () => encodeBhttpResponse(response({ status: 199 })),
      /final status 199 is outside 200..599/,
    ],
    ['final status 600', () => encodeBhttpResponse(response({ status: 600 })), /outside 200..599/],
    ['fractional status', () => encodeBhttpResponse(response({ status: 200.5 })), /outside 200..599/],
    [
      'informational 200',
      () => encodeBhttpResponse(response({ informational: [{ status: 200, headers: [] }] })),
      /informational status 200 is outside 100..199/,
    ],
    ['negative padding', () => encodeBhttpRequest(request(), { padding: -1 }), /padding/],
  ])('%s', (_name, encode, pattern) => {
    expect(encode).toThrow(malformed(pattern));
  });

  it('writes header names in the case given and never moves host into the authority', () => {
    const message = request({
      authority: '',
      headers: [
        ['Host', 'tresor.example'],
        ['X-B', '2'],
        ['x-a', '1'],
      ],
    });
    const decoded = decodeBhttpRequest(encodeBhttpRequest(message)).message;
    expect(decoded.authority).toBe('');
    expect(decoded.headers).toEqual([
      ['Host', 'tresor.example'],
      ['X-B', '2'],
      ['x-a', '1'],
    ]);
  });
});

describe('byte strings', () => {
  it('maps every byte to the character of the same code and back, across the 4096-byte slices', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.uint8Array({ maxLength: 64 }), fc.uint8Array({ minLength: 4090, maxLength: 9000 })),
        (bytes) => {
          const text = bytesToByteString(bytes);
          expect(text.length).toBe(bytes.length);
          for (let i = 0; i < bytes.length; i += 97) expect(text.charCodeAt(i)).toBe(bytes[i]);
          expect(byteStringToBytes(text, 'text')).toEqual(bytes);
        },
      ),
      { numRuns: 60, seed: 9292 },
    );
    // 0x80..0x9f stay themselves (no windows-1252 remapping).
    expect(bytesToByteString(Uint8Array.of(0x80, 0x9f, 0xff, 0))).toBe('\u0080\u009f\u00ff\u0000');
  });
});
