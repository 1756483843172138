import type { Redis } from 'ioredis';
import { TresorError } from '@tresor/protocol';
import { windowOf, type CounterStore } from './counter-store.js';

/**
 * Counters in Redis, shared by gateway replicas. One round trip per increment: a Lua script adds
 * and sets the key's time to live (what is left of the window, by the gateway's clock, so a clock
 * difference between gateway and Redis cannot expire a live counter) atomically, so no counter outlives its window even
 * when a replica dies between the two steps. Keys hold only hashed-free ids (tenant and key ids,
 * never secrets): `tresor:gw:<key>:<windowMs>:<index>`.
 */
const INCREMENT = `local v = redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return v`;

export class RedisCounterStore implements CounterStore {
  readonly #redis: Redis;

  private constructor(redis: Redis) {
    this.#redis = redis;
  }

  /** Connects to `url` (redis:// or rediss://) and checks the server answers. @throws TresorError STORAGE_UNAVAILABLE */
  static async connect(url: string): Promise<RedisCounterStore> {
    // ioredis is loaded only when Redis is configured: a gateway on in-memory counters never carries
    // it (about 10 MiB of resident memory, bench/harness/notes.md).
    const { Redis: Client } = await import('ioredis');
    const redis = new Client(url, { lazyConnect: true, maxRetriesPerRequest: 2, enableOfflineQueue: false });
    redis.on('error', () => undefined);
    try {
      await redis.connect();
      await redis.ping();
    } catch (cause) {
      redis.disconnect();
      throw new TresorError('STORAGE_UNAVAILABLE', 'cannot reach Redis for rate limits and quotas', {
        cause,
      });
    }
    return new RedisCounterStore(redis);
  }

  async increment(key: string, amount: number, windowMs: number, nowMs: number): Promise<number> {
    const { index, endsAtMs } = windowOf(windowMs, nowMs);
    try {
      const ttlMs = Math.max(1, endsAtMs - nowMs);
      const total = await this.#redis.eval(INCREMENT, 1, this.#name(key, windowMs, index), amount, ttlMs);
      return Number(total);
    } catch (cause) {
      throw new TresorError('STORAGE_UNAVAILABLE', 'Redis refused a rate-limit update', { cause });
    }
  }

  async read(key: string, windowMs: number, nowMs: number): Promise<number> {
    const { index } = windowOf(windowMs, nowMs);
    try {
      const value = await this.#redis.get(this.#name(key, windowMs, index));
      return value === null ? 0 : Number(value);
    } catch (cause) {
      throw new TresorError('STORAGE_UNAVAILABLE', 'Redis refused a rate-limit read', { cause });
    }
  }

  async close(): Promise<void> {
    await this.#redis.quit().catch(() => undefined);
  }

  #name(key: string, windowMs: number, index: number): string {
    return `tresor:gw:${key}:${windowMs}:${index}`;
  }
}
