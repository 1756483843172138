import { TresorError } from '@tresor/protocol';

/**
 * Pull-based byte input for sealing and unsealing. Pulling exact lengths lets a file-backed source
 * read each chunk straight into its own buffer (no re-chunking copies) and lets the reader refuse a
 * declared length before anything of that size is allocated.
 */
export interface ByteSource {
  /** Total length of the input when known up front (a file, bytes in memory): lets a reader fail fast. */
  readonly size?: number;
  /**
   * Resolves to exactly `length` bytes, or fewer only when the input ends first (an empty array at
   * the end). The caller owns the returned bytes: a source never reuses them.
   */
  read(length: number): Promise<Uint8Array>;
}

/** A source over bytes already in memory; reads are views, nothing is copied. */
export function byteSourceFromBytes(bytes: Uint8Array): ByteSource {
  let offset = 0;
  return {
    size: bytes.length,
    read(length) {
      const start = offset;
      offset = Math.min(bytes.length, offset + length);
      return Promise.resolve(bytes.subarray(start, offset));
    },
  };
}

/** What `byteSourceFromChunks` reads from. */
export type ByteChunks = ReadableStream<Uint8Array> | AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/** A pull function over any of them (ReadableStream is not async-iterable in every browser). */
function pullerOf(pieces: ByteChunks): () => Promise<IteratorResult<Uint8Array, unknown>> {
  if ('getReader' in pieces) {
    const reader = pieces.getReader();
    return async () => {
      const { done, value } = await reader.read();
      return done ? { done: true, value: undefined } : { done: false, value };
    };
  }
  const iterator =
    Symbol.asyncIterator in pieces ? pieces[Symbol.asyncIterator]() : pieces[Symbol.iterator]();
  return async () => iterator.next();
}

/**
 * A source over pieces of any size (a fetch body, a Node stream, an array). A read allocates at
 * most the bytes that actually arrived, never the requested length up front.
 */
export function byteSourceFromChunks(pieces: ByteChunks): ByteSource {
  const pull = pullerOf(pieces);
  let pending: Uint8Array = new Uint8Array(0);
  let ended = false;
  return {
    async read(length) {
      if (pending.length >= length || ended) {
        const out = pending.subarray(0, Math.min(length, pending.length));
        pending = pending.subarray(out.length);
        return out;
      }
      const parts: Uint8Array[] = [pending];
      let have = pending.length;
      while (have < length) {
        const next = await pull();
        if (next.done === true) {
          ended = true;
          break;
        }
        const piece: unknown = next.value;
        if (!(piece instanceof Uint8Array)) {
          throw new TresorError(
            'INPUT_MALFORMED',
            'a byte stream delivered something other than a Uint8Array',
          );
        }
        parts.push(piece);
        have += piece.length;
      }
      const joined = parts.length === 2 && parts[0]!.length === 0 ? parts[1]! : joinBytes(parts);
      const out = joined.subarray(0, Math.min(length, joined.length));
      pending = joined.subarray(out.length);
      return out;
    },
  };
}

/**
 * Concatenates any number of parts (concatBytes spreads its arguments, which overflows the call
 * stack for the hundreds of thousands of pieces a stream of small reads can produce).
 */
export function joinBytes(parts: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  let total = 0;
  for (const part of parts) total += part.length;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
