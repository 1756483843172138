import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runBlockPipeline, settleAll } from './block-pipeline.js';

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Log {
  events: string[];
  /** Lane → block whose write is still in flight there. */
  busy: Map<number, number>;
}

/** Stages that record the order of events and check that no lane is refilled while in use. */
function recordingStages(
  log: Log,
  delays: readonly number[],
  fail?: { stage: 'read' | 'process' | 'write'; block: number },
) {
  const wait = async (block: number): Promise<void> => {
    for (let i = 0; i < (delays[block % delays.length] ?? 0); i++) await tick();
  };
  return {
    async read(block: number, lane: number) {
      if (log.busy.has(lane))
        throw new Error(
          `lane ${String(lane)} refilled while block ${String(log.busy.get(lane))} is in flight`,
        );
      log.events.push(`read ${String(block)}`);
      await wait(block);
      if (fail?.stage === 'read' && fail.block === block) throw new Error(`read ${String(block)} failed`);
    },
    process(block: number, lane: number) {
      log.events.push(`process ${String(block)}`);
      if (fail?.stage === 'process' && fail.block === block)
        throw new Error(`process ${String(block)} failed`);
      log.busy.set(lane, block);
      return (async () => {
        await wait(block + 1);
        log.busy.delete(lane);
        log.events.push(`written ${String(block)}`);
        if (fail?.stage === 'write' && fail.block === block) throw new Error(`write ${String(block)} failed`);
      })();
    },
  };
}

describe('runBlockPipeline', () => {
  it('reads each block before processing it, processes in order, and never refills a busy lane', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 12 }),
        fc.integer({ min: 2, max: 4 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 5 }),
        async (blockCount, laneCount, delays) => {
          const log: Log = { events: [], busy: new Map() };
          const lanes = Array.from({ length: laneCount }, (_, i) => i);
          await runBlockPipeline(blockCount, lanes, recordingStages(log, delays), undefined);
          const processed = log.events.filter((e) => e.startsWith('process'));
          expect(processed).toEqual(Array.from({ length: blockCount }, (_, i) => `process ${String(i)}`));
          for (let block = 0; block < blockCount; block++) {
            expect(log.events.indexOf(`read ${String(block)}`)).toBeLessThan(
              log.events.indexOf(`process ${String(block)}`),
            );
            // Returns only after every write finished.
            expect(log.events).toContain(`written ${String(block)}`);
          }
          expect(log.busy.size).toBe(0);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('reads the next block while this one is processed (overlap)', async () => {
    const log: Log = { events: [], busy: new Map() };
    await runBlockPipeline(3, [0, 1, 2], recordingStages(log, [0]), undefined);
    expect(log.events.slice(0, 3)).toEqual(['read 0', 'read 1', 'process 0']);
  });

  it('fails with the first error of any stage, after everything it started has settled', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 8 }),
        fc.constantFrom('read' as const, 'process' as const, 'write' as const),
        fc.nat(),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 4 }),
        async (blockCount, stage, at, delays) => {
          const block = at % blockCount;
          const log: Log = { events: [], busy: new Map() };
          const run = runBlockPipeline(
            blockCount,
            [0, 1, 2],
            recordingStages(log, delays, { stage, block }),
            undefined,
          );
          await expect(run).rejects.toThrow(`${stage} ${String(block)} failed`);
          expect(log.busy.size).toBe(0);
          // Nothing after a failed read or process of block b is processed.
          if (stage !== 'write') expect(log.events).not.toContain(`process ${String(block + 1)}`);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("throws the earliest block's failure, even when a later block failed first", async () => {
    const started: string[] = [];
    const run = runBlockPipeline(
      4,
      [0, 1, 2],
      {
        async read(block) {
          started.push(`read ${String(block)}`);
          if (block === 2) throw new Error('read 2 failed');
          await tick();
        },
        async process(block) {
          // Block 0's transform (on a worker) fails only after block 2's read did.
          for (let i = 0; i < 5; i++) await tick();
          if (block === 0) throw new Error('process 0 failed');
        },
      },
      undefined,
    );
    await expect(run).rejects.toThrow('process 0 failed');
    expect(started).toContain('read 2');
  });

  it('stops before the next block once the signal aborts, and refuses fewer than two lanes', async () => {
    const controller = new AbortController();
    const log: Log = { events: [], busy: new Map() };
    const stages = recordingStages(log, [0]);
    const run = runBlockPipeline(
      5,
      [0, 1],
      {
        read: (block, lane) => stages.read(block, lane),
        process(block, lane) {
          if (block === 1) controller.abort(new Error('stop'));
          return stages.process(block, lane);
        },
      },
      controller.signal,
    );
    await expect(run).rejects.toThrow('stop');
    expect(log.events.filter((e) => e.startsWith('process'))).toEqual(['process 0', 'process 1']);
    await expect(runBlockPipeline(1, [0], stages, undefined)).rejects.toMatchObject({
      code: 'INTERNAL_ERROR',
    });
  });
});

describe('settleAll', () => {
  it('waits for every promise before throwing the first rejection', async () => {
    let slowDone = false;
    const slow = (async () => {
      await tick();
      await tick();
      slowDone = true;
    })();
    await expect(settleAll([Promise.reject(new Error('first')), undefined, slow])).rejects.toThrow('first');
    expect(slowDone).toBe(true);
    await expect(settleAll([undefined, Promise.resolve()])).resolves.toBeUndefined();
  });
});
