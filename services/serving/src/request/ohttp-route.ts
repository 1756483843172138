import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  acceptChunkedOhttpRequest,
  concatBytes,
  decapsulateRequest,
  decodeBhttpRequest,
  encodeBhttpResponse,
  OHTTP_CHUNKED_REQUEST_MEDIA_TYPE,
  OHTTP_CHUNKED_RESPONSE_MEDIA_TYPE,
  OHTTP_REQUEST_MEDIA_TYPE,
  OHTTP_RESPONSE_MEDIA_TYPE,
  type BhttpField,
  type OhttpGatewayKeys,
} from '@tresor/crypto';
import { nodeOhttpAead } from '@tresor/crypto/node';
import {
  RECEIPT_HEADER,
  RECEIPT_SSE_PREFIX,
  TresorError,
  USAGE_REQUEST_HEADER,
  USAGE_SSE_PREFIX,
} from '@tresor/protocol';
import { sendShapedError, toTresorError, type ErrorShaper } from '@tresor/server-kit';
import type { Engine } from '../engine/engine.js';
import type { ConcurrencyLimiter, ReleaseSlot } from './concurrency.js';
import { answerInnerRequest, openAiError, type InnerResponse } from './inner-api.js';
import { requireMeshPeer } from './mesh-peer.js';
import { sha256Hex, type ReceiptSigner } from './receipts.js';
import { streamingContentChunk, streamingResponseEnd, streamingResponseHead } from './streaming-bhttp.js';
import { readAhead } from './read-ahead.js';

export const OHTTP_PATH = '/v1/ohttp';
/** Largest encapsulated request, and largest inner request read from a chunked one. */
export const MAX_SEALED_REQUEST_BYTES = 8 * 1024 * 1024;

/** What the route needs from a replica that is ready. */
export interface ServingRuntime {
  readonly engine: Engine;
  /** SHA-256 of a loaded model's plaintext, by id (receipts name it). */
  modelSha256(model: string): string | undefined;
}

export interface OhttpRouteOptions {
  readonly keys: OhttpGatewayKeys;
  /** The ready runtime, or throws the reason the replica is not ready. */
  readonly runtime: () => ServingRuntime;
  readonly limiter: ConcurrencyLimiter;
  readonly retryAfterSeconds: number;
  readonly receipts: ReceiptSigner;
  /** SHA-256 of the replica's boot evidence, which receipts name. */
  readonly evidenceSha256: () => string;
  readonly replicaId: string;
  /** SPIFFE IDs allowed to call; null when the configuration does not require mTLS (local mode). */
  readonly allowedPeers: ReadonlySet<string> | null;
}

const encoder = new TextEncoder();

async function* pieces(
  source: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
): AsyncIterable<Uint8Array> {
  if (!(source instanceof ReadableStream)) {
    yield* source;
    return;
  }
  const reader = source.getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    reader.releaseLock();
  }
}

async function readAll(
  source: AsyncIterable<Uint8Array> | ReadableStream<Uint8Array>,
  limit: number,
  what: string,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for await (const part of pieces(source)) {
    size += part.length;
    if (size > limit)
      throw new TresorError('REQUEST_BODY_TOO_LARGE', `${what} is larger than ${limit} bytes`);
    parts.push(part);
  }
  return concatBytes(...parts);
}

/**
 * Refusals outside the sealed channel, in OpenAI's shape; SERVING_BUSY with Retry-After, and any
 * refusal naming `details.retryAfterSeconds` (ENGINE_UNAVAILABLE while the engine restarts).
 */
function outerShaper(retryAfterSeconds: number): ErrorShaper {
  return (error) => {
    const hinted = error.details?.retryAfterSeconds;
    const retryAfter =
      error.code === 'SERVING_BUSY' ? retryAfterSeconds : typeof hinted === 'number' ? hinted : undefined;
    return {
      status: error.status,
      body: openAiError(error),
      ...(retryAfter === undefined ? {} : { headers: { 'retry-after': String(retryAfter) } }),
    };
  };
}

interface Exchange {
  readonly requestSha256: string;
  readonly runtime: ServingRuntime;
  /** The request carried USAGE_REQUEST_HEADER: streams end with a `: tresor-usage` line. */
  readonly reportUsage: boolean;
}

/**
 * The BHTTP answer of a JSON inner response, with its receipt header when it names a model:
 * known-length for single-shot OHTTP; over chunked OHTTP the same indeterminate framing as a
 * stream (head, one content chunk, end) in one sealed chunk, so readers handle one framing.
 */
