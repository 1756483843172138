import { TresorError } from '@tresor/protocol';

const abortReason = (signal: AbortSignal | undefined): Error =>
  signal?.reason instanceof Error ? signal.reason : new Error('the request was aborted while it waited');

/** Gives a slot back; idempotent. */
export type ReleaseSlot = () => void;

interface Waiter {
  readonly grant: (release: ReleaseSlot) => void;
  readonly refuse: (error: unknown) => void;
}

/**
 * At most `maxConcurrent` generations at once, at most `maxQueue` more waiting in arrival order;
 * beyond that a request is refused at once with SERVING_BUSY (the route adds Retry-After), so a
 * gateway can try another replica instead of piling onto this one.
 */
export class ConcurrencyLimiter {
  readonly maxConcurrent: number;
  readonly maxQueue: number;
  #active = 0;
  readonly #queue: Waiter[] = [];

  constructor(maxConcurrent: number, maxQueue: number) {
    this.maxConcurrent = maxConcurrent;
    this.maxQueue = maxQueue;
  }

  get active(): number {
    return this.#active;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /**
   * A slot now, or a place in the queue. Throws SERVING_BUSY synchronously when the queue is full;
   * a waiter whose `signal` aborts leaves the queue and the promise rejects with the reason.
   */
  acquire(signal?: AbortSignal): Promise<ReleaseSlot> {
    if (this.#active < this.maxConcurrent) {
      this.#active++;
      return Promise.resolve(this.#releaser());
    }
    if (this.#queue.length >= this.maxQueue) {
      throw new TresorError(
        'SERVING_BUSY',
        `all ${this.maxConcurrent} generation slots are busy and ${this.maxQueue} requests are waiting`,
      );
    }
    return new Promise<ReleaseSlot>((resolve, reject) => {
      const waiter: Waiter = {
        grant: (release) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(release);
        },
        refuse: reject,
      };
      const onAbort = (): void => {
        const index = this.#queue.indexOf(waiter);
        if (index >= 0) this.#queue.splice(index, 1);
        reject(abortReason(signal));
      };
      if (signal?.aborted === true) {
        reject(abortReason(signal));
        return;
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  #releaser(): ReleaseSlot {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.#queue.shift();
      if (next === undefined) {
        this.#active--;
      } else {
        // The slot passes straight to the next waiter: active stays the same.
        next.grant(this.#releaser());
      }
    };
  }
}
