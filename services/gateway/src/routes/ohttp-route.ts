import type { FastifyInstance } from 'fastify';
import { TresorError } from '@tresor/protocol';
import {
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
import { sendShapedError, type ErrorShaper } from '@tresor/server-kit';
import { encodeContentChunk, encodeResponseHead, RESPONSE_END } from '../api/bhttp-stream.js';
import { openChunkedRequest, SealedResponseBody } from '../api/chunked-relay.js';
import type { InnerApi, ResponseSink } from '../api/inner-api.js';
import { openAiErrorBody, openAiErrorHeaders } from '../api/openai-error.js';
import { encapsulatedKeyOf, type ReplayCache } from '../ohttp/replay-cache.js';

export const OHTTP_PATH = '/v1/ohttp';

/** Refusals outside the encryption (the request could not be opened) still have OpenAI's shape. */
export const openAiErrorShaper: ErrorShaper = (error) => ({
  status: error.status,
  body: openAiErrorBody(error),
  headers: openAiErrorHeaders(error),
});

export interface OhttpRouteOptions {
  readonly keys: OhttpGatewayKeys;
  readonly replay: ReplayCache;
  readonly api: InnerApi;
  readonly now: () => Date;
  readonly bodyBytes: number;
  readonly innerBodyBytes: number;
}

/** Collects an inner response into one Binary HTTP message (for `message/ohttp-req`). */
class BufferedSink implements ResponseSink {
  status = 0;
  headers: readonly BhttpField[] = [];
  readonly parts: Uint8Array[] = [];
  started = false;
  ended = false;
  head(status: number, headers: readonly BhttpField[]): Promise<void> {
    this.status = status;
    this.headers = headers;
    this.started = true;
    return Promise.resolve();
  }
  content(bytes: Uint8Array): Promise<void> {
    if (bytes.length > 0) this.parts.push(bytes);
    return Promise.resolve();
  }
  end(): Promise<void> {
    this.ended = true;
    return Promise.resolve();
  }
}

/**
 * Seals each write as one chunk of a `message/ohttp-chunked-res` (indeterminate-length Binary
 * HTTP inside); each resolves once the client's side can take more.
 */
class ChunkedSink implements ResponseSink {
  started = false;
  readonly #body: SealedResponseBody;
  constructor(body: SealedResponseBody) {
    this.#body = body;
  }
  head(status: number, headers: readonly BhttpField[]): Promise<void> {
    this.started = true;
    return this.#body.write(encodeResponseHead(status, headers));
  }
  content(bytes: Uint8Array): Promise<void> {
    return bytes.length > 0 ? this.#body.write(encodeContentChunk(bytes)) : Promise.resolve();
  }
  async end(): Promise<void> {
    await this.#body.write(RESPONSE_END);
    await this.#body.end();
  }
}

/**
 * `POST /v1/ohttp`: the only way into the API. `message/ohttp-req` gets one sealed response;
 * `message/ohttp-chunked-req` gets a chunked response with one sealed chunk per server-sent event.
 * Requests that cannot be opened (malformed, unknown key id, not authenticating, truncated,
 * replayed) are refused in the clear with OpenAI-shaped bodies; everything after that is sealed.
 */
export async function ohttpRoute(app: FastifyInstance, options: OhttpRouteOptions): Promise<void> {
  await app.register((scope, _opts, done) => {
    scope.setErrorHandler((error: unknown, request, reply) =>
      sendShapedError(openAiErrorShaper, error, request, reply),
    );
    scope.removeAllContentTypeParsers();
    for (const type of [OHTTP_REQUEST_MEDIA_TYPE, OHTTP_CHUNKED_REQUEST_MEDIA_TYPE]) {
      scope.addContentTypeParser(
        type,
        { parseAs: 'buffer', bodyLimit: options.bodyBytes },
        (_req, body, next) => {
          next(null, body);
        },
      );
    }
    scope.post(OHTTP_PATH, async (request, reply) => {
      const body = request.body;
      if (!(body instanceof Buffer)) {
        throw new TresorError(
          'REQUEST_MEDIA_TYPE_UNSUPPORTED',
          `send ${OHTTP_REQUEST_MEDIA_TYPE} or ${OHTTP_CHUNKED_REQUEST_MEDIA_TYPE}`,
        );
      }
      const bytes: Uint8Array = new Uint8Array(body);
      const chunked = (request.headers['content-type'] ?? '').startsWith(OHTTP_CHUNKED_REQUEST_MEDIA_TYPE);
      void reply.header('cache-control', 'no-store');
      const limits = { maxContentSize: options.bodyBytes };
      if (!chunked) {
        const opened = await decapsulateRequest(options.keys, bytes, { aead: nodeOhttpAead });
        options.replay.use(encapsulatedKeyOf(bytes), options.now().getTime());
        const sink = new BufferedSink();
        try {
          const { message } = decodeBhttpRequest(opened.request, limits);
          await options.api.handle(message, sink);
        } catch (err) {
          // A request that opened but is not Binary HTTP: answered sealed like any other refusal.
          const error = err instanceof TresorError ? err : new TresorError('BHTTP_MALFORMED');
          sink.status = error.status;
          sink.headers = [
            ['content-type', 'application/json'],
            ['tresor-error-code', error.code],
          ];
          sink.parts.splice(
            0,
            sink.parts.length,
            new TextEncoder().encode(JSON.stringify(openAiErrorBody(error))),
          );
        }
        const response = encodeBhttpResponse({
          informational: [],
          status: sink.status,
          headers: sink.headers,
          content: new Uint8Array(Buffer.concat(sink.parts)),
          trailers: [],
        });
        const sealed = await opened.responder.encapsulateResponse(response);
        return reply.type(OHTTP_RESPONSE_MEDIA_TYPE).send(Buffer.from(sealed));
      }
      // Synchronous AES-GCM for the response chunks, one per SSE event (bench/streaming.ts).
      const { request: opened, exchange } = await openChunkedRequest(options.keys, bytes, {
        aead: nodeOhttpAead,
      });
      options.replay.use(encapsulatedKeyOf(bytes), options.now().getTime());
      const response = new SealedResponseBody(await exchange.beginResponse());
      const sink = new ChunkedSink(response);
      const run = async (): Promise<void> => {
        let message;
        try {
          ({ message } = decodeBhttpRequest(opened, limits));
        } catch (err) {
          const error = err instanceof TresorError ? err : new TresorError('BHTTP_MALFORMED');
          await sink.head(error.status, [
            ['content-type', 'application/json'],
            ['tresor-error-code', error.code],
          ]);
          await sink.content(new TextEncoder().encode(JSON.stringify(openAiErrorBody(error))));
          await sink.end();
          return;
        }
        await options.api.handle(message, sink);
      };
      void run().catch((err: unknown) => {
        request.log.error(
          { code: err instanceof TresorError ? err.code : 'INTERNAL_ERROR' },
          'chunked response failed',
        );
        response.abort(err);
      });
      return reply.type(OHTTP_CHUNKED_RESPONSE_MEDIA_TYPE).send(response.body);
    });
    done();
  });
}
