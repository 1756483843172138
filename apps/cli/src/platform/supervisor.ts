import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { PARENT_PID_ENV } from '../signals.js';

/**
 * Runs the local platform's processes (trust, serving, gateway) and keeps them honest: every
 * child's output goes to `<logDir>/<name>.log` (and the last lines stay in memory, to be shown when
 * it dies), each start waits until the child says it is ready, and the platform is never left
 * half-running: a child that exits on its own makes `failed` settle, after which the caller stops
 * the rest. Stopping sends SIGTERM, then SIGKILL after a grace period.
 */

/**
 * Asks whether a started child is ready: resolves true when it is; resolves false or throws while
 * it is not (a thrown error's message is kept as the reason, shown if the deadline passes).
 */
export type ReadinessProbe = (signal: AbortSignal) => Promise<boolean>;

export interface ChildSpec {
  /** `trust`, `serving`, `gateway`: names the log file and every message. */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  readonly ready: ReadinessProbe;
}

/** A child that exited while the platform was meant to run (or before it became ready). */
export interface ChildExit {
  readonly name: string;
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** The last lines it wrote (stdout and stderr, in order), at most `ringLines`. */
  readonly lastLines: readonly string[];
  readonly logFile: string;
}

export interface SupervisorOptions {
  readonly logDir: string;
  /** Time between SIGTERM and SIGKILL. */
  readonly graceMs?: number;
  /** How long one child may take to become ready. */
  readonly readyTimeoutMs?: number;
  /** Time between readiness probes. */
  readonly pollIntervalMs?: number;
  /** Lines of output kept in memory per child. */
  readonly ringLines?: number;
}

/** Services finish requests in flight and wipe decrypted models on SIGTERM; give them time. */
export const DEFAULT_GRACE_MS = 15_000;
/**
 * Generous on purpose: the platform is ready in seconds on an idle 2-core machine (the issue's
 * budget is 15 s for all three), but a loaded machine must not turn slowness into a failure.
 */
export const DEFAULT_READY_TIMEOUT_MS = 120_000;
export const DEFAULT_POLL_INTERVAL_MS = 250;
export const DEFAULT_RING_LINES = 20;
/** Longest line kept in memory; a child printing a huge line must not grow the buffer without bound. */
const MAX_LINE_CHARS = 2_000;

