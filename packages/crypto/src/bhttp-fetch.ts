import { TresorError } from '@tresor/protocol';
import { authorityProblem, finalStatusProblem, refuse } from './bhttp-syntax.js';
import type { BhttpField, BhttpRequest, BhttpResponse } from './bhttp-types.js';

/**
 * Converters between the Binary HTTP model and plain objects shaped like WHATWG fetch
 * `Request`/`Response`, for the gateway (which answers the inner request) and the sdk (which
 * hands the inner response to an OpenAI-style client). Plain data only — no `Headers`,
 * `Request` or `Response` objects — so they behave the same in Node 20 and browsers.
 *
 * Nothing is dropped silently except what fetch itself never exposes: interim (1xx) responses.
 * Trailer fields, which fetch has no place for, travel in `trailers`.
 */

/** A request as fetch sees it: absolute URL, headers in order, body bytes. */
export interface FetchRequestLike {
  readonly method: string;
  /** Absolute URL; the fragment, if any, is never sent. */
  readonly url: string;
  readonly headers: readonly BhttpField[];
  readonly body: Uint8Array;
  /** Trailer fields (RFC 9110 §6.5); usually empty. */
  readonly trailers: readonly BhttpField[];
}

/** A final response as fetch sees it. */
export interface FetchResponseLike {
  /** 200..599, as fetch `Response` allows. */
  readonly status: number;
  readonly headers: readonly BhttpField[];
  readonly body: Uint8Array;
  readonly trailers: readonly BhttpField[];
}

function malformed(message: string): TresorError {
  return new TresorError('BHTTP_MALFORMED', `Binary HTTP ${message}`);
}

function hostHeaders(headers: readonly BhttpField[]): string[] {
  return headers.filter(([name]) => name.toLowerCase() === 'host').map(([, value]) => value);
}

/**
 * The authority a request is for. RFC 9292 §3.4 lets it travel as `:authority` or, as in the
 * RFC's own example, as a `host` header with an empty authority. A request with more than one
 * `host` (RFC 9110 §7.2) or whose `host` names another authority (RFC 9113 §8.3.1) is refused:
 * two hosts in one request is how routing and cache confusion attacks start.
 */
function effectiveAuthority(authority: string, headers: readonly BhttpField[]): string {
  const hosts = hostHeaders(headers);
  if (hosts.length > 1) throw malformed('request has more than one host header field');
  const [host] = hosts;
  if (authority === '') {
    if (host === undefined || host === '') {
      throw malformed('request names no authority and has no host header field');
    }
    refuse(authorityProblem(host), 'request host header field');
    return host;
  }
  if (host !== undefined && host.toLowerCase() !== authority.toLowerCase()) {
    throw malformed('request authority and host header field name different hosts');
  }
  return authority;
}

function parseUrl(text: string): URL {
  try {
    return new URL(text);
  } catch (cause) {
    throw new TresorError('BHTTP_MALFORMED', 'Binary HTTP request target is not a valid URL', {
      cause,
    });
  }
}

/**
 * Binary HTTP request → fetch-like request. Only origin-form targets (a path starting with `/`)
 * have a URL; asterisk-form (`OPTIONS *`) and CONNECT requests are refused.
 */
export function bhttpRequestToFetch(request: BhttpRequest): FetchRequestLike {
  if (request.scheme === '') throw malformed('request has no scheme');
  if (!request.path.startsWith('/')) throw malformed('request path does not start with "/"');
  const authority = effectiveAuthority(request.authority, request.headers);
  const url = parseUrl(`${request.scheme}://${authority}${request.path}`);
  return {
    method: request.method,
    url: url.href,
    headers: request.headers,
    body: request.content,
    trailers: request.trailers,
  };
}

/**
 * Fetch-like request → Binary HTTP request. The authority goes into control data (as HTTP/2
 * and HTTP/3 send it); header fields are kept as given. URLs with credentials are refused, as
 * fetch refuses them.
 */
export function fetchToBhttpRequest(request: FetchRequestLike): BhttpRequest {
  const url = parseUrl(request.url);
  if (url.username !== '' || url.password !== '') {
    throw malformed('request URL contains credentials; send them in a header field');
  }
  const authority = effectiveAuthority(url.host, request.headers);
  return {
    method: request.method,
    scheme: url.protocol.slice(0, -1),
    authority,
    path: `${url.pathname === '' ? '/' : url.pathname}${url.search}`,
    headers: request.headers,
    content: request.body,
    trailers: request.trailers,
  };
}

/** Binary HTTP response → fetch-like response; informational (1xx) responses are not kept. */
export function bhttpResponseToFetch(response: BhttpResponse): FetchResponseLike {
  return {
    status: response.status,
    headers: response.headers,
    body: response.content,
    trailers: response.trailers,
  };
}

/** Fetch-like response → Binary HTTP response with no informational responses. */
export function fetchToBhttpResponse(response: FetchResponseLike): BhttpResponse {
  refuse(finalStatusProblem(response.status), 'response');
  return {
    informational: [],
    status: response.status,
    headers: response.headers,
    content: response.body,
    trailers: response.trailers,
  };
}
