import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TresorError } from '@tresor/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEchoEngine } from './echo-engine.js';
import {
  superviseUpstream,
  type SuperviseOptions,
  type SupervisedEngine,
  type UpstreamChild,
  type UpstreamEvent,
  type UpstreamExit,
  type UpstreamModelFile,
} from './upstream-process.js';

/**
 * The supervisor's state machine without processes: fake children (a real echo engine in front of
 * a process the test "kills"), a scheduler whose timers the test fires, a clock it moves.
 */

const MODEL = 'demo';
const SHA = 'ab'.repeat(32);
const HEALTH_MS = 7_777; // tells probe timers from restart timers

interface FakeChild {
  readonly child: UpstreamChild;
  die(exit?: UpstreamExit): void;
  readonly killed: () => boolean;
  readonly stopped: () => boolean;
}

function fakeChild(options: { healthy?: boolean } = {}): FakeChild {
  let settle!: (exit: UpstreamExit) => void;
  const exited = new Promise<UpstreamExit>((resolve) => {
    settle = resolve;
  });
  const http = createEchoEngine({ models: [{ id: MODEL }] });
  if (options.healthy === false) void http.close(); // every probe fails
  let killed = false;
  let stopped = false;
  return {
    child: {
      http,
      exited,
      kill: () => {
        killed = true;
        settle({ code: null, signal: 'SIGKILL' });
      },
      stop: async () => {
        stopped = true;
        settle({ code: 0, signal: null });
        await exited;
      },
    },
    die: (exit = { code: null, signal: 'SIGKILL' }) => {
      settle(exit);
    },
    killed: () => killed,
    stopped: () => stopped,
  };
}

interface Timer {
  readonly run: () => void;
  readonly delayMs: number;
  cancelled: boolean;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-supervisor-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let fileCount = 0;
/** A stand-in for a freshly decrypted model file (the supervisor must delete it if unused). */
async function freshFile(sha256 = SHA): Promise<UpstreamModelFile> {
  const path = join(dir, `reloaded-${String(fileCount++)}.model`);
  await writeFile(path, 'plaintext stand-in');
  return { id: MODEL, path, sha256 };
}

/** Lets pending promise callbacks run (the supervisor reacts to exits asynchronously). */
const settle = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
};

