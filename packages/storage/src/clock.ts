/** The time source, injected so that checkpoints and retention can be tested at fixed instants. */
export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

/** Cancels a scheduled task; a run in progress finishes. */
export type Cancel = () => void;

/** Runs a task periodically; injected so tests drive the schedule themselves. */
export interface Scheduler {
  every(intervalMs: number, task: () => Promise<void>): Cancel;
}

/**
 * Node timers. Each run is scheduled after the previous one finished, so a slow run (a large
 * purge) never overlaps the next; the timer is unref'd so it never keeps a process alive alone.
 */
export const timerScheduler: Scheduler = {
  every(intervalMs, task) {
    let timer: NodeJS.Timeout | undefined;
    let cancelled = false;
    const schedule = (): void => {
      timer = setTimeout(() => {
        // Tasks report their own failures (RetentionJob's onError); a rejection must not stop the schedule.
        void task()
          .catch(() => undefined)
          .finally(() => {
            if (!cancelled) schedule();
          });
      }, intervalMs);
      timer.unref();
    };
    schedule();
    return () => {
      cancelled = true;
      clearTimeout(timer);
    };
  },
};
