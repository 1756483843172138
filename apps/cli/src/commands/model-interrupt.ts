import type { CliIo } from '../io.js';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Runs `work` with a signal that SIGINT and SIGTERM abort, so the work can stop at the next
 * chunk and remove its temporary output. Once the work has settled, the received signal is
 * raised again with the default action restored: the shell sees the usual "killed by signal"
 * status (130, 143) instead of an ordinary failure, and scripts stop as they expect.
 */
export async function withInterrupts<T>(io: CliIo, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals): void => {
    received ??= signal;
    controller.abort(new Error(`interrupted by ${signal}`));
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  let completed = false;
  try {
    const result = await work(controller.signal);
    completed = true;
    return result;
  } finally {
    for (const signal of SIGNALS) process.off(signal, onSignal);
    // A signal that arrived after the output was committed changes nothing; report success.
    if (received !== undefined && !completed) {
      io.stderr.write(`interrupted by ${received}: no output was written\n`);
      process.kill(process.pid, received);
    }
  }
}
