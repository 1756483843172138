import type { AtomicOutputFile } from './atomic-output.js';

/**
 * Writes what a sealing or unsealing generator yields, keeping one write in flight while the
 * generator prepares the next piece, and returns the generator's return value. Stops at the next
 * piece once `signal` aborts, throwing its reason.
 */
export async function drainInto<T>(
  pieces: AsyncGenerator<Uint8Array, T, undefined>,
  output: AtomicOutputFile,
  onWritten: (length: number) => void,
  signal: AbortSignal | undefined,
): Promise<T> {
  let writing: Promise<void> = Promise.resolve();
  try {
    for (;;) {
      signal?.throwIfAborted();
      const next = await pieces.next();
      await writing;
      if (next.done === true) return next.value;
      const piece = next.value;
      writing = output.write(piece).then(() => {
        onWritten(piece.length);
      });
      writing.catch(() => undefined);
    }
  } finally {
    // Never leave a write running on a file that the caller is about to remove.
    await writing.catch(() => undefined);
    await pieces.return(undefined as T).catch(() => undefined);
  }
}
