import { TresorError } from '@tresor/protocol';
import type { HpkeSuiteIds } from './hpke.js';
import {
  beginChunkedOhttpClientExchange,
  beginChunkedOhttpGatewayExchange,
  chunkedOhttpRequestHeaderLength,
  DEFAULT_OHTTP_CHUNK_SIZE,
  maxChunkSizeOf,
  openChunkNow,
  sealChunkNow,
  type ChunkedOhttpGatewayOptions,
  type OhttpChunkLimits,
  type OhttpChunkOpener,
  type OhttpChunkSealer,
} from './chunked-ohttp.js';
import type { MaybePromise } from './ohttp-aead.js';
import { ByteQueue, ChunkFrameReader } from './chunked-ohttp-framing.js';
import { REQUEST_HEADER_LENGTH, type OhttpClientOptions } from './ohttp-context.js';
import type { OhttpGatewayKeys, OhttpKeyConfig } from './ohttp-keys.js';
import type { OhttpResponseOptions } from './ohttp-response-key.js';

/**
 * Chunked OHTTP over WHATWG streams, for both ends and both directions. Sealing transforms turn
 * every written piece into one or more chunks at once (a server-sent event goes out as soon as it
 * is written) and the final, empty chunk at close. Opening streams release a chunk's plaintext
 * only after it authenticated, and error with a TresorError at the first chunk that does not.
 * With a synchronous AEAD backend (`nodeOhttpAead`) a piece is sealed or opened inside the
 * transform call itself: the only per-chunk cost beyond AES-GCM is the stream machinery.
 */

/** How a sender splits what it is given. */
export interface OhttpChunkSizeOptions {
  /** Largest plaintext per chunk sent; default DEFAULT_OHTTP_CHUNK_SIZE (16384, §3). */
  readonly chunkSize?: number;
}

function chunkSizeOf(options: OhttpChunkSizeOptions): number {
  const size = options.chunkSize ?? DEFAULT_OHTTP_CHUNK_SIZE;
  if (!Number.isSafeInteger(size) || size < 1) {
    throw new TresorError('CONFIG_INVALID', `chunkSize must be a positive integer, not ${size}`);
  }
  return size;
}

function requireBytes(value: unknown): Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new TresorError('INPUT_MALFORMED', 'chunked OHTTP streams carry Uint8Array pieces only');
  }
  return value;
}

/** prefix first, then each written piece as ≤ chunkSize non-final chunks, the final chunk at close. */
function sealingTransform(
  start: () => Promise<{ readonly prefix: Uint8Array; readonly sealer: OhttpChunkSealer }>,
  chunkSize: number,
): TransformStream<Uint8Array, Uint8Array> {
  let sealer: OhttpChunkSealer | undefined;
  const started = (): OhttpChunkSealer => {
    if (sealer === undefined) throw new TresorError('INTERNAL_ERROR', 'the sealing stream did not start');
    return sealer;
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    async start(controller) {
      const begun = await start();
      sealer = begun.sealer;
      controller.enqueue(begun.prefix);
    },
    transform(piece, controller) {
      const bytes = requireBytes(piece);
      const sealer = started();
      const sealFrom = (offset: number): MaybePromise<void> => {
        for (; offset < bytes.length; offset += chunkSize) {
          const sealed = sealChunkNow(sealer, bytes.subarray(offset, offset + chunkSize));
          if (sealed instanceof Promise) {
            return sealed.then((chunk) => {
              controller.enqueue(chunk);
              return sealFrom(offset + chunkSize);
            });
          }
          controller.enqueue(sealed);
        }
        return undefined;
      };
      return sealFrom(0);
    },
    async flush(controller) {
      controller.enqueue(await started().sealFinalChunk());
    },
  });
}

/**
 * Opens every complete non-final chunk buffered in `frames`, in order (synchronously if it can).
 * Pieces may have been queued borrowed (not copied): each chunk is handed to the opener, which
 * reads it (node:crypto) or copies it (WebCrypto) before returning — the opener belongs to this
 * stream and the stream runs one transform at a time, so its queue is idle — and the rest of
 * the borrowed pieces is copied before control is given up.
 */