/** The last `capacity` lines of a byte stream (partial last line included). */
export class LineRing {
  readonly #capacity: number;
  readonly #lines: string[] = [];
  #partial = '';

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  push(text: string): void {
    const parts = (this.#partial + text).split('\n');
    this.#partial = (parts.pop() ?? '').slice(-MAX_LINE_CHARS);
    for (const line of parts) {
      this.#lines.push(line.length > MAX_LINE_CHARS ? `${line.slice(0, MAX_LINE_CHARS)}…` : line);
      if (this.#lines.length > this.#capacity) this.#lines.shift();
    }
  }

  lines(): string[] {
    const all = this.#partial === '' ? [...this.#lines] : [...this.#lines, this.#partial];
    return all.slice(-this.#capacity);
  }
}

interface RunningChild {
  readonly spec: ChildSpec;
  readonly process: ChildProcess;
  readonly ring: LineRing;
  readonly log: WriteStream;
  readonly logFile: string;
  readonly exited: Promise<ChildExit>;
  /** Set once stop() asked it to go, so its exit is expected. */
  stopping: boolean;
}

export class Supervisor {
  readonly #options: Required<SupervisorOptions>;
  readonly #children: RunningChild[] = [];
  #stopped = false;
  #reportFailure: (exit: ChildExit) => void = () => undefined;
  /** Settles with the first child that exits on its own after it was started. Never rejects. */
  readonly failed: Promise<ChildExit>;
  readonly #killOnExit = (): void => {
    // The supervisor's own process is going away (uncaught error, process.exit): take the children along.
    for (const child of this.#children) {
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill('SIGKILL');
    }
  };

  constructor(options: SupervisorOptions) {
    this.#options = {
      logDir: options.logDir,
      graceMs: options.graceMs ?? DEFAULT_GRACE_MS,
      readyTimeoutMs: options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS,
      pollIntervalMs: options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS,
      ringLines: options.ringLines ?? DEFAULT_RING_LINES,
    };
    this.failed = new Promise((resolveFailure) => {
      this.#reportFailure = resolveFailure;
    });
    process.on('exit', this.#killOnExit);
  }

  /** Names of the children running now, in start order. */
  get running(): readonly string[] {
    return this.#children
      .filter((c) => c.process.exitCode === null && c.process.signalCode === null)
      .map((c) => c.spec.name);
  }

  /** Process ids of the children started so far (exited ones included). */
  get pids(): readonly number[] {
    return this.#children.flatMap((c) => (c.process.pid === undefined ? [] : [c.process.pid]));
  }

  /**
   * Starts one child and waits until its readiness probe answers true.
   *
   * @throws TresorError CHILD_PROCESS_FAILED when it exits first or is not ready within the
   *   deadline (it is then stopped); the message carries its last log lines
   */
  async start(spec: ChildSpec): Promise<void> {
    if (this.#stopped) throw new TresorError('INTERNAL_ERROR', 'the platform is stopping');
    const child = this.#spawn(spec);
    const deadline = AbortSignal.timeout(this.#options.readyTimeoutMs);
    const exitedEarly = child.exited.then((exit) => ({ kind: 'exited' as const, exit }));
    const waiting = { lastReason: undefined as string | undefined };
    const becameReady = this.#waitReady(spec, deadline, waiting).then((ready) => ({
      kind: 'ready' as const,
      ready,
    }));
    const outcome = await Promise.race([exitedEarly, becameReady]);
    if (outcome.kind === 'ready' && outcome.ready) return;
    if (outcome.kind === 'exited') throw childFailed(outcome.exit, 'exited before it was ready');
    await this.#stopChild(child);
    const reason = waiting.lastReason === undefined ? '' : `; its last answer: ${waiting.lastReason}`;
    throw childFailed(
      await child.exited,
      `was not ready within ${String(this.#options.readyTimeoutMs / 1000)} s and was stopped${reason}`,
    );
  }

  /** Stops every child, last started first: SIGTERM, then SIGKILL after the grace period. Idempotent. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const child of [...this.#children].reverse()) await this.#stopChild(child);
    process.off('exit', this.#killOnExit);
  }

  #spawn(spec: ChildSpec): RunningChild {
    mkdirSync(this.#options.logDir, { recursive: true, mode: 0o700 });
    const logFile = join(this.#options.logDir, `${spec.name}.log`);
    const log = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
    const ring = new LineRing(this.#options.ringLines);
    const proc = spawn(spec.command, [...spec.args], {
      cwd: spec.cwd,
      // The child stops by itself should this process die without stopping it (kill -9).
      env: { ...spec.env, [PARENT_PID_ENV]: String(process.pid) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const record = (chunk: Buffer): void => {
      log.write(chunk);
      ring.push(chunk.toString('utf8'));
    };
    proc.stdout.on('data', record);
    proc.stderr.on('data', record);
    const exited = new Promise<ChildExit>((resolveExit) => {
      let finished = false;
      const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
        if (finished) return;
        finished = true;
        log.end(() => {
          resolveExit({ name: spec.name, code, signal, lastLines: ring.lines(), logFile });
        });
      };
      // 'close' fires after the output pipes are drained, so the last lines are in the ring.
      proc.once('close', finish);
      proc.once('error', (err) => {
        ring.push(`${spec.name} could not be started: ${err.message}\n`);
        if (proc.pid === undefined) finish(null, null);
      });
    });
    const child: RunningChild = { spec, process: proc, ring, log, logFile, exited, stopping: false };
    void exited.then((exit) => {
      if (!child.stopping) this.#reportFailure(exit);
    });
    this.#children.push(child);
    return child;
  }

  async #waitReady(
    spec: ChildSpec,
    deadline: AbortSignal,
    waiting: { lastReason: string | undefined },
  ): Promise<boolean> {
    while (!deadline.aborted) {
      try {
        if (await spec.ready(deadline)) return true;
      } catch (err) {
        // Not listening yet, or answering "not ready": ask again. (An answer cut off by the
        // deadline itself says nothing about the child: keep the reason before it.)
        if (!isAborted(deadline)) waiting.lastReason = err instanceof Error ? err.message : String(err);
      }
      await sleep(this.#options.pollIntervalMs, deadline);
    }
    return false;
  }

  async #stopChild(child: RunningChild): Promise<void> {
    child.stopping = true;
    const proc = child.process;
    if (proc.exitCode === null && proc.signalCode === null && proc.pid !== undefined) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), this.#options.graceMs);
      try {
        await child.exited;
      } finally {
        clearTimeout(timer);
      }
      return;
    }
    await child.exited;
  }
}

function childFailed(exit: ChildExit, what: string): TresorError {
  return new TresorError('CHILD_PROCESS_FAILED', `${exit.name} ${what} (${describeExit(exit)})`, {
    details: { exit },
  });
}

/** The child exit a CHILD_PROCESS_FAILED from {@link Supervisor.start} carries, to print its last lines. */
export function childExitOf(err: unknown): ChildExit | undefined {
  if (!(err instanceof TresorError) || err.code !== 'CHILD_PROCESS_FAILED') return undefined;
  const exit = err.details?.exit;
  return typeof exit === 'object' && exit !== null && 'lastLines' in exit ? (exit as ChildExit) : undefined;
}

/** `exit code 3`, `signal SIGKILL`. */
export function describeExit(exit: Pick<ChildExit, 'code' | 'signal'>): string {
  if (exit.signal !== null) return `signal ${exit.signal}`;
  return exit.code === null ? 'it could not be started' : `exit code ${String(exit.code)}`;
}

/** The block printed when a child dies: its name, how it ended, its last lines and where the log is. */
export function renderChildExit(exit: ChildExit): string {
  const header = `${exit.name} stopped unexpectedly (${describeExit(exit)}); its last log lines (${exit.logFile}):`;
  const body = exit.lastLines.length === 0 ? ['  (no output)'] : exit.lastLines.map((l) => `  | ${l}`);
  return `${[header, ...body].join('\n')}\n`;
}

/** Read through a call: TypeScript narrows `signal.aborted` in a loop as if it could not change. */
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolveSleep) => {
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolveSleep();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
