import { Readable } from 'node:stream';
import { TresorError } from '@tresor/protocol';
import {
  beginChunkedOhttpClientExchange,
  beginChunkedOhttpGatewayExchange,
  ByteQueue,
  ChunkFrameReader,
  chunkedOhttpRequestHeaderLength,
  concatBytes,
  DEFAULT_OHTTP_CHUNK_SIZE,
  openChunkNow,
  REQUEST_HEADER_LENGTH,
  sealChunkNow,
  type ChunkedOhttpGatewayExchange,
  type ChunkedOhttpGatewayOptions,
  type ChunkedOhttpResponseStart,
  type OhttpChunkSealer,
  type OhttpClientOptions,
  type OhttpGatewayKeys,
  type OhttpKeyConfig,
} from '@tresor/crypto';

/**
 * Chunked OHTTP (draft-ietf-ohai-chunked-ohttp-08) on the gateway's relay path, driven chunk by
 * chunk instead of through WHATWG stream pipelines. A streamed answer crosses the gateway once per
 * server-sent event (opened from the replica, re-sealed to the client); a web-stream pipeline per
 * direction cost a dozen promises and queue records per event and kept some hundred objects per
 * request alive for its whole life, which under concurrency-64 streaming was most of what the
 * gateway allocated and promoted to V8's old space (bench/RESULTS.md, "Gateway memory").
 * Backpressure is Node's: a chunk is sealed only when the client's side wants more, and the
 * replica's answer is read only as fast as it is relayed.
 */

/** `bytes` in views of at most DEFAULT_OHTTP_CHUNK_SIZE, the plaintext of one non-final chunk each. */
function* chunkPieces(bytes: Uint8Array): Generator<Uint8Array> {
  for (let offset = 0; offset < bytes.length; offset += DEFAULT_OHTTP_CHUNK_SIZE) {
    yield bytes.subarray(offset, offset + DEFAULT_OHTTP_CHUNK_SIZE);
  }
}

/** What `write` and `end` reject with once the body was destroyed without an error. */
function clientGone(): Error {
  const err = new Error('the client closed the response stream');
  err.name = 'AbortError';
  return err;
}

/** The opened Binary HTTP request of a `message/ohttp-chunked-req` received whole. */
export interface OpenedChunkedRequest {
  readonly request: Uint8Array;
  readonly exchange: ChunkedOhttpGatewayExchange;
}

/**
 * Opens a chunked request whose bytes were read whole (a gateway reads request bodies whole).
 * Fails like `acceptChunkedOhttpRequest`: OHTTP_KEY_ID_UNKNOWN, HPKE_SUITE_UNSUPPORTED,
 * OHTTP_DECRYPT_FAILED, OHTTP_CHUNK_TOO_LARGE, OHTTP_STREAM_TRUNCATED.
 */
export async function openChunkedRequest(
  keys: OhttpGatewayKeys,
  bytes: Uint8Array,
  options: ChunkedOhttpGatewayOptions = {},
): Promise<OpenedChunkedRequest> {
  const truncated = (): TresorError =>
    new TresorError('OHTTP_STREAM_TRUNCATED', 'the chunked OHTTP request ended inside its header');
  if (bytes.length < REQUEST_HEADER_LENGTH) throw truncated();
  const headerLength = chunkedOhttpRequestHeaderLength(keys, bytes.subarray(0, REQUEST_HEADER_LENGTH));
  if (bytes.length < headerLength) throw truncated();
  const exchange = await beginChunkedOhttpGatewayExchange(keys, bytes.subarray(0, headerLength), options);
  const opener = exchange.requestOpener;
  const queue = new ByteQueue();
  // The caller's bytes are its own copy of the body and never change: no copy here.
  queue.pushBorrowed(bytes.subarray(headerLength));
  const frames = new ChunkFrameReader(queue, opener.maxSealedChunkSize);
  const parts: Uint8Array[] = [];
  for (let sealed = frames.next(); sealed !== undefined; sealed = frames.next()) {
    parts.push(await opener.openChunk(sealed));
  }
  parts.push(await opener.openFinalChunk(frames.finish()));
  return { request: parts.length === 1 ? parts[0]! : concatBytes(...parts), exchange };
}

/**
 * The body of a `message/ohttp-chunked-res`: the response nonce, then one sealed chunk per
 * `write` (split at DEFAULT_OHTTP_CHUNK_SIZE), the final chunk at `end`. `write` and `end`
 * resolve once the body is below its high-water mark again, so a client that reads slowly slows
 * the writer down instead of growing a queue here. Once the body is destroyed (the client went
 * away) they reject, which stops the writer and with it the request to the replica.
 */
