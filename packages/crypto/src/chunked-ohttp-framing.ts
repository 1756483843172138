import { TresorError } from '@tresor/protocol';
import { tryReadVarint } from './varint.js';

/**
 * Incremental parsing of the chunk framing of chunked OHTTP (draft-ietf-ohai-chunked-ohttp-08
 * §4, §5) from a byte stream that arrives in arbitrary pieces: QUIC varint lengths (RFC 9000
 * §16), a zero length announcing the final chunk, which runs to the end of the stream.
 */

/**
 * Bytes received but not yet consumed, kept in the pieces they arrived in. A piece is either
 * copied when pushed (`push`) or borrowed (`pushBorrowed`) and copied by `keepBorrowed` only if
 * some of it is still queued then: a stream of whole chunks, one per piece (one server-sent event
 * each), is then parsed and opened without any copy.
 */
export class ByteQueue {
  readonly #parts: Uint8Array[] = [];
  /** Offset of the first unconsumed byte in #parts[0]. */
  #head = 0;
  #length = 0;
  /** Parts from this index on are the producer's buffers, not copies. */
  #borrowedFrom = 0;

  get length(): number {
    return this.#length;
  }

  /**
   * Appends a copy, so a producer that reuses its buffer cannot change queued bytes. (A real
   * copy: `slice` on a Node Buffer would return a view.)
   */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.keepBorrowed();
    this.#parts.push(new Uint8Array(bytes));
    this.#borrowedFrom = this.#parts.length;
    this.#length += bytes.length;
  }

  /**
   * Appends `bytes` without copying. The caller must consume what it needs synchronously and then
   * call `keepBorrowed` before it returns control (an await, a callback), so the producer's buffer
   * is never read after the producer could have reused it.
   */
  pushBorrowed(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#parts.push(bytes);
    this.#length += bytes.length;
  }

  /** Copies what is still queued of the borrowed pieces; views taken earlier stay valid. */
  keepBorrowed(): void {
    for (let i = this.#borrowedFrom; i < this.#parts.length; i++) {
      const start = i === 0 ? this.#head : 0;
      this.#parts[i] = this.#parts[i]!.slice(start);
      if (i === 0) this.#head = 0;
    }
    this.#borrowedFrom = this.#parts.length;
  }

  /** The first byte (the queue must not be empty). */
  first(): number {
    if (this.#length === 0) throw new TresorError('INTERNAL_ERROR', 'byte queue read past its end');
    return this.#parts[0]![this.#head]!;
  }

  /**
   * The first `n` bytes (n ≤ length), without consuming them. Read-only: it may be a view of the
   * queue's own copy.
   */
  peek(n: number): Uint8Array {
    return this.#read(n, false);
  }

  /**
   * Removes and returns the first `n` bytes (n ≤ length). Read-only: when they lie in one piece
   * (a chunk that arrived whole, the usual case) it is a view of the queue's own copy of that
   * piece, not a second copy.
   */
  take(n: number): Uint8Array {
    return this.#read(n, true);
  }

  #read(n: number, consume: boolean): Uint8Array {
    if (n > this.#length) throw new TresorError('INTERNAL_ERROR', 'byte queue read past its end');
    const first = this.#parts[0];
    if (first !== undefined && this.#head + n <= first.length) {
      const view = first.subarray(this.#head, this.#head + n);
      if (consume) {
        this.#head += n;
        this.#length -= n;
        if (this.#head === first.length) {
          this.#parts.shift();
          this.#head = 0;
          this.#borrowedFrom = Math.max(0, this.#borrowedFrom - 1);
        }
      }
      return view;
    }
    const out = new Uint8Array(n);
    let written = 0;
    let part = 0;
    let head = this.#head;
    while (written < n) {
      const source = this.#parts[part]!;
      const count = Math.min(n - written, source.length - head);
      out.set(source.subarray(head, head + count), written);
      written += count;
      head += count;
      if (head === source.length) {
        part++;
        head = 0;
      }
    }
    if (consume) {
      this.#parts.splice(0, part);
      this.#head = head;
      this.#length -= n;
      this.#borrowedFrom = Math.max(0, this.#borrowedFrom - part);
    }
    return out;
  }
}

/**
 * Splits the chunk section of a message into sealed chunks. Every declared length is checked
 * against the limit before any of its bytes are buffered (OHTTP_CHUNK_TOO_LARGE), and a final
 * chunk growing past the limit is refused as soon as it does.
 */
export class ChunkFrameReader {
  readonly #queue: ByteQueue;
  readonly #maxSealed: number;
  #inFinalChunk = false;

  /** `queue` may already hold bytes that followed the message's header or nonce. */
  constructor(queue: ByteQueue, maxSealedChunkSize: number) {
    this.#queue = queue;
    this.#maxSealed = maxSealedChunkSize;
  }

  /** Queues a piece; it is copied only if `push` is called without `borrow` (see ByteQueue). */
  push(bytes: Uint8Array): void {
    this.#queue.push(bytes);
  }

  /**
   * Queues a piece without copying it: the caller takes the complete chunks with `next` and
   * hands each to its opener at once (the opener reads or copies it before returning), then
   * calls `keepBorrowed` before giving up control.
   */
  pushBorrowed(bytes: Uint8Array): void {
    this.#queue.pushBorrowed(bytes);
  }

  /** Copies the unconsumed rest of borrowed pieces (a partial chunk waiting for more bytes). */
  keepBorrowed(): void {
    this.#queue.keepBorrowed();
  }

  /**
   * The next complete non-final sealed chunk, or undefined when more input is needed (or the
   * final chunk has begun: it is complete only at the end of the stream, see `finish`).
   */
  next(): Uint8Array | undefined {
    const queue = this.#queue;
    if (this.#inFinalChunk) {
      this.#checkFinalSize();
      return undefined;
    }
    if (queue.length === 0) return undefined;
    const varintLength = 1 << (queue.first() >> 6);
    if (queue.length < varintLength) return undefined;
    // A value beyond 2^53 is far above any limit, so it is reported as a chunk too large.
    const declared = tryReadVarint(queue.peek(varintLength), 0, 'OHTTP_CHUNK_TOO_LARGE')!.value;
    if (declared === 0) {
      // §4/§5: a zero length announces the final chunk, which runs to the end of the stream.
      queue.take(varintLength);
      this.#inFinalChunk = true;
      this.#checkFinalSize();
      return undefined;
    }
    if (declared > this.#maxSealed) {
      throw new TresorError(
        'OHTTP_CHUNK_TOO_LARGE',
        `a chunk declares ${declared} sealed bytes, above the limit of ${this.#maxSealed}`,
      );
    }
    if (queue.length < varintLength + declared) return undefined;
    queue.take(varintLength);
    return queue.take(declared);
  }

  /**
   * At the end of the stream: the sealed final chunk. OHTTP_STREAM_TRUNCATED when the stream
   * ended before the final chunk began (in a length or inside a non-final chunk).
   */
  finish(): Uint8Array {
    if (!this.#inFinalChunk) {
      throw new TresorError(
        'OHTTP_STREAM_TRUNCATED',
        'the chunked OHTTP stream ended before its final chunk; the message is incomplete',
      );
    }
    return this.#queue.take(this.#queue.length);
  }

  #checkFinalSize(): void {
    if (this.#queue.length > this.#maxSealed) {
      throw new TresorError(
        'OHTTP_CHUNK_TOO_LARGE',
        `the final chunk exceeds the limit of ${this.#maxSealed} sealed bytes`,
      );
    }
  }
}