async function jsonAnswer(
  response: Extract<InnerResponse, { kind: 'json' }>,
  exchange: Exchange,
  options: OhttpRouteOptions,
  framing: 'known-length' | 'indeterminate',
): Promise<Uint8Array> {
  const content = encoder.encode(JSON.stringify(response.body));
  const headers: BhttpField[] = [['content-type', 'application/json']];
  if (response.model !== undefined) {
    headers.push([RECEIPT_HEADER, await receipt(options, exchange, response.model, sha256Hex(content))]);
  }
  if (framing === 'indeterminate') {
    return concatBytes(
      streamingResponseHead(response.status, headers),
      streamingContentChunk(content),
      streamingResponseEnd(),
    );
  }
  return encodeBhttpResponse({ informational: [], status: response.status, headers, content, trailers: [] });
}

function receipt(
  options: OhttpRouteOptions,
  exchange: Exchange,
  model: string,
  responseSha256: string,
): Promise<string> {
  return options.receipts.sign({
    requestSha256: exchange.requestSha256,
    responseSha256,
    model,
    modelSha256: exchange.runtime.modelSha256(model) ?? '',
    evidenceSha256: options.evidenceSha256(),
    replica: options.replicaId,
  });
}

const STREAM_HEADERS: readonly BhttpField[] = [
  ['content-type', 'text/event-stream'],
  ['cache-control', 'no-store'],
];

/**
 * Sends a generation as it happens: the response head, one content chunk per SSE event (each
 * its own sealed chunk), then the receipt comment line over every SSE byte before it. A failure
 * after the head is reported as an OpenAI error event; a client gone stops everything.
 */
async function streamAnswer(
  response: Extract<InnerResponse, { kind: 'stream' }>,
  exchange: Exchange,
  options: OhttpRouteOptions,
  write: (piece: Uint8Array) => Promise<void>,
  signal: AbortSignal,
): Promise<void> {
  const hash = createHash('sha256');
  await write(streamingResponseHead(200, STREAM_HEADERS));
  try {
    // The engine produces the next event while this one is sealed and written.
    for await (const event of readAhead(response.events)) {
      if (signal.aborted) return;
      const bytes = encoder.encode(event);
      hash.update(bytes);
      await write(streamingContentChunk(bytes));
    }
  } catch (err) {
    if (signal.aborted) return;
    const bytes = encoder.encode(`data: ${JSON.stringify(openAiError(toTresorError(err)))}\n\n`);
    hash.update(bytes);
    await write(streamingContentChunk(bytes));
  }
  if (signal.aborted) return;
  const line = `${RECEIPT_SSE_PREFIX}${await receipt(options, exchange, response.model, hash.digest('hex'))}\n\n`;
  const usage = usageLine(response, exchange);
  await write(
    concatBytes(
      streamingContentChunk(encoder.encode(line)),
      ...(usage === '' ? [] : [streamingContentChunk(encoder.encode(usage))]),
      streamingResponseEnd(),
    ),
  );
}

/** A stream answered over single-shot OHTTP: every event, then the receipt line, in one body. */
async function bufferedStreamAnswer(
  response: Extract<InnerResponse, { kind: 'stream' }>,
  exchange: Exchange,
  options: OhttpRouteOptions,
): Promise<Uint8Array> {
  let body = '';
  try {
    for await (const event of response.events) body += event;
  } catch (err) {
    body += `data: ${JSON.stringify(openAiError(toTresorError(err)))}\n\n`;
  }
  const bytes = encoder.encode(body);
  const line = `${RECEIPT_SSE_PREFIX}${await receipt(options, exchange, response.model, sha256Hex(bytes))}\n\n`;
  return encodeBhttpResponse({
    informational: [],
    status: 200,
    headers: STREAM_HEADERS,
    content: concatBytes(bytes, encoder.encode(line), encoder.encode(usageLine(response, exchange))),
    trailers: [],
  });
}

/** The `: tresor-usage` line after the receipt (USAGE_SSE_PREFIX): for the gateway's accounting, covered by no receipt. */
function usageLine(response: Extract<InnerResponse, { kind: 'stream' }>, exchange: Exchange): string {
  const usage = response.usage();
  if (!exchange.reportUsage || usage === undefined) return '';
  const counts = { prompt_tokens: usage.promptTokens, completion_tokens: usage.completionTokens };
  return `${USAGE_SSE_PREFIX}${JSON.stringify(counts)}\n\n`;
}

function innerRequestOf(bhttp: Uint8Array): {
  method: string;
  path: string;
  body: Uint8Array;
  reportUsage: boolean;
} {
  const { message } = decodeBhttpRequest(bhttp);
  return {
    method: message.method,
    path: message.path,
    body: message.content,
    reportUsage: message.headers.some(([name]) => name.toLowerCase() === USAGE_REQUEST_HEADER),
  };
}

