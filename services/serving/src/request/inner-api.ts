import { TresorError } from '@tresor/protocol';
import { toTresorError } from '@tresor/server-kit';
import type { Engine, GenerationEvent, TokenUsage } from '../engine/engine.js';
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
} from '../engines/openai-format.js';

/**
 * The OpenAI-compatible API serving answers *inside* the sealed channel (DESIGN.md §2): the inner
 * Binary HTTP request is `POST /v1/chat/completions`, `/v1/completions`, `/v1/embeddings` or
 * `GET /v1/models`. Parsing and the JSON/SSE shapes are the engines' OpenAI mapping
 * (engines/openai-format.ts), so serving and the upstream engine speak exactly the same dialect.
 */

/** The decoded inner request. */
export interface InnerRequest {
  readonly method: string;
  readonly path: string;
  readonly body: Uint8Array;
}

/** What the sealed route sends back. */
export type InnerResponse =
  | {
      readonly kind: 'json';
      readonly status: number;
      readonly body: unknown;
      /** Set for generation and embedding answers: the model the receipt names. */
      readonly model?: string;
    }
  | {
      readonly kind: 'stream';
      readonly model: string;
      /** Each item is one complete SSE event (`data: …\n\n`). */
      readonly events: AsyncIterable<string>;
      /** The generation's token counts once `events` ended (for the `: tresor-usage` line). */
      readonly usage: () => TokenUsage | undefined;
    };

/** Passes a generation on and remembers the usage its `done` event reports. */
function tapUsage(events: AsyncIterable<GenerationEvent>): {
  events: AsyncIterable<GenerationEvent>;
  usage: () => TokenUsage | undefined;
} {
  let usage: TokenUsage | undefined;
  return {
    events: (async function* () {
      for await (const event of events) {
        if (event.type === 'done') usage = event.usage;
        yield event;
      }
    })(),
    usage: () => usage,
  };
}

export interface InnerContext {
  readonly engine: Engine;
  /** Aborted when the client goes away: cancels the generation. */
  readonly signal: AbortSignal;
  readonly now?: () => Date;
}

/** OpenAI's error object carrying the catalogue code; SERVING_BUSY reads as a rate limit. */
export function openAiError(error: TresorError): ReturnType<typeof openAiErrorBody> {
  const body = openAiErrorBody(error);
  return error.code === 'SERVING_BUSY' ? { error: { ...body.error, type: 'rate_limit_error' } } : body;
}

export function innerError(thrown: unknown): InnerResponse {
  const error = toTresorError(thrown);
  return { kind: 'json', status: error.status, body: openAiError(error) };
}

function json(body: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) as unknown;
  } catch {
    throw new TresorError('API_REQUEST_INVALID', 'The request body is not JSON; send application/json.');
  }
}

/** Answers one inner request. Engine and validation refusals become OpenAI-shaped error answers. */
export async function answerInnerRequest(
  request: InnerRequest,
  context: InnerContext,
): Promise<InnerResponse> {
  try {
    return await dispatch(request, context);
  } catch (err) {
    return innerError(err);
  }
}

async function dispatch(request: InnerRequest, context: InnerContext): Promise<InnerResponse> {
  const { engine, signal } = context;
  const created = Math.floor((context.now?.() ?? new Date()).getTime() / 1000);
  const route = `${request.method} ${request.path.split('?')[0] ?? ''}`;
  switch (route) {
    case 'GET /v1/models':
      return { kind: 'json', status: 200, body: modelListResponse(await engine.listModels(), created) };
    case 'POST /v1/chat/completions': {
      const parsed = parseChatCompletionRequest(json(request.body));
      const identity = { id: newResponseId('chat'), created, model: parsed.request.model };
      const events = await primeGeneration(engine.chat({ ...parsed.request, signal }));
      if (parsed.stream) {
        const tapped = tapUsage(events);
        return {
          kind: 'stream',
          model: identity.model,
          events: chatCompletionSse(identity, tapped.events, { includeUsage: parsed.includeUsage }),
          usage: tapped.usage,
        };
      }
      const body = chatCompletionResponse(identity, await aggregateGeneration(events));
      return { kind: 'json', status: 200, model: identity.model, body };
    }
    case 'POST /v1/completions': {
      const parsed = parseCompletionRequest(json(request.body));
      const identity = { id: newResponseId('completion'), created, model: parsed.request.model };
      const events = await primeGeneration(engine.complete({ ...parsed.request, signal }));
      if (parsed.stream) {
        const tapped = tapUsage(events);
        return {
          kind: 'stream',
          model: identity.model,
          events: completionSse(identity, tapped.events, { includeUsage: parsed.includeUsage }),
          usage: tapped.usage,
        };
      }
      const body = completionResponse(identity, await aggregateGeneration(events));
      return { kind: 'json', status: 200, model: identity.model, body };
    }
    case 'POST /v1/embeddings': {
      const parsed = parseEmbeddingRequest(json(request.body));
      const result = await engine.embed({ ...parsed.request, signal });
      const body = embeddingResponse(parsed.request.model, result, parsed.encodingFormat);
      return { kind: 'json', status: 200, model: parsed.request.model, body };
    }
    default:
      throw new TresorError(
        'ROUTE_NOT_FOUND',
        `No inner endpoint ${route}; serving answers POST /v1/chat/completions, /v1/completions, /v1/embeddings and GET /v1/models.`,
      );
  }
}
