import { TresorError } from '@tresor/protocol';
import { utf8Encode } from './bytes.js';
import type { HpkeSenderContext, HpkeSuite, HpkeSuiteIds } from './hpke.js';
import {
  beginClientEncapsulation,
  beginGatewayDecapsulation,
  CHUNKED_REQUEST_LABEL,
  REQUEST_HEADER_LENGTH,
  resolveRequestHeader,
  type OhttpClientOptions,
} from './ohttp-context.js';
import type { OhttpGatewayKeys, OhttpKeyConfig } from './ohttp-keys.js';
import {
  webCryptoOhttpAead,
  type MaybePromise,
  type OhttpAeadBackend,
  type OhttpAeadOptions,
} from './ohttp-aead.js';
import {
  CHUNKED_RESPONSE_LABEL,
  makeResponseNonce,
  ResponseAead,
  responseNonceLength,
  type OhttpResponseOptions,
  type SecretExporter,
} from './ohttp-response-key.js';
import { varintLength, writeVarint } from './varint.js';

/**
 * Chunked Oblivious HTTP (draft-ietf-ohai-chunked-ohttp-08), chunk by chunk. Each chunk is
 * sealed on its own; its position is bound by the nonce (the HPKE sequence number for requests,
 * a counter XORed into the response nonce for responses) and the last chunk by the AAD "final",
 * so reordering, duplication and truncation all fail authentication (§6, §7.1).
 *
 * Wire form of the chunks of either direction:
 *   non-final: varint(len(sealed)) || sealed      (len ≥ 1; plaintext never empty)
 *   final:     0x00 || sealed                     (runs to the end of the message)
 *
 * The streaming API in chunked-ohttp-streams.ts drives these objects; a gateway may drive them
 * directly (for example to seal one chunk per server-sent event).
 *
 * Cost per chunk: with a synchronous AEAD backend (`nodeOhttpAead`) a response chunk is sealed
 * or opened in the same turn, without a promise hop or a thread-pool job; operations are still
 * serialised (a WebCrypto job, or an HPKE request chunk, in flight queues the next call behind it)
 * because each one takes the next nonce.
 */

export const OHTTP_CHUNKED_REQUEST_MEDIA_TYPE = 'message/ohttp-chunked-req';
export const OHTTP_CHUNKED_RESPONSE_MEDIA_TYPE = 'message/ohttp-chunked-res';

/**
 * Plaintext bytes per chunk: senders split at this size and receivers refuse larger chunks by
 * default. §3: implementations MUST accept 16384 octets and senders SHOULD not exceed it.
 */
export const DEFAULT_OHTTP_CHUNK_SIZE = 16384;

const EMPTY = new Uint8Array(0);
const FINAL_AAD = utf8Encode('final');

/** Limits a receiver enforces on the chunks it opens. */
export interface OhttpChunkLimits {
  /** Largest plaintext per chunk (final included) accepted; default DEFAULT_OHTTP_CHUNK_SIZE. */
  readonly maxChunkSize?: number;
}

/** Seals the chunks of one message, in order. */
export interface OhttpChunkSealer {
  /**
   * Seals a non-final chunk and returns its wire form, varint(length) || sealed chunk. The
   * plaintext must not be empty (§6); a receiver may refuse chunks above its limit.
   */
  sealChunk(plaintext: Uint8Array): Promise<Uint8Array>;
  /** Seals the final chunk (may be empty) with AAD "final" and returns 0x00 || sealed chunk. */
  sealFinalChunk(plaintext?: Uint8Array): Promise<Uint8Array>;
  /** True once the final chunk has been sealed; later calls are refused. */
  readonly finished: boolean;
}

/** Opens the chunks of one message, in order; a failed chunk ends the message. */
export interface OhttpChunkOpener {
  /**
   * Opens a non-final sealed chunk (without its length prefix). OHTTP_DECRYPT_FAILED when it does
   * not authenticate at this position or is empty, OHTTP_CHUNK_TOO_LARGE above the limit.
   * Plaintext is returned only after authentication; after any failure every call fails.
   */
  openChunk(sealedChunk: Uint8Array): Promise<Uint8Array>;
  /** Opens the final sealed chunk (AAD "final"); any chunk after it is OHTTP_MESSAGE_MALFORMED. */
  openFinalChunk(sealedChunk: Uint8Array): Promise<Uint8Array>;
  /** True once the final chunk authenticated: the message is complete (§7.1). */
  readonly finished: boolean;
  /** The largest sealed chunk accepted: the plaintext limit plus the AEAD tag. */
  readonly maxSealedChunkSize: number;
}