/**
 * `POST /v1/ohttp`: the only way in to the models. The body is `message/ohttp-chunked-req` (or
 * `message/ohttp-req`) sealed to this replica's attested HPKE key — anything else does not
 * decapsulate — over mutual TLS from an allowed mesh peer. Nothing of a body is ever logged.
 */
export function registerOhttpRoute(app: FastifyInstance, options: OhttpRouteOptions): void {
  void app.register((scope, _opts, done) => {
    const shaper = outerShaper(options.retryAfterSeconds);
    scope.setErrorHandler((error: unknown, request, reply) => sendShapedError(shaper, error, request, reply));
    scope.addContentTypeParser(
      [OHTTP_REQUEST_MEDIA_TYPE, OHTTP_CHUNKED_REQUEST_MEDIA_TYPE],
      (_request, payload, parsed) => {
        parsed(null, payload);
      },
    );
    scope.post(OHTTP_PATH, { bodyLimit: MAX_SEALED_REQUEST_BYTES }, (request, reply) =>
      handleOhttp(request, reply, options),
    );
    done();
  });
}

async function handleOhttp(
  request: FastifyRequest,
  reply: FastifyReply,
  options: OhttpRouteOptions,
): Promise<FastifyReply> {
  if (options.allowedPeers !== null) requireMeshPeer(request, options.allowedPeers);
  const runtime = options.runtime();
  const mediaType = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  const chunked = mediaType === OHTTP_CHUNKED_REQUEST_MEDIA_TYPE;
  if (!chunked && mediaType !== OHTTP_REQUEST_MEDIA_TYPE) {
    throw new TresorError(
      'REQUEST_MEDIA_TYPE_UNSUPPORTED',
      `send ${OHTTP_CHUNKED_REQUEST_MEDIA_TYPE} or ${OHTTP_REQUEST_MEDIA_TYPE}`,
    );
  }
  const abort = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) abort.abort(new Error('the client went away'));
  });
  const release: ReleaseSlot = await options.limiter.acquire(abort.signal);
  let handedOff = false;
  try {
    const payload = request.body as Readable;
    if (!chunked) {
      const sealed = await readAll(payload, MAX_SEALED_REQUEST_BYTES, 'the encapsulated request');
      const { request: bhttp, responder } = await decapsulateRequest(options.keys, sealed, {
        aead: nodeOhttpAead,
      });
      const inner = innerRequestOf(bhttp);
      const exchange = { requestSha256: sha256Hex(inner.body), runtime, reportUsage: inner.reportUsage };
      const response = await answerInnerRequest(inner, { engine: runtime.engine, signal: abort.signal });
      const answer =
        response.kind === 'json'
          ? await jsonAnswer(response, exchange, options, 'known-length')
          : await bufferedStreamAnswer(response, exchange, options);
      return await reply
        .header('content-type', OHTTP_RESPONSE_MEDIA_TYPE)
        .header('cache-control', 'no-store')
        .send(Buffer.from(await responder.encapsulateResponse(answer)));
    }
    const accepted = await acceptChunkedOhttpRequest(
      options.keys,
      Readable.toWeb(payload) as ReadableStream<Uint8Array>,
      { aead: nodeOhttpAead }, // synchronous AES-GCM per sealed SSE event (bench/streaming.ts)
    );
    const inner = innerRequestOf(
      await readAll(accepted.request, MAX_SEALED_REQUEST_BYTES, 'the inner request'),
    );
    const exchange = { requestSha256: sha256Hex(inner.body), runtime, reportUsage: inner.reportUsage };
    const response = await answerInnerRequest(inner, { engine: runtime.engine, signal: abort.signal });
    const encapsulator = accepted.createResponseEncapsulator();
    const writer = encapsulator.writable.getWriter();
    const write = (piece: Uint8Array): Promise<void> => writer.write(piece);
    handedOff = true;
    void (async () => {
      try {
        if (response.kind === 'json')
          await write(await jsonAnswer(response, exchange, options, 'indeterminate'));
        else await streamAnswer(response, exchange, options, write, abort.signal);
        if (abort.signal.aborted) await writer.abort(abort.signal.reason);
        else await writer.close();
      } catch (err) {
        abort.abort(err);
        await writer.abort(err).catch(() => undefined);
      } finally {
        release();
      }
    })();
    return await reply
      .header('content-type', OHTTP_CHUNKED_RESPONSE_MEDIA_TYPE)
      .header('cache-control', 'no-store')
      .send(Readable.fromWeb(encapsulator.readable as import('node:stream/web').ReadableStream<Uint8Array>));
  } finally {
    if (!handedOff) release();
  }
}
