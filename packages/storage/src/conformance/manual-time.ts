import type { Cancel, Clock, Scheduler } from '../clock.js';

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  #ms: number;

  constructor(start: Date) {
    this.#ms = start.getTime();
  }

  now(): Date {
    return new Date(this.#ms);
  }

  advance(ms: number): void {
    this.#ms += ms;
  }
}

/** A scheduler whose tasks run when the test calls {@link tick}. */
export class ManualScheduler implements Scheduler {
  readonly #tasks: { intervalMs: number; task: () => Promise<void>; cancelled: boolean }[] = [];

  every(intervalMs: number, task: () => Promise<void>): Cancel {
    const entry = { intervalMs, task, cancelled: false };
    this.#tasks.push(entry);
    return () => {
      entry.cancelled = true;
    };
  }

  /** Intervals of the tasks still scheduled. */
  get intervals(): number[] {
    return this.#tasks.filter((t) => !t.cancelled).map((t) => t.intervalMs);
  }

  /** Runs every task still scheduled once, as if its interval had passed. */
  async tick(): Promise<void> {
    for (const t of this.#tasks) if (!t.cancelled) await t.task();
  }
}
