import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.js';

/** A commit whose completion the test decides. */
interface PendingCommit {
  readonly items: readonly number[];
  succeed(): void;
  fail(error: unknown): void;
}

function controlledCommits(): {
  commits: PendingCommit[];
  commit: (items: readonly number[]) => Promise<string[]>;
} {
  const commits: PendingCommit[] = [];
  return {
    commits,
    commit: (items) =>
      new Promise<string[]>((resolve, reject) => {
        commits.push({
          items,
          succeed: () => {
            resolve(items.map((i) => `committed ${i}`));
          },
          fail: reject,
        });
      }),
  };
}

/** Runs deferred batches only when the test says so. */
function manualDefer(): { defer: (run: () => void) => void; runAll: () => void; readonly pending: number } {
  const queue: (() => void)[] = [];
  return {
    defer: (run) => queue.push(run),
    runAll: () => {
      for (const run of queue.splice(0)) run();
    },
    get pending() {
      return queue.length;
    },
  };
}

const settled = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('group commit', () => {
  it('commits items submitted in the same turn together, each caller getting its own output', async () => {
    const { commits, commit } = controlledCommits();
    const group = new GroupCommit(commit, 100);
    const outputs = Promise.all([1, 2, 3, 4].map((i) => group.submit(i)));
    await settled();
    expect(commits.map((c) => c.items)).toEqual([[1, 2, 3, 4]]);
    commits[0]!.succeed();
    expect(await outputs).toEqual(['committed 1', 'committed 2', 'committed 3', 'committed 4']);
  });

  it('acknowledges nothing before its commit, and queues what arrives meanwhile for the next one', async () => {
    const { commits, commit } = controlledCommits();
    const defer = manualDefer();
    const group = new GroupCommit(commit, 100, defer.defer);
    const done: number[] = [];
    const track = (i: number): Promise<void> =>
      group.submit(i).then(() => {
        done.push(i);
      });
    const first = [track(1), track(2)];
    defer.runAll();
    expect(commits.map((c) => c.items)).toEqual([[1, 2]]);
    const second = [track(3), track(4), track(5)];
    await settled();
    // One batch at a time: the second waits for the first to settle before it is even scheduled.
    expect(defer.pending).toBe(0);
    expect(done).toEqual([]);
    commits[0]!.succeed();
    await Promise.all(first);
    expect(done).toEqual([1, 2]);
    expect(defer.pending).toBe(1);
    defer.runAll();
    expect(commits.map((c) => c.items)).toEqual([
      [1, 2],
      [3, 4, 5],
    ]);
    expect(done).toEqual([1, 2]);
    commits[1]!.succeed();
    await Promise.all(second);
    expect(done).toEqual([1, 2, 3, 4, 5]);
  });

  it('splits a queue longer than maxBatch over several commits, in order', async () => {
    const batches: number[][] = [];
    const group = new GroupCommit((items: readonly number[]) => {
      batches.push([...items]);
      return Promise.resolve(items.map((i) => i * 10));
    }, 3);
    const outputs = await Promise.all(Array.from({ length: 8 }, (_, i) => group.submit(i)));
    expect(batches).toEqual([
      [0, 1, 2],
      [3, 4, 5],
      [6, 7],
    ]);
    expect(outputs).toEqual([0, 10, 20, 30, 40, 50, 60, 70]);
  });

  it('fails exactly the callers of a failed commit, with its error, and goes on with the next batch', async () => {
    const { commits, commit } = controlledCommits();
    const group = new GroupCommit(commit, 100);
    const failed = [group.submit(1), group.submit(2)].map((p) => p.catch((e: unknown) => e));
    await settled();
    const later = group.submit(3);
    const disk = new Error('disk full');
    commits[0]!.fail(disk);
    expect(await Promise.all(failed)).toEqual([disk, disk]);
    await settled();
    commits[1]!.succeed();
    expect(await later).toBe('committed 3');
  });

  it('refuses a commit that answers for a different number of items', async () => {
    const group = new GroupCommit(() => Promise.resolve(['only one']), 100);
    const answers = await Promise.allSettled([group.submit(1), group.submit(2)]);
    for (const answer of answers) {
      expect(answer).toMatchObject({ status: 'rejected', reason: { code: 'INTERNAL_ERROR' } });
    }
  });

  it('commits every item exactly once, in submission order, never acknowledging one early (property)', async () => {
    // A script of steps: submit n items, run the deferred batch, finish the oldest commit (ok or failing).
    const step = fc.oneof(
      fc.record({ kind: fc.constant('submit' as const), count: fc.integer({ min: 1, max: 5 }) }),
      fc.record({ kind: fc.constant('defer' as const) }),
      fc.record({ kind: fc.constant('finish' as const), ok: fc.boolean() }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(step, { maxLength: 30 }),
        fc.integer({ min: 1, max: 4 }),
        async (script, max) => {
          const { commits, commit } = controlledCommits();
          const defer = manualDefer();
          const group = new GroupCommit(commit, max, defer.defer);
          const outcome = new Map<number, string>();
          const finished = new Set<PendingCommit>();
          let next = 0;
          const submitted: Promise<void>[] = [];
          const finishOldest = async (ok: boolean): Promise<void> => {
            const open = commits.find((c) => !finished.has(c));
            if (open === undefined) return;
            finished.add(open);
            if (ok) open.succeed();
            else open.fail(new Error('failed'));
            await settled();
          };
          for (const s of script) {
            if (s.kind === 'submit') {
              for (let k = 0; k < s.count; k++) {
                const item = next++;
                submitted.push(
                  group.submit(item).then(
                    (out) => void outcome.set(item, out),
                    () => void outcome.set(item, 'failed'),
                  ),
                );
              }
            } else if (s.kind === 'defer') defer.runAll();
            else await finishOldest(s.ok);
            await settled();
            // Only items of finished commits have an outcome.
            const acknowledged = [...outcome.keys()].sort((a, b) => a - b);
            const ofFinished = commits.filter((c) => finished.has(c)).flatMap((c) => [...c.items]);
            expect(acknowledged).toEqual([...ofFinished].sort((a, b) => a - b));
          }
          // Drain: run and finish everything left.
          while (defer.pending > 0 || commits.some((c) => !finished.has(c))) {
            defer.runAll();
            await finishOldest(true);
          }
          await Promise.all(submitted);
          const all = commits.flatMap((c) => [...c.items]);
          expect(all).toEqual(Array.from({ length: next }, (_, i) => i));
          for (const c of commits) expect(c.items.length).toBeLessThanOrEqual(max);
          expect(outcome.size).toBe(next);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