export class SealedResponseBody {
  readonly body: Readable;
  readonly #sealer: OhttpChunkSealer;
  #waiting: { resolve: () => void; reject: (err: unknown) => void } | undefined;
  #pulled = false;
  #gone: Error | undefined;

  constructor(start: ChunkedOhttpResponseStart, highWaterMark = 16 * 1024) {
    this.#sealer = start.responseSealer;
    this.body = new Readable({
      highWaterMark,
      read: () => {
        this.#pulled = true;
        const waiting = this.#waiting;
        this.#waiting = undefined;
        waiting?.resolve();
      },
      destroy: (err, callback) => {
        this.#gone = err ?? clientGone();
        const waiting = this.#waiting;
        this.#waiting = undefined;
        waiting?.reject(this.#gone);
        callback(err);
      },
    });
    this.body.push(start.responseNonce);
  }

  /** Seals `plaintext` (not empty) as one chunk, or several above the chunk size. */
  async write(plaintext: Uint8Array): Promise<void> {
    for (const piece of chunkPieces(plaintext)) {
      this.#requireOpen();
      const sealed = sealChunkNow(this.#sealer, piece);
      await this.#push(sealed instanceof Promise ? await sealed : sealed);
    }
  }

  /** Seals the final (empty) chunk and ends the body. */
  async end(): Promise<void> {
    this.#requireOpen();
    const last = await this.#sealer.sealFinalChunk();
    this.#requireOpen();
    this.body.push(last);
    this.body.push(null);
  }

  /** Ends the body with an error (the client sees a truncated, unauthenticated stream). */
  abort(err: unknown): void {
    this.body.destroy(err instanceof Error ? err : new Error('the response failed', { cause: err }));
  }

  #push(chunk: Uint8Array): Promise<void> | undefined {
    this.#requireOpen();
    this.#pulled = false;
    // A push that fills the buffer may already have been answered by read() (no wake-up lost).
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- read() runs inside push()
    if (this.body.push(chunk) || this.#pulled) return undefined;
    return new Promise((resolve, reject) => {
      this.#waiting = { resolve, reject };
    });
  }

  #requireOpen(): void {
    if (this.#gone !== undefined) throw this.#gone;
  }
}

/**
 * Seals a Binary HTTP request to a replica's key as one `message/ohttp-chunked-req` (the header,
 * the request in chunks of at most DEFAULT_OHTTP_CHUNK_SIZE, an empty final chunk) and opens the
 * replica's `message/ohttp-chunked-res` answer as it arrives.
 */
export async function sealChunkedRequest(
  config: OhttpKeyConfig,
  request: Uint8Array,
  options: OhttpClientOptions = {},
): Promise<{ bytes: Uint8Array; open(body: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> }> {
  const exchange = await beginChunkedOhttpClientExchange(config, options);
  const parts: Uint8Array[] = [exchange.header];
  for (const piece of chunkPieces(request)) parts.push(await exchange.requestSealer.sealChunk(piece));
  parts.push(await exchange.requestSealer.sealFinalChunk());
  return {
    bytes: concatBytes(...parts),
    async *open(body) {
      const queue = new ByteQueue();
      let frames: ChunkFrameReader | undefined;
      let opener: Awaited<ReturnType<typeof exchange.openResponse>> | undefined;
      const opened: Uint8Array[] = [];
      for await (const piece of body) {
        if (frames === undefined || opener === undefined) {
          queue.push(piece);
          if (queue.length < exchange.responseNonceLength) continue;
          opener = await exchange.openResponse(queue.take(exchange.responseNonceLength));
          frames = new ChunkFrameReader(queue, opener.maxSealedChunkSize);
        } else {
          // Borrowed: every complete chunk is opened before control is given up, and what is left
          // of the piece (a partial chunk) is copied by keepBorrowed first.
          frames.pushBorrowed(piece);
        }
        for (let sealed = frames.next(); sealed !== undefined; sealed = frames.next()) {
          const plaintext = openChunkNow(opener, sealed);
          if (plaintext instanceof Promise) {
            frames.keepBorrowed();
            opened.push(await plaintext);
          } else {
            opened.push(plaintext);
          }
        }
        frames.keepBorrowed();
        for (const plaintext of opened) yield plaintext;
        opened.length = 0;
      }
      if (frames === undefined || opener === undefined) {
        throw new TresorError(
          'OHTTP_STREAM_TRUNCATED',
          'the chunked OHTTP response ended inside its response nonce',
        );
      }
      const last = await opener.openFinalChunk(frames.finish());
      if (last.length > 0) yield last;
    },
  };
}
