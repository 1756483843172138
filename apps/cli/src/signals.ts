/**
 * The variable `tresor up` sets on each platform process it starts: its own pid. A service that
 * finds it stops when that process is gone, so that a `tresor up` killed with SIGKILL (which it
 * cannot intercept) does not leave trust, serving and gateway running, holding the ports and
 * serving's decrypted models. Not inherited any further (apps/cli/src/platform/children.ts).
 */
export const PARENT_PID_ENV = 'TRESOR_PARENT_PID';

/** Why a serving command stops: a signal, or its `tresor up` being gone. */
export type StopReason = NodeJS.Signals | 'parent exited';

export interface UntilSignalOptions {
  /** Where PARENT_PID_ENV is read; default the process environment. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** How often the parent is checked (ms); default 500. */
  readonly pollMs?: number;
  /** The current parent pid; injected by tests. */
  readonly ppid?: () => number;
}

/**
 * Resolves with the first SIGINT or SIGTERM, for commands that serve until they are told to stop —
 * or with 'parent exited' once the process named by PARENT_PID_ENV is no longer this one's parent
 * (orphans are re-parented to init or a subreaper, so the parent pid changes). A value that is not
 * a pid is ignored: the variable only ever comes from `tresor up`.
 */
export function untilSignal(options: UntilSignalOptions = {}): Promise<StopReason> {
  const env = options.env ?? process.env;
  const ppid = options.ppid ?? ((): number => process.ppid);
  const parent = parentPid(env[PARENT_PID_ENV]);
  return new Promise((resolveStop) => {
    const stop = (reason: StopReason): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      clearInterval(timer);
      resolveStop(reason);
    };
    const check = (): void => {
      if (parent !== undefined && ppid() !== parent) stop('parent exited');
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const timer = parent === undefined ? undefined : setInterval(check, options.pollMs ?? 500);
    check();
  });
}

function parentPid(text: string | undefined): number | undefined {
  if (text === undefined || !/^[1-9]\d{0,9}$/.test(text)) return undefined;
  return Number(text);
}