/**
 * AEAD operations whose nonce advances with every call: one chunk per call, in order. They
 * answer synchronously when their backend does (and then throw instead of rejecting).
 */
interface SequencedSeal {
  /** `headroom` free bytes || sealed, so the chunk is framed in place. */
  seal(plaintext: Uint8Array, aad: Uint8Array, headroom: number): MaybePromise<Uint8Array>;
}
interface SequencedOpen {
  open(ciphertext: Uint8Array, aad: Uint8Array): MaybePromise<Uint8Array>;
}

/**
 * Runs operations one after another, so concurrent callers cannot interleave nonces (the HPKE
 * library advances its sequence number only once a Seal/Open completed). An operation that finds
 * nothing in flight runs at once, and a synchronous one then answers synchronously.
 */
class Serial {
  #tail: Promise<void> = Promise.resolve();
  #inFlight = 0;

  run<T>(op: () => MaybePromise<T>): MaybePromise<T> {
    if (this.#inFlight === 0) {
      const result = op();
      return result instanceof Promise ? this.#track(result) : result;
    }
    return this.#track(this.#tail.then(op));
  }

  #track<T>(result: Promise<T>): Promise<T> {
    this.#inFlight++;
    const settled = (): void => {
      this.#inFlight--;
    };
    this.#tail = result.then(settled, settled);
    return result;
  }
}

/** A synchronous answer or throw as a promise, for the promise-returning public methods. */
async function asPromise<T>(run: () => MaybePromise<T>): Promise<T> {
  return run(); // runs at once; a synchronous throw becomes a rejection
}

/**
 * Fills the `headroom` bytes in front of a sealed chunk with its prefix (§4, §5):
 * varint(len(sealed)) for a non-final chunk, 0x00 for the final one.
 */
function frameInPlace(framed: Uint8Array, headroom: number, final: boolean): Uint8Array {
  if (final) framed[0] = 0;
  else writeVarint(framed, 0, framed.length - headroom);
  return framed;
}

/** The HPKE context seals into a fresh buffer; this copies it behind the headroom. */
class HpkeChunkSeal implements SequencedSeal {
  readonly #sender: HpkeSenderContext;

  constructor(sender: HpkeSenderContext) {
    this.#sender = sender;
  }

  async seal(plaintext: Uint8Array, aad: Uint8Array, headroom: number): Promise<Uint8Array> {
    const sealed = await this.#sender.seal(plaintext, aad);
    const out = new Uint8Array(headroom + sealed.length);
    out.set(sealed, headroom);
    return out;
  }
}

class SequencedChunkSealer implements OhttpChunkSealer {
  readonly #aead: SequencedSeal;
  readonly #tagSize: number;
  readonly #serial = new Serial();
  #finished = false;

  constructor(aead: SequencedSeal, tagSize: number) {
    this.#aead = aead;
    this.#tagSize = tagSize;
  }

  get finished(): boolean {
    return this.#finished;
  }

  sealChunk(plaintext: Uint8Array): Promise<Uint8Array> {
    return asPromise(() => this.sealChunkNow(plaintext));
  }

  sealFinalChunk(plaintext: Uint8Array = EMPTY): Promise<Uint8Array> {
    return asPromise(() => this.sealFinalChunkNow(plaintext));
  }

