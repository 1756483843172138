/**
 * A minimal OpenAI-compatible HTTP server in front of any Engine, on 127.0.0.1: the real server
 * the openai-upstream engine's conformance run talks to (vLLM needs a GPU), and the "direct"
 * baseline for benchmarks. All mapping lives in @tresor/serving's openai-format, which the serving
 * enclave uses for its inner API too; this file only wires it to fastify.
 */

import { Readable } from 'node:stream';
import { TresorError } from '@tresor/protocol';
import {
  aggregateGeneration,
  chatCompletionResponse,
  chatCompletionSse,
  completionResponse,
  completionSse,
  embeddingResponse,
  modelListResponse,
  newResponseId,
  openAiErrorBody,
  parseChatCompletionRequest,
  parseCompletionRequest,
  parseEmbeddingRequest,
  primeGeneration,
  type Engine,
} from '@tresor/serving';
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';

export interface OpenAiCompatibleServer {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  close(): Promise<void>;
}

export interface OpenAiCompatibleServerOptions {
  /** Serve vLLM's `POST /tokenize`; default true. */
  readonly tokenize?: boolean;
  /** Unix seconds for `created`; default the wall clock. */
  readonly now?: () => number;
  /** Listen on a Unix socket instead of 127.0.0.1. */
  readonly socketPath?: string;
  /** The 127.0.0.1 port; default a free one. */
  readonly port?: number;
}

const tokenizeBody = z.object({ model: z.string().min(1), prompt: z.string() });

export async function startOpenAiCompatibleServer(
  engine: Engine,
  options: OpenAiCompatibleServerOptions = {},
): Promise<OpenAiCompatibleServer> {
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const app = Fastify({ logger: false });

  app.setErrorHandler((error, _request, reply) => {
    const e =
      error instanceof TresorError
        ? error
        : (error as { statusCode?: number }).statusCode === 400
          ? new TresorError('API_REQUEST_INVALID', 'The request body is not valid JSON.')
          : new TresorError('INTERNAL_ERROR', 'The server failed.');
    void reply.status(e.status).send(openAiErrorBody(e));
  });

  /** Aborts the generation when the client goes away before the answer is complete. */
  const disconnectSignal = (request: FastifyRequest, reply: FastifyReply): AbortSignal => {
    const controller = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) controller.abort();
    });
    request.raw.on('aborted', () => {
      controller.abort();
    });
    return controller.signal;
  };

  const sendSse = (reply: FastifyReply, events: AsyncIterable<string>): FastifyReply =>
    reply
      .header('content-type', 'text/event-stream; charset=utf-8')
      .header('cache-control', 'no-cache')
      .send(Readable.from(events));

  app.get('/v1/models', async () => modelListResponse(await engine.listModels(), now()));

  app.post('/v1/chat/completions', async (request, reply) => {
    const parsed = parseChatCompletionRequest(request.body);
    const signal = disconnectSignal(request, reply);
    const events = await primeGeneration(engine.chat({ ...parsed.request, signal }));
    const identity = { id: newResponseId('chat'), created: now(), model: parsed.request.model };
    if (parsed.stream) return sendSse(reply, chatCompletionSse(identity, events, parsed));
    return chatCompletionResponse(identity, await aggregateGeneration(events));
  });

  app.post('/v1/completions', async (request, reply) => {
    const parsed = parseCompletionRequest(request.body);
    const signal = disconnectSignal(request, reply);
    const events = await primeGeneration(engine.complete({ ...parsed.request, signal }));
    const identity = { id: newResponseId('completion'), created: now(), model: parsed.request.model };
    if (parsed.stream) return sendSse(reply, completionSse(identity, events, parsed));
    return completionResponse(identity, await aggregateGeneration(events));
  });

  app.post('/v1/embeddings', async (request) => {
    const parsed = parseEmbeddingRequest(request.body);
    return embeddingResponse(parsed.request.model, await engine.embed(parsed.request), parsed.encodingFormat);
  });

  if (options.tokenize !== false) {
    app.post('/tokenize', async (request) => {
      const body = tokenizeBody.safeParse(request.body);
      if (!body.success) throw new TresorError('API_REQUEST_INVALID', '/tokenize needs {model, prompt}.');
      const count = await engine.countTokens(body.data.model, body.data.prompt);
      const model = (await engine.listModels()).find((m) => m.id === body.data.model);
      return { count, max_model_len: model?.contextLength ?? null };
    });
  }

  if (options.socketPath !== undefined) {
    await app.listen({ path: options.socketPath });
    return { url: `unix:${options.socketPath}`, close: () => app.close() };
  }
  await app.listen({ host: '127.0.0.1', port: options.port ?? 0 });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('server has no TCP address');
  return { url: `http://127.0.0.1:${address.port}`, close: () => app.close() };
}
