import { utf8Encode } from '@tresor/crypto';

/** What the client and the Node transport read from a `fetch(input, init)` call. */
export interface FetchCall {
  readonly url: URL;
  /** Upper case for the methods Fetch normalises (DELETE, GET, HEAD, OPTIONS, POST, PUT). */
  readonly method: string;
  readonly headers: Headers;
  readonly signal: AbortSignal | null;
  /** The body's bytes (null: none); a streamed or form body is read only when this is called. */
  body(): Promise<Uint8Array | null>;
}

/** Methods taken as given; anything else (other case, CONNECT, …) goes through `Request`'s own rules. */
const PLAIN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH']);

/** A body given as bytes or text, copied (as `Request` does) so later changes by the caller do not leak in. */
function plainBody(body: BodyInit | null | undefined): Uint8Array | null | undefined {
  if (body === undefined || body === null) return null;
  if (typeof body === 'string') return utf8Encode(body);
  if (body instanceof ArrayBuffer) return new Uint8Array(body.slice(0));
  if (ArrayBuffer.isView(body)) return new Uint8Array(body.buffer, body.byteOffset, body.byteLength).slice();
  return undefined;
}

/**
 * `fetch`'s arguments as the Fetch standard reads them, without building a `Request` for the
 * common call (a string or URL, a byte or text body): undici's `Request` costs a derived
 * AbortSignal, a body stream and several transferable objects per call, which on a request path
 * of a few milliseconds is a measurable share. The headers still go through `Headers` (the same
 * validation), a text body gets the same default content-type, and every other shape (a
 * `Request`, a stream, form data, an unusual method, a body on GET) is handed to `Request` itself.
 */
export function readFetchCall(input: string | URL | Request, init?: RequestInit): FetchCall {
  const method = init?.method ?? 'GET';
  const body = plainBody(init?.body);
  if (
    (typeof input === 'string' || input instanceof URL) &&
    PLAIN_METHODS.has(method) &&
    body !== undefined &&
    (body === null || (method !== 'GET' && method !== 'HEAD'))
  ) {
    const headers = new Headers(init?.headers);
    if (typeof init?.body === 'string' && !headers.has('content-type'))
      headers.set('content-type', 'text/plain;charset=UTF-8');
    return {
      url: new URL(input),
      method,
      headers,
      signal: init?.signal ?? null,
      body: () => Promise.resolve(body),
    };
  }
  const request = new Request(input, init);
  return {
    url: new URL(request.url),
    method: request.method,
    headers: request.headers,
    signal: request.signal,
    body: async () => (request.body === null ? null : new Uint8Array(await request.arrayBuffer())),
  };
}
