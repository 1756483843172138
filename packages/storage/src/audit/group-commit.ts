import { TresorError } from '@tresor/protocol';

/**
 * Group commit, as databases do it for their own logs: items submitted while a commit is being
 * prepared or is in flight are written together by the next one, so N concurrent appends cost one
 * durable commit (one WAL fsync with SQLite's synchronous=FULL, one round trip with PostgreSQL)
 * instead of N. Nothing is acknowledged early: a caller's promise settles only once the
 * transaction holding its item has committed, or with that transaction's error.
 *
 * A batch starts one event-loop turn after its first item (`defer`, setImmediate by default), so
 * every request that reached the same point in that turn joins it. That turn matters with
 * better-sqlite3, whose commit blocks the thread: without it each commit would hold one item.
 */
export type CommitBatch<I, O> = (items: readonly I[]) => Promise<readonly O[]>;

interface Waiter<I, O> {
  readonly item: I;
  readonly resolve: (output: O) => void;
  readonly reject: (error: unknown) => void;
}

export class GroupCommit<I, O> {
  readonly #commit: CommitBatch<I, O>;
  readonly #maxBatch: number;
  readonly #defer: (run: () => void) => void;
  #waiting: Waiter<I, O>[] = [];
  /** A batch is scheduled or being committed; new items wait for the next one. */
  #busy = false;

  constructor(
    commit: CommitBatch<I, O>,
    maxBatch: number,
    defer: (run: () => void) => void = (run) => setImmediate(run),
  ) {
    this.#commit = commit;
    this.#maxBatch = maxBatch;
    this.#defer = defer;
  }

  /** Resolves with the item's output once the batch holding it has committed. */
  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#busy || this.#waiting.length === 0) return;
    this.#busy = true;
    this.#defer(() => {
      void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    const batch = this.#waiting.splice(0, this.#maxBatch);
    try {
      const outputs = await this.#commit(batch.map((w) => w.item));
      if (outputs.length !== batch.length) {
        throw new TresorError(
          'INTERNAL_ERROR',
          `a batch of ${batch.length} items committed ${outputs.length} outputs`,
        );
      }
      batch.forEach((waiter, i) => {
        waiter.resolve(outputs[i]!);
      });
    } catch (error) {
      for (const waiter of batch) waiter.reject(error);
    } finally {
      this.#busy = false;
      this.#schedule();
    }
  }
}
