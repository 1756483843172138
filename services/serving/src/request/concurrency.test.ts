import { describe, expect, it } from 'vitest';
import { ConcurrencyLimiter } from './concurrency.js';

describe('ConcurrencyLimiter', () => {
  it('grants up to maxConcurrent at once, queues up to maxQueue in order, refuses the rest with SERVING_BUSY', async () => {
    const limiter = new ConcurrencyLimiter(2, 2);
    const a = await limiter.acquire();
    const b = await limiter.acquire();
    const order: string[] = [];
    const c = limiter.acquire().then((release) => {
      order.push('c');
      return release;
    });
    const d = limiter.acquire().then((release) => {
      order.push('d');
      return release;
    });
    expect(limiter.active).toBe(2);
    expect(limiter.queued).toBe(2);
    expect(() => limiter.acquire()).toThrow(expect.objectContaining({ code: 'SERVING_BUSY' }));
    a();
    a(); // idempotent: a second call frees nothing more
    const releaseC = await c;
    expect(order).toEqual(['c']);
    expect(limiter.active).toBe(2);
    b();
    const releaseD = await d;
    expect(order).toEqual(['c', 'd']);
    releaseC();
    releaseD();
    expect(limiter.active).toBe(0);
    expect(limiter.queued).toBe(0);
  });

  it('drops a waiter whose signal aborts and refuses an already aborted one', async () => {
    const limiter = new ConcurrencyLimiter(1, 1);
    const held = await limiter.acquire();
    const controller = new AbortController();
    const waiting = limiter.acquire(controller.signal);
    controller.abort(new Error('gone'));
    await expect(waiting).rejects.toThrow('gone');
    expect(limiter.queued).toBe(0);
    await expect(limiter.acquire(AbortSignal.abort(new Error('already')))).rejects.toThrow('already');
    held();
    expect(limiter.active).toBe(0);
  });

  it('refuses at once when the queue holds nothing (maxQueue 0)', async () => {
    const limiter = new ConcurrencyLimiter(1, 0);
    const held = await limiter.acquire();
    expect(() => limiter.acquire()).toThrow(expect.objectContaining({ code: 'SERVING_BUSY' }));
    held();
    (await limiter.acquire())();
  });
});