function harness(
  overrides: Partial<SuperviseOptions> & { launches?: (() => FakeChild | Error)[]; noReload?: boolean } = {},
) {
  const timers: Timer[] = [];
  const events: UpstreamEvent[] = [];
  const waiters: { kind: UpstreamEvent['kind']; resolve: () => void }[] = [];
  const reloaded: UpstreamModelFile[] = [];
  const launched: FakeChild[] = [];
  const launches = overrides.launches ?? [];
  let now = 0;
  const first = fakeChild();
  const { noReload = false, launches: _launches, ...rest } = overrides;
  const all: SuperviseOptions = {
    model: { id: MODEL, path: join(dir, 'unused'), sha256: SHA },
    launch: (file) => {
      expect(reloaded.at(-1)).toEqual(file);
      const next = launches.shift()?.() ?? fakeChild();
      if (next instanceof Error) return Promise.reject(next);
      launched.push(next);
      return Promise.resolve(next.child);
    },
    reload: async () => {
      const file = await freshFile();
      reloaded.push(file);
      return file;
    },
    restart: { initialDelayMs: 500, maxDelayMs: 2_000, stableAfterMs: 60_000, maxRapidRestarts: 3 },
    health: { intervalMs: HEALTH_MS, timeoutMs: 1_000, failures: 3 },
    onEvent: (event) => {
      events.push(event);
      for (const waiter of waiters.filter((w) => w.kind === event.kind)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    },
    now: () => now,
    schedule: (run, delayMs) => {
      const timer: Timer = { run, delayMs, cancelled: false };
      timers.push(timer);
      return () => {
        timer.cancelled = true;
      };
    },
    ...rest,
  };
  const { reload, ...withoutReload } = all;
  const options: SuperviseOptions =
    noReload || reload === undefined ? withoutReload : { ...withoutReload, reload };
  const engine: SupervisedEngine = superviseUpstream(first.child, options);
  /**
   * Fires the one pending timer of `delayMs`; with `until`, waits for the next event of that kind
   * (a restart does file I/O: no fixed number of turns is enough on a busy machine).
   */
  const fire = async (delayMs: number, until?: UpstreamEvent['kind']): Promise<void> => {
    const due = timers.filter((t) => !t.cancelled && t.delayMs === delayMs);
    expect(due).toHaveLength(1);
    const seen =
      until === undefined
        ? Promise.resolve()
        : new Promise<void>((resolve) => waiters.push({ kind: until, resolve }));
    due[0]!.cancelled = true;
    due[0]!.run();
    await seen;
    await settle();
  };
  const pendingRestarts = (): number[] =>
    timers.filter((t) => !t.cancelled && t.delayMs !== HEALTH_MS).map((t) => t.delayMs);
  return {
    engine,
    first,
    events,
    reloaded,
    launched,
    fire,
    pendingRestarts,
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const kinds = (events: readonly UpstreamEvent[]): string[] => events.map((e) => e.kind);

describe('upstream supervisor', () => {
  it('restarts a dead child after the back-off on a fresh decryption, answering ENGINE_UNAVAILABLE meanwhile', async () => {
    const h = harness();
    const states: string[] = [];
    h.engine.onStateChange((state) => states.push(state));
    expect(await h.engine.listModels()).toEqual([expect.objectContaining({ id: MODEL, sha256: SHA })]);

    h.first.die();
    await settle();
    expect(h.engine.state()).toBe('restarting');
    expect(h.engine.unavailable()).toMatchObject({
      code: 'ENGINE_UNAVAILABLE',
      details: { retryAfterSeconds: 1, failures: 1 },
    });
    await expect(h.engine.listModels()).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
    await expect(h.engine.countTokens(MODEL, 'x')).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
    expect(() => h.engine.chat({ model: MODEL, messages: [{ role: 'user', content: 'x' }] })).not.toThrow();
    expect(h.reloaded).toEqual([]); // nothing happens before the delay
    expect(h.pendingRestarts()).toEqual([500]);

    await h.fire(500, 'restarted');
    expect(h.reloaded).toHaveLength(1);
    expect(h.engine.state()).toBe('serving');
    expect(h.engine.restarts()).toBe(1);
    expect(h.engine.unavailable()).toBeUndefined();
    expect(await h.engine.countTokens(MODEL, 'one two')).toBeGreaterThan(0);
    // The launched child took the file; whatever was left under the old name is gone.
    expect(existsSync(h.reloaded[0]!.path)).toBe(false);
    expect(states).toEqual(['restarting', 'serving']);
    expect(kinds(h.events)).toEqual(['exited', 'restarting', 'restarted']);
    expect(h.events[0]).toEqual({ kind: 'exited', exitCode: null, signal: 'SIGKILL', restarts: 0 });
    await h.engine.close();
    expect(h.launched[0]!.stopped()).toBe(true);
  });

  it('backs off for failures in a row and gives up after maxRapidRestarts, for good', async () => {
    const failures: TresorError[] = [];
    const h = harness({
      launches: [() => new Error('launch failed'), () => fakeChild()],
    });
    h.engine.onFailure((error) => failures.push(error));
    h.first.die({ code: 1, signal: null });
    await settle();
    await h.fire(500, 'restarting'); // the launch fails: failure 2
    expect(h.engine.state()).toBe('restarting');
    expect(h.pendingRestarts()).toEqual([1000]);
    expect(existsSync(h.reloaded[0]!.path)).toBe(false); // the unused plaintext was deleted
    await h.fire(1000, 'restarted'); // starts, then dies at once: failure 3
    h.launched[0]!.die();
    await settle();
    expect(h.pendingRestarts()).toEqual([2000]);
    await h.fire(2000, 'restarted');
    h.launched[1]!.die();
    await settle();
    expect(h.engine.state()).toBe('failed');
    expect(h.pendingRestarts()).toEqual([]);
    expect(failures).toHaveLength(1);
    expect(h.engine.failure()).toMatchObject({
      code: 'ENGINE_UNAVAILABLE',
      details: { failures: 4 },
    });
    expect(h.engine.failure()?.message).toContain('gave up after 4 failures');
    await expect(h.engine.listModels()).rejects.toBe(h.engine.failure());
    expect(kinds(h.events)).toEqual([
      'exited',
      'restarting',
      'restart-failed',
      'restarting',
      'restarted',
      'exited',
      'restarting',
      'restarted',
      'exited',
      'gave-up',
    ]);
    await h.engine.close();
  });

  it('resets the back-off after a stable run', async () => {
    const h = harness();
    h.first.die();
    await settle();
    await h.fire(500, 'restarted');
    h.advance(60_000);
    h.launched[0]!.die();
    await settle();
    expect(h.pendingRestarts()).toEqual([500]);
    await h.engine.close();
  });

  it('refuses a reloaded model whose digest differs from the attested one, and deletes it', async () => {
    const other: UpstreamModelFile[] = [];
    const h = harness({
      reload: async () => {
        const file = await freshFile('cd'.repeat(32));
        other.push(file);
        return file;
      },
    });
    h.first.die();
    await settle();
    await h.fire(500, 'gave-up');
    expect(h.engine.state()).toBe('failed');
    expect(h.engine.failure()).toMatchObject({ code: 'MODEL_LOAD_FAILED' });
    expect(h.launched).toEqual([]);
    expect(existsSync(other[0]!.path)).toBe(false);
    await h.engine.close();
  });

  it('a reload that fails (key not released) counts as a failure and is retried', async () => {
    let calls = 0;
    const h = harness({
      reload: () => {
        calls++;
        return Promise.reject(new Error('trust unreachable'));
      },
    });
    h.first.die();
    await settle();
    await h.fire(500, 'restarting');
    expect(calls).toBe(1);
    expect(h.events.at(-2)).toEqual({ kind: 'restart-failed', code: 'INTERNAL_ERROR', failures: 2 });
    expect(h.pendingRestarts()).toEqual([1000]);
    await h.engine.close();
    expect(h.pendingRestarts()).toEqual([]);
  });

  it('kills a child that fails its health probe the configured number of times in a row, then restarts it', async () => {
    const h = harness({ launches: [() => fakeChild()] });
    // The first child answers: a passing probe schedules the next one.
    await h.fire(HEALTH_MS);
    expect(h.first.killed()).toBe(false);
    void h.first.child.http.close(); // from now on it does not answer
    await h.fire(HEALTH_MS);
    await h.fire(HEALTH_MS);
    expect(h.first.killed()).toBe(false);
    await h.fire(HEALTH_MS, 'restarting');
    expect(h.first.killed()).toBe(true);
    expect(kinds(h.events)).toEqual(['probe-failed', 'probe-failed', 'probe-failed', 'exited', 'restarting']);
    expect(h.events[3]).toMatchObject({ kind: 'exited', killed: true });
    expect(h.engine.unavailable()?.message).toContain('did not answer 3 health probes');
    await h.fire(500, 'restarted');
    expect(h.engine.state()).toBe('serving');
    await h.engine.close();
  });

  it('without reload, a dead child fails the engine for good (no restart)', async () => {
    const h = harness({ noReload: true });
    const failed = new Promise<TresorError>((resolve) => {
      h.engine.onFailure(resolve);
    });
    h.first.die({ code: 137, signal: null });
    expect(await failed).toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
    expect(h.engine.failure()?.message).toContain('exit code 137');
    expect(h.pendingRestarts()).toEqual([]);
    const late: string[] = [];
    h.engine.onStateChange((state) => late.push(state));
    expect(late).toEqual(['failed']);
    await h.engine.close();
  });

  it('close during the back-off cancels the restart; close of a serving engine stops its child', async () => {
    const h = harness();
    h.first.die();
    await settle();
    await h.engine.close();
    expect(h.pendingRestarts()).toEqual([]);
    expect(h.reloaded).toEqual([]);
    await expect(h.engine.listModels()).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE' });

    const other = harness();
    await other.engine.close();
    expect(other.first.stopped()).toBe(true);
    await expect(other.engine.listModels()).rejects.toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
  });
});
