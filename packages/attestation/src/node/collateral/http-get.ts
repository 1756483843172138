import { TresorError } from '@tresor/protocol';
import { concatBytes } from '@tresor/crypto';
import type { ResolvedFetchOptions } from './fetch-options.js';
import { retryAfterMs } from './retry-after.js';

/**
 * One GET of a collateral document, with a timeout per attempt, retries with exponential backoff
 * on what is worth retrying (network errors, timeouts, 429 and 5xx, honouring Retry-After), a size
 * limit enforced before and while reading, and a specific code for every way it can end badly.
 */

export interface HttpDocument {
  readonly url: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
}

export type HttpGetOptions = Pick<
  ResolvedFetchOptions,
  | 'fetch'
  | 'now'
  | 'sleep'
  | 'timeoutMs'
  | 'retries'
  | 'retryBaseDelayMs'
  | 'maxRetryDelayMs'
  | 'maxResponseBytes'
  | 'onProgress'
>;

/** An attempt that failed in a way a later attempt may not: the reason, and the server's requested wait. */
interface Transient {
  readonly reason: string;
  readonly retryAfterMs?: number;
}

export async function httpGetDocument(
  url: string,
  what: string,
  options: HttpGetOptions,
): Promise<HttpDocument> {
  let last: Transient | undefined;
  for (let attempt = 0; attempt <= options.retries; attempt++) {
    if (last !== undefined) {
      const delayMs = last.retryAfterMs ?? backoffMs(attempt - 1, options);
      if (delayMs > options.maxRetryDelayMs) {
        throw new TresorError(
          'COLLATERAL_FETCH_FAILED',
          `${what}: ${url} answered ${last.reason} and asked to wait ${Math.ceil(delayMs / 1000)} s, longer than the ${Math.ceil(options.maxRetryDelayMs / 1000)} s allowed; try again later`,
        );
      }
      options.onProgress({ type: 'retry', what, url, reason: last.reason, delayMs });
      await options.sleep(delayMs);
    }
    options.onProgress({ type: 'request', what, url, attempt: attempt + 1 });
    const outcome = await attemptGet(url, what, options);
    if ('body' in outcome) return outcome;
    last = outcome;
  }
  const attempts = options.retries + 1;
  throw new TresorError(
    'COLLATERAL_FETCH_FAILED',
    `${what}: ${url} failed ${attempts} time${attempts === 1 ? '' : 's'}, last with ${last?.reason ?? 'no answer'}`,
  );
}

/** Exponential backoff: base, 2·base, 4·base, … (capped, so the doubling never overflows the limit check). */
function backoffMs(retry: number, options: HttpGetOptions): number {
  return Math.min(options.retryBaseDelayMs * 2 ** Math.min(retry, 30), options.maxRetryDelayMs);
}

async function attemptGet(
  url: string,
  what: string,
  options: HttpGetOptions,
): Promise<HttpDocument | Transient> {
  // One signal covers the headers and the body: a server that trickles bytes is cut off too.
  const signal = AbortSignal.timeout(options.timeoutMs);
  let response: Response;
  try {
    response = await options.fetch(url, { signal, redirect: 'follow', headers: { accept: '*/*' } });
  } catch (cause) {
    return { reason: networkProblem(cause, options.timeoutMs) };
  }
  if (response.status === 200) {
    try {
      return {
        url,
        headers: response.headers,
        body: await readBoundedBody(response, what, url, options.maxResponseBytes),
      };
    } catch (cause) {
      if (cause instanceof TresorError) throw cause;
      return { reason: networkProblem(cause, options.timeoutMs) };
    }
  }
  await discardBody(response);
  if (response.status === 429 || response.status >= 500) {
    const wait = retryAfterMs(response.headers.get('retry-after'), options.now());
    return { reason: `HTTP ${response.status}`, ...(wait === undefined ? {} : { retryAfterMs: wait }) };
  }
  if (response.status === 404) {
    throw new TresorError('COLLATERAL_NOT_FOUND', `${what}: ${url} answered HTTP 404 (no such document)`);
  }
  throw new TresorError('COLLATERAL_FETCH_FAILED', `${what}: ${url} answered HTTP ${response.status}`);
}

/**
 * Reads the body, refusing it as soon as it is known to exceed `limit`: from Content-Length before a
 * byte is read, else while counting, so a hostile or broken server cannot make us buffer without end.
 */
async function readBoundedBody(
  response: Response,
  what: string,
  url: string,
  limit: number,
): Promise<Uint8Array> {
  const tooLarge = (size: string) =>
    new TresorError(
      'COLLATERAL_RESPONSE_TOO_LARGE',
      `${what}: ${url} sent ${size}; at most ${limit} bytes are accepted`,
    );
  const declared = Number(response.headers.get('content-length') ?? Number.NaN);
  if (declared > limit) {
    await discardBody(response);
    throw tooLarge(`${declared} bytes`);
  }
  if (response.body === null) return new Uint8Array(0);
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    length += value.length;
    if (length > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(`more than ${limit} bytes`);
    }
    chunks.push(value);
  }
  return concatBytes(...chunks);
}

/** Frees the connection of a response whose body is not wanted. */
async function discardBody(response: Response): Promise<void> {
  await response.body?.cancel().catch(() => undefined);
}

function networkProblem(cause: unknown, timeoutMs: number): string {
  if (cause instanceof DOMException && (cause.name === 'TimeoutError' || cause.name === 'AbortError')) {
    return `no complete answer within ${timeoutMs} ms`;
  }
  // undici reports "fetch failed" with the system error (ECONNREFUSED, ENOTFOUND, …) as its cause.
  const inner = cause instanceof Error && cause.cause instanceof Error ? cause.cause.message : undefined;
  const outer = cause instanceof Error ? cause.message : String(cause);
  return inner === undefined ? outer : `${outer} (${inner})`;
}