function openBuffered(
  frames: ChunkFrameReader,
  opener: OhttpChunkOpener,
  emit: (plaintext: Uint8Array) => void,
): MaybePromise<void> {
  for (let sealed = frames.next(); sealed !== undefined; sealed = frames.next()) {
    const plaintext = openChunkNow(opener, sealed);
    if (plaintext instanceof Promise) {
      frames.keepBorrowed();
      return plaintext.then((bytes) => {
        emit(bytes);
        return openBuffered(frames, opener, emit);
      });
    }
    emit(plaintext);
  }
  frames.keepBorrowed();
  return undefined;
}

/** At end of input: opens the final chunk (OHTTP_STREAM_TRUNCATED if it never began). */
async function openFinal(
  frames: ChunkFrameReader,
  opener: OhttpChunkOpener,
  emit: (plaintext: Uint8Array) => void,
): Promise<void> {
  const plaintext = await opener.openFinalChunk(frames.finish());
  if (plaintext.length > 0) emit(plaintext);
}

/** The client's streams for one chunked exchange. */
export interface ChunkedOhttpClient {
  readonly suite: HpkeSuiteIds;
  /** Binary HTTP request bytes in, `message/ohttp-chunked-req` bytes out. */
  readonly requestEncapsulator: TransformStream<Uint8Array, Uint8Array>;
  /** `message/ohttp-chunked-res` bytes in, authenticated response bytes out. */
  readonly responseDecapsulator: TransformStream<Uint8Array, Uint8Array>;
}

/** Options for `createChunkedOhttpClient`: the request's sender side and the response's limits. */
export interface ChunkedOhttpClientOptions
  extends OhttpClientOptions, OhttpChunkSizeOptions, OhttpChunkLimits {}

/**
 * Starts a chunked exchange with the gateway key in `config`. Pipe the request through
 * `requestEncapsulator` and the response body through `responseDecapsulator`.
 */
export async function createChunkedOhttpClient(
  config: OhttpKeyConfig,
  options: ChunkedOhttpClientOptions = {},
): Promise<ChunkedOhttpClient> {
  const chunkSize = chunkSizeOf(options);
  const limits: OhttpChunkLimits = { maxChunkSize: maxChunkSizeOf(options) };
  const exchange = await beginChunkedOhttpClientExchange(config, options);
  const requestEncapsulator = sealingTransform(
    () => Promise.resolve({ prefix: exchange.header, sealer: exchange.requestSealer }),
    chunkSize,
  );
  const queue = new ByteQueue();
  let frames: ChunkFrameReader | undefined;
  let opener: OhttpChunkOpener | undefined;
  const responseDecapsulator = new TransformStream<Uint8Array, Uint8Array>({
    transform(piece, controller) {
      const bytes = requireBytes(piece);
      const emit = (plaintext: Uint8Array): void => {
        controller.enqueue(plaintext);
      };
      if (frames !== undefined && opener !== undefined) {
        frames.pushBorrowed(bytes);
        return openBuffered(frames, opener, emit);
      }
      queue.push(bytes);
      if (queue.length < exchange.responseNonceLength) return undefined;
      // The response nonce is complete: derive the response key (once), then open what follows.
      return exchange.openResponse(queue.take(exchange.responseNonceLength), limits).then((begun) => {
        opener = begun;
        frames = new ChunkFrameReader(queue, begun.maxSealedChunkSize);
        return openBuffered(frames, begun, emit);
      });
    },
    async flush(controller) {
      if (frames === undefined || opener === undefined) {
        throw new TresorError(
          'OHTTP_STREAM_TRUNCATED',
          'the chunked OHTTP response ended inside its response nonce',
        );
      }
      await openFinal(frames, opener, (plaintext) => {
        controller.enqueue(plaintext);
      });
    },
  });
  return { suite: exchange.suite, requestEncapsulator, responseDecapsulator };
}