  /** `sealChunk`, answering synchronously when the AEAD backend does. */
  sealChunkNow(plaintext: Uint8Array): MaybePromise<Uint8Array> {
    return this.#serial.run(() => {
      this.#requireOpen();
      if (plaintext.length === 0) {
        throw new TresorError('INTERNAL_ERROR', 'a non-final chunk must not be empty (chunked OHTTP §6)');
      }
      return this.#sealFramed(plaintext, EMPTY, varintLength(plaintext.length + this.#tagSize), false);
    });
  }

  /** `sealFinalChunk`, answering synchronously when the AEAD backend does. */
  sealFinalChunkNow(plaintext: Uint8Array = EMPTY): MaybePromise<Uint8Array> {
    return this.#serial.run(() => {
      this.#requireOpen();
      this.#finished = true;
      return this.#sealFramed(plaintext, FINAL_AAD, 1, true);
    });
  }

  #sealFramed(
    plaintext: Uint8Array,
    aad: Uint8Array,
    headroom: number,
    final: boolean,
  ): MaybePromise<Uint8Array> {
    const sealed = this.#aead.seal(plaintext, aad, headroom);
    return sealed instanceof Promise
      ? sealed.then((framed) => frameInPlace(framed, headroom, final))
      : frameInPlace(sealed, headroom, final);
  }

  #requireOpen(): void {
    if (this.#finished) {
      throw new TresorError('INTERNAL_ERROR', 'the final chunk was already sealed; nothing may follow it');
    }
  }
}

/** Resolves the receive limit: a positive safe integer, default DEFAULT_OHTTP_CHUNK_SIZE. */
export function maxChunkSizeOf(limits: OhttpChunkLimits): number {
  const max = limits.maxChunkSize ?? DEFAULT_OHTTP_CHUNK_SIZE;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new TresorError('CONFIG_INVALID', `maxChunkSize must be a positive integer, not ${max}`);
  }
  return max;
}

class SequencedChunkOpener implements OhttpChunkOpener {
  readonly #aead: SequencedOpen;
  readonly #tagSize: number;
  readonly maxSealedChunkSize: number;
  readonly #serial = new Serial();
  #state: 'reading' | 'finished' | 'failed' = 'reading';

  constructor(aead: SequencedOpen, tagSize: number, limits: OhttpChunkLimits) {
    this.#aead = aead;
    this.#tagSize = tagSize;
    this.maxSealedChunkSize = maxChunkSizeOf(limits) + tagSize;
  }

  get finished(): boolean {
    return this.#state === 'finished';
  }

  openChunk(sealedChunk: Uint8Array): Promise<Uint8Array> {
    return asPromise(() => this.openChunkNow(sealedChunk));
  }

  openFinalChunk(sealedChunk: Uint8Array): Promise<Uint8Array> {
    return asPromise(() => this.openFinalChunkNow(sealedChunk));
  }

  /** `openChunk`, answering synchronously when the AEAD backend does. */
  openChunkNow(sealedChunk: Uint8Array): MaybePromise<Uint8Array> {
    return this.#serial.run(() => this.#open(sealedChunk, false));
  }

  /** `openFinalChunk`, answering synchronously when the AEAD backend does. */
  openFinalChunkNow(sealedChunk: Uint8Array): MaybePromise<Uint8Array> {
    return this.#serial.run(() => this.#open(sealedChunk, true));
  }

  #open(sealed: Uint8Array, final: boolean): MaybePromise<Uint8Array> {
    if (this.#state === 'finished') {
      throw new TresorError(
        'OHTTP_MESSAGE_MALFORMED',
        'data follows the final chunk of a chunked OHTTP message',
      );
    }
    if (this.#state === 'failed') {
      throw new TresorError(
        'OHTTP_DECRYPT_FAILED',
        'an earlier chunk of this message failed; nothing more is opened',
      );
    }
    try {
      if (sealed.length > this.maxSealedChunkSize) {
        throw new TresorError(
          'OHTTP_CHUNK_TOO_LARGE',
          `a sealed chunk of ${sealed.length} bytes exceeds the limit of ${this.maxSealedChunkSize}`,
        );
      }
      // §6: a non-final chunk with no data is treated as a decryption error.
      if (sealed.length < this.#tagSize + (final ? 0 : 1)) {
        throw new TresorError('OHTTP_DECRYPT_FAILED', 'a chunk is too short to hold an AEAD tag and data');
      }
      const opened = this.#aead.open(sealed, final ? FINAL_AAD : EMPTY);
      if (opened instanceof Promise) {
        return opened.then(
          (plaintext) => this.#opened(plaintext, final),
          (err: unknown) => {
            this.#state = 'failed';
            throw err;
          },
        );
      }
      return this.#opened(opened, final);
    } catch (err) {
      this.#state = 'failed';
      throw err;
    }
  }

  #opened(plaintext: Uint8Array, final: boolean): Uint8Array {
    if (final) this.#state = 'finished';
    return plaintext;
  }
}

