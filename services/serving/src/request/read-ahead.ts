/**
 * Iterates `source` one item ahead: as soon as an item is handed to the consumer, the next one is
 * already being produced. A streamed answer seals and writes each SSE event while the engine
 * generates the next token, instead of asking for the next token only after the write, so the
 * sealing no longer adds to the time between tokens (bench/serving.ts, tokens per second).
 *
 * At most one item is held back. When the consumer stops early, the source is closed once the
 * request in flight settles (an async generator runs `return()` after its current step); a failure
 * of that last request is swallowed, since nobody is left to receive it. Cancelling the generation
 * itself stays the job of the request's abort signal.
 */
export async function* readAhead<T>(source: AsyncIterable<T>): AsyncGenerator<T, void, undefined> {
  const iterator = source[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<T>> | undefined = iterator.next();
  try {
    for (;;) {
      const result: IteratorResult<T> = await pending;
      pending = undefined;
      if (result.done === true) return;
      pending = iterator.next();
      // Handled below or in `finally`; never an unhandled rejection while the consumer is busy.
      pending.catch(() => undefined);
      yield result.value;
    }
  } finally {
    if (pending !== undefined) {
      await pending.catch(() => undefined);
      await iterator.return?.();
    }
  }
}