/** The gateway's view of one chunked request, accepted once its header checked out. */
export interface ChunkedOhttpGatewayRequest {
  readonly keyId: number;
  readonly suite: HpkeSuiteIds;
  /** The Binary HTTP request bytes, each chunk released only after it authenticated. */
  readonly request: ReadableStream<Uint8Array>;
  /**
   * Response bytes in, `message/ohttp-chunked-res` bytes out (response nonce first). One
   * response per request: a second call throws.
   */
  createResponseEncapsulator(
    options?: OhttpChunkSizeOptions & OhttpResponseOptions,
  ): TransformStream<Uint8Array, Uint8Array>;
}

/**
 * Reads the header of a `message/ohttp-chunked-req` stream and sets up decryption. Rejects with
 * OHTTP_KEY_ID_UNKNOWN, HPKE_SUITE_UNSUPPORTED, OHTTP_DECRYPT_FAILED or OHTTP_STREAM_TRUNCATED
 * before any body is read, so the gateway can answer with an error status; errors after that
 * (OHTTP_DECRYPT_FAILED, OHTTP_CHUNK_TOO_LARGE, OHTTP_STREAM_TRUNCATED) error `request`.
 * `options.aead` picks the AEAD backend of the response (default WebCrypto).
 */
export async function acceptChunkedOhttpRequest(
  keys: OhttpGatewayKeys,
  encapsulatedRequest: ReadableStream<Uint8Array>,
  options: ChunkedOhttpGatewayOptions = {},
): Promise<ChunkedOhttpGatewayRequest> {
  const checkedLimits: ChunkedOhttpGatewayOptions = {
    maxChunkSize: maxChunkSizeOf(options),
    ...(options.aead === undefined ? {} : { aead: options.aead }),
  };
  const reader = encapsulatedRequest.getReader();
  const queue = new ByteQueue();
  const fill = async (length: number): Promise<void> => {
    while (queue.length < length) {
      const { done, value } = await reader.read();
      if (done) {
        throw new TresorError('OHTTP_STREAM_TRUNCATED', 'the chunked OHTTP request ended inside its header');
      }
      queue.push(requireBytes(value));
    }
  };
  const fail = async (err: unknown): Promise<never> => {
    await reader.cancel(err).catch(() => undefined);
    throw err;
  };

  let exchange;
  try {
    await fill(REQUEST_HEADER_LENGTH);
    const headerLength = chunkedOhttpRequestHeaderLength(keys, queue.peek(REQUEST_HEADER_LENGTH));
    await fill(headerLength);
    exchange = await beginChunkedOhttpGatewayExchange(keys, queue.take(headerLength), checkedLimits);
  } catch (err) {
    return fail(err);
  }
  const { requestOpener } = exchange;
  const frames = new ChunkFrameReader(queue, requestOpener.maxSealedChunkSize);

  const request = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const emit = (plaintext: Uint8Array): void => {
          controller.enqueue(plaintext);
        };
        try {
          for (;;) {
            const sealed = frames.next();
            if (sealed !== undefined) {
              emit(await requestOpener.openChunk(sealed));
              return;
            }
            const { done, value } = await reader.read();
            if (done) {
              await openFinal(frames, requestOpener, emit);
              controller.close();
              return;
            }
            frames.push(requireBytes(value));
          }
        } catch (err) {
          await fail(err);
        }
      },
      async cancel(reason) {
        await reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );

  let responseCreated = false;
  return {
    keyId: exchange.keyId,
    suite: exchange.suite,
    request,
    createResponseEncapsulator(options = {}) {
      if (responseCreated) {
        throw new TresorError('INTERNAL_ERROR', 'a chunked OHTTP request gets exactly one response');
      }
      responseCreated = true;
      const chunkSize = chunkSizeOf(options);
      return sealingTransform(async () => {
        const { responseNonce, responseSealer } = await exchange.beginResponse(
          options.testResponseNonce === undefined ? {} : { testResponseNonce: options.testResponseNonce },
        );
        return { prefix: responseNonce, sealer: responseSealer };
      }, chunkSize);
    },
  };
}