/**
 * Seals the next non-final chunk, synchronously when the sealer's AEAD backend is synchronous
 * (for the stream transforms, which then skip a promise hop per chunk).
 */
export function sealChunkNow(sealer: OhttpChunkSealer, plaintext: Uint8Array): MaybePromise<Uint8Array> {
  return sealer instanceof SequencedChunkSealer
    ? sealer.sealChunkNow(plaintext)
    : sealer.sealChunk(plaintext);
}

/** Opens the next non-final chunk, synchronously when the opener's AEAD backend is. */
export function openChunkNow(opener: OhttpChunkOpener, sealedChunk: Uint8Array): MaybePromise<Uint8Array> {
  return opener instanceof SequencedChunkOpener
    ? opener.openChunkNow(sealedChunk)
    : opener.openChunk(sealedChunk);
}

/** Response chunks: Seal/Open under aead_nonce XOR counter, counter from 0, final included. */
class CountedResponseAead implements SequencedSeal, SequencedOpen {
  readonly #aead: ResponseAead;
  #counter = 0;

  constructor(aead: ResponseAead) {
    this.#aead = aead;
  }

  seal(plaintext: Uint8Array, aad: Uint8Array, headroom: number): MaybePromise<Uint8Array> {
    return this.#aead.seal(this.#nextNonce(), plaintext, aad, headroom);
  }

  open(ciphertext: Uint8Array, aad: Uint8Array): MaybePromise<Uint8Array> {
    return this.#aead.open(this.#nextNonce(), ciphertext, aad);
  }

  #nextNonce(): Uint8Array {
    if (this.#counter >= Number.MAX_SAFE_INTEGER) {
      throw new TresorError('INTERNAL_ERROR', 'the chunk counter is exhausted');
    }
    return this.#aead.chunkNonce(this.#counter++);
  }
}

async function responseAead(
  suite: HpkeSuite,
  exporter: SecretExporter,
  enc: Uint8Array,
  responseNonce: Uint8Array,
  backend: OhttpAeadBackend,
): Promise<CountedResponseAead> {
  return new CountedResponseAead(
    await ResponseAead.derive(suite, exporter, CHUNKED_RESPONSE_LABEL, enc, responseNonce, backend),
  );
}

/** The client's side of one chunked exchange. */
export interface ChunkedOhttpClientExchange {
  readonly suite: HpkeSuiteIds;
  /** The first bytes of the encapsulated request: hdr || enc. Send before any chunk. */
  readonly header: Uint8Array;
  /** Seals the request chunks that follow the header. */
  readonly requestSealer: OhttpChunkSealer;
  /** Length of the response nonce that starts the response: max(Nn, Nk). */
  readonly responseNonceLength: number;
  /** The opener for the response that starts with `responseNonce`. */
  openResponse(responseNonce: Uint8Array, limits?: OhttpChunkLimits): Promise<OhttpChunkOpener>;
}

/**
 * Starts a chunked request to the gateway key in `config` (§6.1): SetupBaseS with the chunked
 * info label. HPKE_SUITE_UNSUPPORTED / HPKE_KEY_INVALID as for `encapsulateRequest`.
 */
export async function beginChunkedOhttpClientExchange(
  config: OhttpKeyConfig,
  options: OhttpClientOptions = {},
): Promise<ChunkedOhttpClientExchange> {
  const { suite, sender, prefix } = await beginClientEncapsulation(config, CHUNKED_REQUEST_LABEL, options);
  const backend = options.aead ?? webCryptoOhttpAead;
  const nonceLength = responseNonceLength(suite);
  return {
    suite: suite.toJSON(),
    header: prefix,
    requestSealer: new SequencedChunkSealer(new HpkeChunkSeal(sender), suite.tagSize),
    responseNonceLength: nonceLength,
    async openResponse(responseNonce: Uint8Array, limits: OhttpChunkLimits = {}): Promise<OhttpChunkOpener> {
      if (responseNonce.length !== nonceLength) {
        throw new TresorError('OHTTP_MESSAGE_MALFORMED', `the response nonce must be ${nonceLength} bytes`);
      }
      const aead = await responseAead(suite, sender, sender.enc, responseNonce, backend);
      return new SequencedChunkOpener(aead, suite.tagSize, limits);
    },
  };
}

