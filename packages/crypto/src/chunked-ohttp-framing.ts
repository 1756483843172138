import { TresorError } from '@tresor/protocol';
import { tryReadVarint } from './varint.js';

/**
 * Incremental parsing of the chunk framing of chunked OHTTP (draft-ietf-ohai-chunked-ohttp-08
 * §4, §5) from a byte stream that arrives in arbitrary pieces: QUIC varint lengths (RFC 9000
 * §16), a zero length announcing the final chunk, which runs to the end of the stream.
 */

/** Bytes received but not yet consumed, kept in the pieces they arrived in (copied once). */
export class ByteQueue {
  readonly #parts: Uint8Array[] = [];
  /** Offset of the first unconsumed byte in #parts[0]. */
  #head = 0;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Appends a copy, so a producer that reuses its buffer cannot change queued bytes. */
  push(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    this.#parts.push(bytes.slice());
    this.#length += bytes.length;
  }

  /** The first `n` bytes (n ≤ length), copied, without consuming them. */
  peek(n: number): Uint8Array {
    return this.#copy(n, false);
  }

  /** Removes and returns the first `n` bytes (n ≤ length). */
  take(n: number): Uint8Array {
    return this.#copy(n, true);
  }

  #copy(n: number, consume: boolean): Uint8Array {
    if (n > this.#length) throw new TresorError('INTERNAL_ERROR', 'byte queue read past its end');
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

  push(bytes: Uint8Array): void {
    this.#queue.push(bytes);
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
    const varintLength = 1 << (queue.peek(1)[0]! >> 6);
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
