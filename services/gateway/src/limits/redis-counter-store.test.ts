import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RedisCounterStore } from './redis-counter-store.js';

/**
 * Without a Redis server: ioredis is loaded on the first connect only (redis-counter-store.ts), and
 * a Redis that cannot be reached fails closed with STORAGE_UNAVAILABLE. The counters themselves run
 * against a real Redis in test/integration/gateway-redis.test.ts.
 */
const codeOf = async (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => 'resolved',
    (err: unknown) => (err as { code?: unknown }).code,
  );

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => {
    if (server === undefined) resolve();
    else
      server.close(() => {
        resolve();
      });
  });
  server = undefined;
});

/** A port that accepts a connection and closes it at once (not a Redis). */
async function closingPort(): Promise<number> {
  server = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

describe('RedisCounterStore.connect without a Redis', () => {
  it('refuses a port where nothing listens', async () => {
    expect(await codeOf(RedisCounterStore.connect('redis://127.0.0.1:1'))).toBe('STORAGE_UNAVAILABLE');
  });

  it('refuses a server that closes the connection instead of answering PING', async () => {
    const port = await closingPort();
    expect(await codeOf(RedisCounterStore.connect(`redis://127.0.0.1:${String(port)}`))).toBe(
      'STORAGE_UNAVAILABLE',
    );
  });

  it('does not echo the password of the URL', async () => {
    const err: unknown = await RedisCounterStore.connect('redis://:secret-pw@127.0.0.1:1').catch(
      (e: unknown) => e,
    );
    expect(err).toMatchObject({ code: 'STORAGE_UNAVAILABLE' });
    expect((err as Error).message).not.toContain('secret-pw');
  });
});