/** What the gateway starts a chunked response with. */
export interface ChunkedOhttpResponseStart {
  /** The first bytes of the encapsulated response. */
  readonly responseNonce: Uint8Array;
  readonly responseSealer: OhttpChunkSealer;
}

/** The gateway's side of one chunked exchange. */
export interface ChunkedOhttpGatewayExchange {
  readonly keyId: number;
  readonly suite: HpkeSuiteIds;
  /** Opens the request chunks that follow the header. */
  readonly requestOpener: OhttpChunkOpener;
  /** Starts the response (once): a fresh response nonce and the sealer for its chunks (§6.2). */
  beginResponse(options?: OhttpResponseOptions): Promise<ChunkedOhttpResponseStart>;
}

/**
 * Length of the header (hdr || enc) of a chunked request, from its first 7 bytes (hdr): 7 + Nenc
 * of the gateway key they name. Fails like `beginChunkedOhttpGatewayExchange` for an unknown key or
 * suite, so a gateway can refuse before reading `enc`.
 */
export function chunkedOhttpRequestHeaderLength(keys: OhttpGatewayKeys, hdr: Uint8Array): number {
  return REQUEST_HEADER_LENGTH + resolveRequestHeader(keys, hdr).suite.encSize;
}

/** What the gateway side of a chunked exchange takes: receive limits and the AEAD backend. */
export interface ChunkedOhttpGatewayOptions extends OhttpChunkLimits, OhttpAeadOptions {}

/**
 * Opens a chunked request from its exact header bytes (hdr || enc). OHTTP_KEY_ID_UNKNOWN,
 * HPKE_SUITE_UNSUPPORTED, OHTTP_MESSAGE_MALFORMED (wrong header length) or OHTTP_DECRYPT_FAILED
 * (an `enc` no key can use). `options.aead` picks the backend that seals the response.
 */
export async function beginChunkedOhttpGatewayExchange(
  keys: OhttpGatewayKeys,
  header: Uint8Array,
  options: ChunkedOhttpGatewayOptions = {},
): Promise<ChunkedOhttpGatewayExchange> {
  const limits: OhttpChunkLimits = { maxChunkSize: maxChunkSizeOf(options) };
  const backend = options.aead ?? webCryptoOhttpAead;
  const resolved = resolveRequestHeader(keys, header.subarray(0, REQUEST_HEADER_LENGTH));
  const { suite } = resolved;
  if (header.length !== REQUEST_HEADER_LENGTH + suite.encSize) {
    throw new TresorError(
      'OHTTP_MESSAGE_MALFORMED',
      `a chunked request header for this key is ${REQUEST_HEADER_LENGTH + suite.encSize} bytes, not ${header.length}`,
    );
  }
  const enc = header.slice(REQUEST_HEADER_LENGTH);
  const recipient = await beginGatewayDecapsulation(resolved, enc, CHUNKED_REQUEST_LABEL, options.aead);
  let responseStarted = false;
  return {
    keyId: resolved.key.config.keyId,
    suite: suite.toJSON(),
    requestOpener: new SequencedChunkOpener(recipient, suite.tagSize, limits),
    async beginResponse(options: OhttpResponseOptions = {}): Promise<ChunkedOhttpResponseStart> {
      if (responseStarted) {
        throw new TresorError('INTERNAL_ERROR', 'a chunked OHTTP request gets exactly one response');
      }
      responseStarted = true;
      const responseNonce = makeResponseNonce(responseNonceLength(suite), options.testResponseNonce);
      const aead = await responseAead(suite, recipient, enc, responseNonce, backend);
      return { responseNonce, responseSealer: new SequencedChunkSealer(aead, suite.tagSize) };
    },
  };
}
