import { describe, expect, it } from 'vitest';
import { readFetchCall } from './fetch-call.js';

/** What a `Request` built from the same arguments says: the reference the fast path must match. */
async function viaRequest(input: string | URL | Request, init?: RequestInit) {
  const request = new Request(input, init);
  const headers: [string, string][] = [];
  request.headers.forEach((value, name) => headers.push([name, value]));
  return {
    url: request.url,
    method: request.method,
    headers,
    body: request.body === null ? null : Array.from(new Uint8Array(await request.arrayBuffer())),
  };
}

async function viaCall(input: string | URL | Request, init?: RequestInit) {
  const call = readFetchCall(input, init);
  const headers: [string, string][] = [];
  call.headers.forEach((value, name) => headers.push([name, value]));
  const body = await call.body();
  return { url: call.url.href, method: call.method, headers, body: body === null ? null : Array.from(body) };
}

const URL_TEXT = 'https://gateway.example/v1/chat/completions?x=1';

describe('readFetchCall reads fetch arguments as Request does', () => {
  const bytes = new TextEncoder().encode('{"stream":true}');
  const cases: [string, string | URL | Request, RequestInit | undefined][] = [
    ['a bare URL string', URL_TEXT, undefined],
    ['a URL object', new URL(URL_TEXT), { method: 'GET' }],
    ['a JSON string body (default content-type)', URL_TEXT, { method: 'POST', body: '{"a":"é"}' }],
    [
      'a string body with its own content-type, Headers object',
      URL_TEXT,
      {
        method: 'POST',
        body: '{}',
        headers: new Headers({ 'Content-Type': 'application/json', 'X-A': ' v ' }),
      },
    ],
    [
      'bytes, header pairs',
      URL_TEXT,
      { method: 'POST', body: bytes, headers: [['authorization', 'Bearer k']] },
    ],
    ['an ArrayBuffer', URL_TEXT, { method: 'PUT', body: bytes.buffer }],
    [
      'a DataView over part of a buffer',
      URL_TEXT,
      { method: 'POST', body: new DataView(bytes.buffer, 2, 5) },
    ],
    ['a lower-case method (normalised by Request)', URL_TEXT, { method: 'post', body: 'x' }],
    ['PATCH', URL_TEXT, { method: 'PATCH', body: 'x' }],
    [
      'URLSearchParams (Request handles it)',
      URL_TEXT,
      { method: 'POST', body: new URLSearchParams({ a: 'b' }) },
    ],
  ];
  it.each(cases)('%s', async (_what, input, init) => {
    expect(await viaCall(input, init)).toEqual(await viaRequest(input, init));
  });

  it('a Request (with and without init) goes to Request itself', async () => {
    const make = (): Request => new Request(URL_TEXT, { method: 'POST', body: 'r' });
    for (const init of [undefined, { headers: { a: 'b' } }]) {
      expect(await viaCall(make(), init)).toEqual(await viaRequest(make(), init));
    }
  });

  it('refuses what Request refuses: a body on GET, a bad header name, a forbidden method', () => {
    expect(() => readFetchCall(URL_TEXT, { method: 'GET', body: 'x' })).toThrow(TypeError);
    expect(() => readFetchCall(URL_TEXT, { headers: { 'bad name': 'x' } })).toThrow(TypeError);
    expect(() => readFetchCall(URL_TEXT, { method: 'CONNECT' })).toThrow(TypeError);
    expect(() => readFetchCall('/relative')).toThrow(TypeError);
  });

  it('copies a byte body: a change by the caller after the call does not reach what is sent', async () => {
    const body = new Uint8Array([1, 2, 3]);
    const call = readFetchCall(URL_TEXT, { method: 'POST', body });
    body[0] = 9;
    expect(Array.from((await call.body()) ?? [])).toEqual([1, 2, 3]);
  });

  it('passes the caller signal on (and null without one)', () => {
    const controller = new AbortController();
    expect(readFetchCall(URL_TEXT, { signal: controller.signal }).signal).toBe(controller.signal);
    expect(readFetchCall(URL_TEXT).signal).toBeNull();
  });
});
