import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { readTestdataJson } from '../../../test/support/testdata.js';
import { decodeBhttpRequest, decodeBhttpResponse } from './bhttp-decode.js';
import { encodeBhttpRequest } from './bhttp-encode.js';
import {
  bhttpRequestToFetch,
  bhttpResponseToFetch,
  fetchToBhttpRequest,
  fetchToBhttpResponse,
  type FetchRequestLike,
} from './bhttp-fetch.js';
import type { BhttpRequest } from './bhttp-types.js';
import { hexToBytes, utf8Encode } from './bytes.js';

function exampleHex(name: string): Uint8Array {
  const file = readTestdataJson('protocol/bhttp/rfc9292-examples.json') as {
    examples: { name: string; hex: string }[];
  };
  const example = file.examples.find((e) => e.name === name);
  if (example === undefined) throw new Error(`no example ${name}`);
  return hexToBytes(example.hex);
}

/** Matches a BHTTP_MALFORMED TresorError (vitest types asymmetric matchers as any). */
const malformed = (pattern: RegExp): Error =>
  expect.objectContaining({
    code: 'BHTTP_MALFORMED',
    message: expect.stringMatching(pattern) as unknown,
  }) as Error;

const fetchRequest = (overrides: Partial<FetchRequestLike> = {}): FetchRequestLike => ({
  method: 'POST',
  url: 'https://tresor.example/v1/chat/completions?stream=true&n=2',
  headers: [['content-type', 'application/json']],
  body: utf8Encode('{"model":"m"}'),
  trailers: [],
  ...overrides,
});

const bhttpRequest = (overrides: Partial<BhttpRequest> = {}): BhttpRequest => ({
  method: 'GET',
  scheme: 'https',
  authority: 'tresor.example',
  path: '/v1/models',
  headers: [],
  content: new Uint8Array(0),
  trailers: [],
  ...overrides,
});

