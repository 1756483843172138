import { TresorError } from '@tresor/protocol';

/** What the pipeline does with each block, through a lane (the buffers one block in flight uses). */
export interface BlockStages<Lane> {
  /** Fills the lane's input buffer with block `block` (file I/O on libuv's threads). */
  read(block: number, lane: Lane): Promise<void>;
  /**
   * Transforms the block the lane holds (AES-GCM, on this thread or a worker) and then starts its
   * write and hash; the lane may be refilled once the returned promise resolves. A transform on
   * this thread may throw at once, before any later block is touched.
   */
  process(block: number, lane: Lane): Promise<void>;
}

/**
 * Runs blocks 0 … blockCount−1 through `stages` in order, reading block i+1 while block i is
 * transformed and earlier blocks are still being written and hashed: the cipher, the disk on
 * libuv's threads and a hashing worker all run at once. Checks `signal` before each block.
 * Returns only after every read, write and hash it started has settled, also on failure, so the
 * caller may then close or remove the files. When several blocks failed, the earliest block's
 * failure is the one thrown (a tampered chunk is reported before a later truncation, as in a
 * sequential pass), whatever order the stages failed in.
 */
export async function runBlockPipeline<Lane>(
  blockCount: number,
  lanes: readonly Lane[],
  stages: BlockStages<Lane>,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (lanes.length < 2) throw new TresorError('INTERNAL_ERROR', 'the block pipeline needs two lanes or more');
  const laneOf = (block: number): Lane => lanes[block % lanes.length]!;
  const failures = new Map<number, unknown>();
  const failed = (block: number, error: unknown): void => {
    if (!failures.has(block)) failures.set(block, error);
  };
  /** Records the block's failure; the rejection still surfaces where the promise is awaited. */
  const tracked = (block: number, start: () => Promise<void>): Promise<void> => {
    let promise: Promise<void>;
    try {
      promise = start();
    } catch (error) {
      failed(block, error);
      throw error;
    }
    promise.catch((error: unknown) => {
      failed(block, error);
    });
    return promise;
  };
  // What each lane is still doing for its last block (transform, write and hash).
  const busy: Promise<void>[] = lanes.map(() => Promise.resolve());
  let reading = blockCount > 0 ? tracked(0, () => stages.read(0, laneOf(0))) : Promise.resolve();
  try {
    for (let block = 0; block < blockCount; block++) {
      await reading;
      const next = block + 1;
      if (next < blockCount) {
        // With two lanes or more, the next block's lane is not this block's.
        await busy[next % lanes.length];
        reading = tracked(next, () => stages.read(next, laneOf(next)));
      }
      signal?.throwIfAborted();
      busy[block % lanes.length] = tracked(block, () => stages.process(block, laneOf(block)));
    }
    await Promise.all(busy);
  } catch (error) {
    await Promise.allSettled([reading, ...busy]);
    const earliest = Math.min(...failures.keys());
    throw failures.has(earliest) ? failures.get(earliest) : error;
  } finally {
    await Promise.allSettled([reading, ...busy]);
  }
}

/**
 * Waits for every promise (undefined entries are skipped), then throws the first rejection: a
 * failed write must not leave its sibling writes running on a file the caller is about to remove.
 */
export async function settleAll(promises: readonly (Promise<void> | undefined)[]): Promise<void> {
  const pending = promises.filter((promise): promise is Promise<void> => promise !== undefined);
  const results = await Promise.allSettled(pending);
  const failed = results.find((result) => result.status === 'rejected');
  if (failed !== undefined) throw failed.reason as Error;
}
