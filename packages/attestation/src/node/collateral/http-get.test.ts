import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeCollateralServer } from '../../../../../test/support/fake-collateral-services.js';
import { resolveFetchOptions, type CollateralFetchEvent } from './fetch-options.js';
import { httpGetDocument } from './http-get.js';
import { retryAfterMs } from './retry-after.js';

const NOW = new Date('2025-07-01T00:00:00Z');

describe('retryAfterMs (RFC 9110 §10.2.3)', () => {
  it('reads delay-seconds and the three HTTP-date forms', () => {
    expect(retryAfterMs('120', NOW)).toBe(120_000);
    expect(retryAfterMs(' 0 ', NOW)).toBe(0);
    expect(retryAfterMs('Tue, 01 Jul 2025 00:00:30 GMT', NOW)).toBe(30_000);
    expect(retryAfterMs('Tuesday, 01-Jul-25 00:01:00 GMT', NOW)).toBe(60_000);
    expect(retryAfterMs('Tue Jul  1 00:00:05 2025', NOW)).toBe(5_000);
    expect(retryAfterMs('Mon, 30 Jun 2025 00:00:00 GMT', NOW)).toBe(0);
  });

  it('ignores what is neither, so the caller falls back to backoff', () => {
    for (const value of [
      null,
      '',
      '-5',
      '1.5',
      'soon',
      '2025-07-01T00:00:30Z',
      'Tue, 01 Jul 2025 00:00:30 UTC',
    ]) {
      expect(retryAfterMs(value, NOW)).toBeUndefined();
    }
  });

  it('never returns NaN or a negative wait', () => {
    fc.assert(
      fc.property(fc.string(), (value) => {
        const ms = retryAfterMs(value, NOW);
        if (ms !== undefined) expect(ms).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 10_000 },
    );
  });
});

describe('httpGetDocument', () => {
  let server: FakeCollateralServer;
  let delays: number[];
  let events: CollateralFetchEvent[];

  beforeAll(async () => {
    server = await FakeCollateralServer.start();
  });
  afterAll(() => server.close());
  beforeEach(() => {
    server.reset();
    delays = [];
    events = [];
  });

  const options = (overrides: { retries?: number; timeoutMs?: number; maxResponseBytes?: number } = {}) =>
    resolveFetchOptions({
      directory: '/nonexistent',
      now: () => NOW,
      sleep: (ms) => {
        delays.push(ms);
        return Promise.resolve();
      },
      onProgress: (event) => events.push(event),
      ...overrides,
    });
  const get = (path: string, overrides?: Parameters<typeof options>[0]) =>
    httpGetDocument(`${server.url}${path}`, 'test document', options(overrides));

  it('returns the body and headers of a 200, read in pieces', async () => {
    const body = new Uint8Array(100_000).map((_, i) => i % 251);
    server.serve('/doc', { body, headers: { 'x-issuer-chain': 'abc' }, chunkSize: 4096 });
    const document = await get('/doc');
    expect(document.body).toEqual(body);
    expect(document.headers.get('x-issuer-chain')).toBe('abc');
    expect(events).toEqual([
      { type: 'request', what: 'test document', url: `${server.url}/doc`, attempt: 1 },
    ]);
  });

  it('maps 404 to COLLATERAL_NOT_FOUND without retrying', async () => {
    await expect(get('/missing')).rejects.toMatchObject({ code: 'COLLATERAL_NOT_FOUND' });
    expect(server.requests).toEqual(['/missing']);
  });

  it('retries 429 after the Retry-After the service asks for', async () => {
    server.serve('/busy', { status: 429, headers: { 'retry-after': '7' } }, { body: 'ok' });
    const document = await get('/busy');
    expect(new TextDecoder().decode(document.body)).toBe('ok');
    expect(delays).toEqual([7_000]);
    expect(server.requests).toEqual(['/busy', '/busy']);
    expect(events.map((e) => e.type)).toEqual(['request', 'retry', 'request']);
  });

  it('retries 5xx with exponential backoff, then fails with COLLATERAL_FETCH_FAILED', async () => {
    server.serve('/down', { status: 503 });
    await expect(get('/down', { retries: 3 })).rejects.toMatchObject({
      code: 'COLLATERAL_FETCH_FAILED',
      message: expect.stringContaining('failed 4 times, last with HTTP 503') as unknown,
    });
    expect(delays).toEqual([1_000, 2_000, 4_000]);
    expect(server.requests).toHaveLength(4);
  });

  it('recovers when a 5xx is followed by a 200', async () => {
    server.serve('/flaky', { status: 502 }, { status: 500 }, { body: 'fine' });
    expect(new TextDecoder().decode((await get('/flaky')).body)).toBe('fine');
    expect(delays).toEqual([1_000, 2_000]);
  });

  it('gives up at once when Retry-After asks for longer than allowed', async () => {
    server.serve('/later', { status: 429, headers: { 'retry-after': '3600' } });
    await expect(get('/later')).rejects.toMatchObject({
      code: 'COLLATERAL_FETCH_FAILED',
      message: expect.stringContaining('asked to wait 3600 s') as unknown,
    });
    expect(delays).toEqual([]);
  });

  it('fails other statuses with COLLATERAL_FETCH_FAILED without retrying', async () => {
    server.serve('/forbidden', { status: 403 });
    await expect(get('/forbidden')).rejects.toMatchObject({ code: 'COLLATERAL_FETCH_FAILED' });
    expect(server.requests).toHaveLength(1);
  });

  it('refuses an oversized body by Content-Length and while streaming', async () => {
    server.serve('/big', { body: new Uint8Array(2048) });
    await expect(get('/big', { maxResponseBytes: 1024 })).rejects.toMatchObject({
      code: 'COLLATERAL_RESPONSE_TOO_LARGE',
    });
    // Without a Content-Length (chunked transfer) the limit is enforced while counting.
    server.serve('/stream', { body: new Uint8Array(8192), chunkSize: 1000 });
    await expect(get('/stream', { maxResponseBytes: 4096 })).rejects.toMatchObject({
      code: 'COLLATERAL_RESPONSE_TOO_LARGE',
      message: expect.stringContaining('more than 4096 bytes') as unknown,
    });
    expect(delays).toEqual([]);
  });

  it('retries a connection that is refused, then reports the network error', async () => {
    const closed = await FakeCollateralServer.start();
    const url = closed.url;
    await closed.close();
    await expect(httpGetDocument(`${url}/x`, 'test document', options({ retries: 1 }))).rejects.toMatchObject(
      { code: 'COLLATERAL_FETCH_FAILED', message: expect.stringContaining('ECONNREFUSED') as unknown },
    );
    expect(delays).toEqual([1_000]);
  });

  it('times out a service that does not answer', async () => {
    const hanging = (_url: string | URL | Request, init?: RequestInit) =>
      new Promise<Response>((_resolve, reject) => {
        init?.signal?.addEventListener('abort', () => {
          reject(init.signal?.reason as Error);
        });
      });
    const resolved = { ...options({ retries: 0, timeoutMs: 50 }), fetch: hanging };
    await expect(httpGetDocument('https://kds.invalid/x', 'test document', resolved)).rejects.toMatchObject({
      code: 'COLLATERAL_FETCH_FAILED',
      message: expect.stringContaining('no complete answer within 50 ms') as unknown,
    });
  });
});