describe('Binary HTTP ↔ fetch-like requests', () => {
  it('turns the RFC 9292 §5.1 request (empty authority, host header) into an absolute URL', () => {
    const { message } = decodeBhttpRequest(exampleHex('rfc9292-5.1-request-known-length'));
    const request = bhttpRequestToFetch(message);
    expect(request.method).toBe('GET');
    expect(request.url).toBe('https://www.example.com/hello.txt');
    expect(request.headers).toEqual(message.headers);
    expect(request.body).toHaveLength(0);
  });

  it('turns the RFC 9458 request (authority in control data) into its URL', () => {
    const { message } = decodeBhttpRequest(exampleHex('rfc9458-a-request-tiny'));
    expect(bhttpRequestToFetch(message).url).toBe('https://example.com/');
  });

  it('keeps the query string both ways (bhttp-js drops it)', () => {
    const message = fetchToBhttpRequest(fetchRequest());
    expect(message).toMatchObject({
      scheme: 'https',
      authority: 'tresor.example',
      path: '/v1/chat/completions?stream=true&n=2',
    });
    const decoded = decodeBhttpRequest(encodeBhttpRequest(message)).message;
    expect(bhttpRequestToFetch(decoded)).toEqual(fetchRequest());
  });

  it('carries non-default ports and drops the fragment, which HTTP never sends', () => {
    const message = fetchToBhttpRequest(fetchRequest({ url: 'https://tresor.example:8443/a?b=1#frag' }));
    expect(message.authority).toBe('tresor.example:8443');
    expect(message.path).toBe('/a?b=1');
  });

  it('refuses ambiguous or unrepresentable targets', () => {
    const twoHosts = bhttpRequest({
      authority: '',
      headers: [
        ['host', 'a.example'],
        ['Host', 'b.example'],
      ],
    });
    expect(() => bhttpRequestToFetch(twoHosts)).toThrow(malformed(/more than one host/));
    const mismatch = bhttpRequest({ headers: [['host', 'evil.example']] });
    expect(() => bhttpRequestToFetch(mismatch)).toThrow(malformed(/name different hosts/));
    const matching = bhttpRequest({ headers: [['Host', 'TRESOR.example']] });
    expect(bhttpRequestToFetch(matching).url).toBe('https://tresor.example/v1/models');
    expect(() => bhttpRequestToFetch(bhttpRequest({ authority: '' }))).toThrow(
      malformed(/no authority and has no host/),
    );
    const badHost = bhttpRequest({ authority: '', headers: [['host', 'a.example/evil']] });
    expect(() => bhttpRequestToFetch(badHost)).toThrow(malformed(/host\[:port\]/));
    expect(() => bhttpRequestToFetch(bhttpRequest({ method: 'OPTIONS', path: '*' }))).toThrow(
      malformed(/does not start with "\/"/),
    );
    expect(() => bhttpRequestToFetch(bhttpRequest({ scheme: '' }))).toThrow(malformed(/no scheme/));
    expect(() => bhttpRequestToFetch(bhttpRequest({ authority: 'a..b:99999' }))).toThrow(
      malformed(/not a valid URL/),
    );
    expect(() => fetchToBhttpRequest(fetchRequest({ url: 'https://user:pw@tresor.example/' }))).toThrow(
      malformed(/credentials/),
    );
    expect(() => fetchToBhttpRequest(fetchRequest({ url: '/relative' }))).toThrow(
      malformed(/not a valid URL/),
    );
    expect(() => fetchToBhttpRequest(fetchRequest({ headers: [['host', 'other.example']] }))).toThrow(
      malformed(/name different hosts/),
    );
  });

  it('round trips URLs in normal form (fast-check)', () => {
    const label = fc.stringMatching(/^[a-z0-9]{1,10}$/);
    const host = fc
      .array(label, { minLength: 1, maxLength: 3 })
      .map((labels) => [...labels, 'example'].join('.'));
    const port = fc.option(
      fc.integer({ min: 1, max: 65535 }).filter((p) => p !== 443),
      { nil: undefined },
    );
    const segment = fc.stringMatching(/^[A-Za-z0-9_~-]{1,8}$/);
    const query = fc.option(fc.stringMatching(/^[A-Za-z0-9=&_-]{1,16}$/), { nil: undefined });
    const url = fc
      .record({ host, port, segments: fc.array(segment, { maxLength: 4 }), query })
      .map(
        ({ host: h, port: p, segments, query: q }) =>
          `https://${h}${p === undefined ? '' : `:${p}`}/${segments.join('/')}${q === undefined ? '' : `?${q}`}`,
      );
    fc.assert(
      fc.property(url, fc.uint8Array({ maxLength: 64 }), (href, body) => {
        const original = fetchRequest({ url: href, body });
        const wire = encodeBhttpRequest(fetchToBhttpRequest(original));
        expect(bhttpRequestToFetch(decodeBhttpRequest(wire).message)).toEqual(original);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('Binary HTTP ↔ fetch-like responses', () => {
  it('keeps the final response of RFC 9292 §5.2 and leaves out its 1xx responses, as fetch does', () => {
    const { message } = decodeBhttpResponse(
      exampleHex('rfc9292-5.2-response-indeterminate-length-with-informational'),
    );
    const response = bhttpResponseToFetch(message);
    expect(response.status).toBe(200);
    expect(response.headers).toEqual(message.headers);
    expect(new TextDecoder().decode(response.body)).toBe(
      'Hello World! My content includes a trailing CRLF.\r\n',
    );
    expect(fetchToBhttpResponse(response)).toEqual({ ...message, informational: [] });
  });

  it('keeps trailer fields, which fetch has no place for', () => {
    const { message } = decodeBhttpResponse(exampleHex('rfc9292-5.2-response-known-length-with-trailer'));
    expect(bhttpResponseToFetch(message).trailers).toEqual([['trailer', 'text']]);
  });

  it('refuses a final status outside 200..599', () => {
    for (const status of [101, 199, 600]) {
      expect(() =>
        fetchToBhttpResponse({ status, headers: [], body: new Uint8Array(0), trailers: [] }),
      ).toThrow(malformed(/outside 200..599/));
    }
  });
});
