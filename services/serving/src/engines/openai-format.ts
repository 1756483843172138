/**
 * The mapping between OpenAI's HTTP API (chat completions, completions, embeddings, models) and
 * the Engine contract, in both directions. The serving enclave uses it for its inner (decrypted)
 * API, the test server uses it to expose any engine, and the openai-upstream engine uses the
 * parsing half to read vLLM's answers. Shapes follow OpenAI's API reference: `chat.completion`,
 * `chat.completion.chunk`, `text_completion`, `list` of `embedding`s, `list` of `model`s, SSE
 * `data:` lines ending with `data: [DONE]`, and `stream_options.include_usage` adding one final
 * chunk with empty `choices` and the `usage`.
 */

import { randomBytes } from 'node:crypto';
import { TresorError, type ErrorCode } from '@tresor/protocol';
import { z } from 'zod';
import type {
  ChatMessage,
  ChatRequest,
  CompletionRequest,
  EmbeddingRequest,
  EmbeddingResult,
  EngineModel,
  FinishReason,
  GenerationEvent,
  TokenUsage,
} from '../engine/engine.js';

/** OpenAI's default for `/v1/completions` when `max_tokens` is absent. */
export const OPENAI_COMPLETION_DEFAULT_MAX_TOKENS = 16;

// ── Requests: OpenAI JSON → engine requests ─────────────────────────────────────────────────

const textPart = z.object({ type: z.literal('text'), text: z.string() });
const messageContent = z.union([z.string(), z.array(textPart).min(1)]);
const message = z.object({
  role: z.enum(['system', 'developer', 'user', 'assistant']),
  content: messageContent,
  name: z.string().optional(),
});
const stop = z.union([z.string().min(1), z.array(z.string().min(1)).max(4)]).nullish();
const sampling = {
  model: z.string().min(1).max(256),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().gt(0).max(1).nullish(),
  seed: z.number().int().min(0).max(0xffff_ffff).nullish(),
  stop,
  n: z.literal(1).nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.object({ include_usage: z.boolean().optional() }).nullish(),
  user: z.string().optional(),
};
// Features this API does not implement are refused rather than silently ignored.
const unsupported = {
  tools: z.undefined({ error: 'tools are not supported' }).optional(),
  functions: z.undefined({ error: 'functions are not supported' }).optional(),
  logprobs: z.union([z.literal(false), z.null()]).optional(),
  response_format: z.object({ type: z.literal('text') }).nullish(),
};

const chatSchema = z.looseObject({
  ...sampling,
  ...unsupported,
  messages: z.array(message).min(1),
  max_tokens: z.number().int().min(1).nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
});

const completionSchema = z.looseObject({
  ...sampling,
  prompt: z.union([z.string(), z.array(z.string()).length(1)]),
  max_tokens: z.number().int().min(1).nullish(),
  echo: z.union([z.literal(false), z.null()]).optional(),
  logprobs: z.null().optional(),
  suffix: z.null().optional(),
  best_of: z.union([z.literal(1), z.null()]).optional(),
});

const embeddingSchema = z.looseObject({
  model: z.string().min(1).max(256),
  input: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(2048)]),
  encoding_format: z.enum(['float', 'base64']).optional(),
  dimensions: z.undefined({ error: 'dimensions is not supported' }).optional(),
  user: z.string().optional(),
});

export interface ParsedStreamOptions {
  readonly stream: boolean;
  /** `stream_options.include_usage`: a final chunk carries the usage. */
  readonly includeUsage: boolean;
}

export interface ParsedChatRequest extends ParsedStreamOptions {
  readonly request: ChatRequest;
}

export interface ParsedCompletionRequest extends ParsedStreamOptions {
  readonly request: CompletionRequest;
}

export interface ParsedEmbeddingRequest {
  readonly request: EmbeddingRequest;
  readonly encodingFormat: 'float' | 'base64';
}

function parseWith<S extends z.ZodType>(schema: S, body: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? '' : ` at ${issue.path.join('.')}`;
  throw new TresorError(
    'API_REQUEST_INVALID',
    `Invalid ${what} request${where}: ${issue?.message ?? 'does not match the schema'}; see the OpenAI API reference.`,
  );
}

function stopList(value: string | readonly string[] | null | undefined): readonly string[] | undefined {
  if (value === null || value === undefined) return undefined;
  return typeof value === 'string' ? [value] : value;
}

function generationParams(body: {
  temperature?: number | null | undefined;
  top_p?: number | null | undefined;
  seed?: number | null | undefined;
  stop?: string | readonly string[] | null | undefined;
}): { temperature?: number; topP?: number; seed?: number; stop?: readonly string[] } {
  const stops = stopList(body.stop);
  return {
    ...(body.temperature == null ? {} : { temperature: body.temperature }),
    ...(body.top_p == null ? {} : { topP: body.top_p }),
    ...(body.seed == null ? {} : { seed: body.seed }),
    ...(stops === undefined ? {} : { stop: stops }),
  };
}

function streamOptions(body: {
  stream?: boolean | null | undefined;
  stream_options?: { include_usage?: boolean | undefined } | null | undefined;
}): ParsedStreamOptions {
  const stream = body.stream === true;
  if (!stream && body.stream_options != null) {
    throw new TresorError('API_REQUEST_INVALID', 'stream_options is only allowed when stream is true.');
  }
  return { stream, includeUsage: stream && body.stream_options?.include_usage === true };
}

/** Parses a `POST /v1/chat/completions` body; throws API_REQUEST_INVALID naming the bad field. */
export function parseChatCompletionRequest(body: unknown): ParsedChatRequest {
  const b = parseWith(chatSchema, body, 'chat completion');
  const messages: ChatMessage[] = b.messages.map((m) => ({
    // `developer` is OpenAI's newer name for the system role.
    role: m.role === 'developer' ? 'system' : m.role,
    content: typeof m.content === 'string' ? m.content : m.content.map((p) => p.text).join(''),
  }));
  const maxTokens = b.max_completion_tokens ?? b.max_tokens ?? undefined;
  return {
    request: {
      model: b.model,
      messages,
      ...generationParams(b),
      ...(maxTokens === undefined ? {} : { maxTokens }),
    },
    ...streamOptions(b),
  };
}

/** Parses a `POST /v1/completions` body (one prompt; no echo, logprobs, suffix or best_of). */
export function parseCompletionRequest(body: unknown): ParsedCompletionRequest {
  const b = parseWith(completionSchema, body, 'completion');
  return {
    request: {
      model: b.model,
      prompt: typeof b.prompt === 'string' ? b.prompt : b.prompt[0]!,
      ...generationParams(b),
      maxTokens: b.max_tokens ?? OPENAI_COMPLETION_DEFAULT_MAX_TOKENS,
    },
    ...streamOptions(b),
  };
}

/** Parses a `POST /v1/embeddings` body (strings only, not token arrays). */
export function parseEmbeddingRequest(body: unknown): ParsedEmbeddingRequest {
  const b = parseWith(embeddingSchema, body, 'embeddings');
  return {
    request: { model: b.model, input: typeof b.input === 'string' ? [b.input] : b.input },
    encodingFormat: b.encoding_format ?? 'float',
  };
}

// ── Responses: engine results → OpenAI JSON / SSE ───────────────────────────────────────────

export type OpenAiFinishReason = 'stop' | 'length' | 'abort';

/**
 * OpenAI has no finish reason for a generation the server cancelled; `abort` is what vLLM sends
 * for that case, and `parseFinishReason` reads it back as `cancelled`.
 */
export function openAiFinishReason(reason: FinishReason): OpenAiFinishReason {
  return reason === 'cancelled' ? 'abort' : reason;
}

export function parseFinishReason(reason: unknown): FinishReason {
  if (reason === 'length') return 'length';
  if (reason === 'abort' || reason === 'cancelled') return 'cancelled';
  return 'stop';
}

export interface OpenAiUsage {
  readonly prompt_tokens: number;
  readonly completion_tokens: number;
  readonly total_tokens: number;
}

export function openAiUsage(usage: TokenUsage): OpenAiUsage {
  return {
    prompt_tokens: usage.promptTokens,
    completion_tokens: usage.completionTokens,
    total_tokens: usage.promptTokens + usage.completionTokens,
  };
}

/** Identity of one response: the same id and `created` go into every chunk of a stream. */
export interface ResponseIdentity {
  readonly id: string;
  /** Unix seconds. */
  readonly created: number;
  readonly model: string;
}

/** `chatcmpl-…` / `cmpl-…` ids as OpenAI forms them: a prefix and 24 random base62-ish chars. */
export function newResponseId(
  kind: 'chat' | 'completion',
  random: (n: number) => Uint8Array = randomBytes,
): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = random(24);
  let s = '';
  for (const b of bytes) s += alphabet[b % alphabet.length]!;
  return `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${s}`;
}

/** The result of draining a generation: what a non-streaming response needs. */
export interface AggregatedGeneration {
  readonly text: string;
  readonly finishReason: FinishReason;
  readonly usage: TokenUsage;
}

/** Drains a generation; refuses a stream that does not end with exactly one `done`. */
export async function aggregateGeneration(
  events: AsyncIterable<GenerationEvent>,
): Promise<AggregatedGeneration> {
  let text = '';
  let done: Extract<GenerationEvent, { type: 'done' }> | undefined;
  for await (const e of events) {
    if (done !== undefined) throw brokenStream('an event followed done');
    if (e.type === 'delta') text += e.text;
    else done = e;
  }
  if (done === undefined) throw brokenStream('it ended without done');
  return { text, finishReason: done.finishReason, usage: done.usage };
}

function brokenStream(why: string): TresorError {
  return new TresorError('ENGINE_UNAVAILABLE', `The engine's generation stream is malformed: ${why}.`);
}

export function chatCompletionResponse(identity: ResponseIdentity, result: AggregatedGeneration) {
  return {
    id: identity.id,
    object: 'chat.completion' as const,
    created: identity.created,
    model: identity.model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant' as const, content: result.text, refusal: null },
        logprobs: null,
        finish_reason: openAiFinishReason(result.finishReason),
      },
    ],
    usage: openAiUsage(result.usage),
  };
}

export function completionResponse(identity: ResponseIdentity, result: AggregatedGeneration) {
  return {
    id: identity.id,
    object: 'text_completion' as const,
    created: identity.created,
    model: identity.model,
    choices: [
      { index: 0, text: result.text, logprobs: null, finish_reason: openAiFinishReason(result.finishReason) },
    ],
    usage: openAiUsage(result.usage),
  };
}

/** One SSE event carrying a JSON payload (`data: …` and the blank line that ends the event). */
export function sseData(payload: unknown): string {
  return `data: ${JSON.stringify(payload)}\n\n`;
}

/** The terminator OpenAI sends after the last chunk. */
export const SSE_DONE = 'data: [DONE]\n\n';

/**
 * A chat generation as OpenAI's SSE events, one string per event (the serving enclave seals each
 * one separately): a first chunk with the assistant role, one chunk per delta, a chunk with the
 * finish reason, with `include_usage` a usage chunk with empty `choices`, then `[DONE]`.
 * Engine errors propagate as exceptions; the caller decides how to end the HTTP stream.
 */
export async function* chatCompletionSse(
  identity: ResponseIdentity,
  events: AsyncIterable<GenerationEvent>,
  options: { readonly includeUsage: boolean },
): AsyncGenerator<string> {
  const chunk = (
    delta: { role?: 'assistant'; content?: string },
    finishReason: OpenAiFinishReason | null,
  ): Record<string, unknown> => ({
    id: identity.id,
    object: 'chat.completion.chunk',
    created: identity.created,
    model: identity.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...(options.includeUsage ? { usage: null } : {}),
  });
  yield sseData(chunk({ role: 'assistant', content: '' }, null));
  yield* finishStream(
    identity,
    events,
    options,
    'chat.completion.chunk',
    (text) => chunk({ content: text }, null),
    (r) => chunk({}, r),
  );
}

/** A completion generation as OpenAI's SSE events (`text_completion` chunks). */
export async function* completionSse(
  identity: ResponseIdentity,
  events: AsyncIterable<GenerationEvent>,
  options: { readonly includeUsage: boolean },
): AsyncGenerator<string> {
  const chunk = (text: string, finishReason: OpenAiFinishReason | null): Record<string, unknown> => ({
    id: identity.id,
    object: 'text_completion',
    created: identity.created,
    model: identity.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason: finishReason }],
    ...(options.includeUsage ? { usage: null } : {}),
  });
  yield* finishStream(
    identity,
    events,
    options,
    'text_completion',
    (text) => chunk(text, null),
    (r) => chunk('', r),
  );
}

async function* finishStream(
  identity: ResponseIdentity,
  events: AsyncIterable<GenerationEvent>,
  options: { readonly includeUsage: boolean },
  object: string,
  deltaChunk: (text: string) => Record<string, unknown>,
  finishChunk: (reason: OpenAiFinishReason) => Record<string, unknown>,
): AsyncGenerator<string> {
  let done: Extract<GenerationEvent, { type: 'done' }> | undefined;
  for await (const e of events) {
    if (done !== undefined) throw brokenStream('an event followed done');
    if (e.type === 'delta') yield sseData(deltaChunk(e.text));
    else done = e;
  }
  if (done === undefined) throw brokenStream('it ended without done');
  yield sseData(finishChunk(openAiFinishReason(done.finishReason)));
  if (options.includeUsage) {
    yield sseData({
      id: identity.id,
      object,
      created: identity.created,
      model: identity.model,
      choices: [],
      usage: openAiUsage(done.usage),
    });
  }
  yield SSE_DONE;
}

export function embeddingResponse(
  model: string,
  result: EmbeddingResult,
  encodingFormat: 'float' | 'base64',
) {
  return {
    object: 'list' as const,
    data: result.embeddings.map((v, index) => ({
      object: 'embedding' as const,
      index,
      embedding: encodingFormat === 'float' ? [...v] : float32Base64(v),
    })),
    model,
    usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
  };
}

/** `encoding_format: base64`: little-endian float32 values, base64-encoded (as OpenAI sends). */
export function float32Base64(values: readonly number[]): string {
  const buf = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => buf.writeFloatLE(v, i * 4));
  return buf.toString('base64');
}

/** `GET /v1/models`; `max_model_len` is vLLM's extension, read back by the upstream engine. */
export function modelListResponse(models: readonly EngineModel[], created: number, ownedBy = 'tresor') {
  return {
    object: 'list' as const,
    data: models.map((m) => ({
      id: m.id,
      object: 'model' as const,
      created,
      owned_by: ownedBy,
      max_model_len: m.contextLength,
    })),
  };
}

/**
 * OpenAI's error body. `code` carries the Tresor catalogue code (stable, documented in
 * docs/errors.md); `type` follows OpenAI's coarse split between client and server errors.
 */
export function openAiErrorBody(error: TresorError) {
  return {
    error: {
      message: error.message,
      type: error.status < 500 ? 'invalid_request_error' : 'server_error',
      param: null,
      code: error.code,
    },
  };
}

// ── Reading an upstream OpenAI-compatible server ────────────────────────────────────────────

const upstreamError = z.looseObject({
  error: z
    .looseObject({ message: z.string().optional(), code: z.union([z.string(), z.number()]).nullish() })
    .optional(),
  message: z.string().optional(),
});

/**
 * Maps an upstream error response to the catalogue: 404 or an unknown-model message →
 * MODEL_NOT_FOUND, other 4xx → API_REQUEST_INVALID, anything else → ENGINE_UNAVAILABLE. The
 * upstream's message is kept (it never holds prompt text in vLLM or this server).
 */
export function upstreamFailure(status: number, body: unknown): TresorError {
  const parsed = upstreamError.safeParse(body);
  const message = parsed.success ? (parsed.data.error?.message ?? parsed.data.message ?? '') : '';
  const code = parsed.success ? parsed.data.error?.code : undefined;
  const short = message.slice(0, 300);
  let tresorCode: ErrorCode;
  if (status === 404 || code === 'MODEL_NOT_FOUND' || code === 'model_not_found')
    tresorCode = 'MODEL_NOT_FOUND';
  else if (status >= 400 && status < 500) tresorCode = 'API_REQUEST_INVALID';
  else tresorCode = 'ENGINE_UNAVAILABLE';
  return new TresorError(
    tresorCode,
    `The upstream engine answered ${status}${short === '' ? '' : `: ${short}`}`,
  );
}

const chunkChoice = z.looseObject({
  index: z.number().optional(),
  delta: z.looseObject({ content: z.string().nullish() }).optional(),
  text: z.string().nullish(),
  finish_reason: z.string().nullish(),
});
const usageSchema = z.looseObject({
  prompt_tokens: z.number().int().min(0),
  completion_tokens: z.number().int().min(0),
});
const streamChunk = z.looseObject({ choices: z.array(chunkChoice), usage: usageSchema.nullish() });

/** What one upstream SSE chunk contributes: text, maybe a finish reason, maybe the usage. */
export interface UpstreamChunk {
  readonly text: string;
  readonly finishReason: FinishReason | undefined;
  readonly usage: TokenUsage | undefined;
}

/** Reads one `chat.completion.chunk` or `text_completion` chunk from an upstream stream. */
export function parseUpstreamChunk(json: unknown): UpstreamChunk {
  const r = streamChunk.safeParse(json);
  if (!r.success) {
    throw new TresorError(
      'ENGINE_UNAVAILABLE',
      'The upstream engine sent a stream chunk that is not OpenAI-shaped.',
    );
  }
  const choice = r.data.choices[0];
  const text = choice?.delta?.content ?? choice?.text ?? '';
  const reason = choice?.finish_reason;
  const usage = r.data.usage;
  return {
    text,
    finishReason: reason == null ? undefined : parseFinishReason(reason),
    usage:
      usage == null
        ? undefined
        : { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens },
  };
}

/**
 * Splits an SSE byte stream into event `data` payloads (WHATWG HTML §9.2.6 "Interpreting an event
 * stream": lines end in LF, CR or CRLF; a blank line ends an event; multiple `data:` lines join
 * with LF; comment lines start with `:`; one optional space after the colon is dropped).
 */
export async function* parseSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffer = '';
  let data: string[] = [];
  const lines = function* (final: boolean): Generator<string> {
    for (;;) {
      const m = /\r\n|\r|\n/u.exec(buffer);
      // A lone CR at the very end may be the first half of CRLF: wait for more unless final.
      if (m === null || (!final && m[0] === '\r' && m.index === buffer.length - 1)) return;
      const line = buffer.slice(0, m.index);
      buffer = buffer.slice(m.index + m[0].length);
      yield line;
    }
  };
  const take = function* (final: boolean): Generator<string> {
    for (const line of lines(final)) {
      if (line === '') {
        if (data.length > 0) yield data.join('\n');
        data = [];
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
    }
  };
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    yield* take(false);
  }
  buffer += decoder.decode();
  yield* take(true);
  // An event not terminated by a blank line at end of stream is discarded (§9.2.6).
}

/**
 * Starts a generation and waits for its first event, so that errors raised before any output
 * (unknown model, bad parameters, busy engine) surface before an HTTP status has been committed.
 * The returned iterable replays that first event, then the rest; returning from it early ends the
 * engine's generation (which cancels it).
 */
export async function primeGeneration(
  events: AsyncIterable<GenerationEvent>,
): Promise<AsyncIterable<GenerationEvent>> {
  const iterator = events[Symbol.asyncIterator]();
  const first = await iterator.next();
  let replayed = false;
  return {
    [Symbol.asyncIterator]: () => ({
      next: () => {
        if (!replayed) {
          replayed = true;
          return Promise.resolve(first);
        }
        return iterator.next();
      },
      return: async (): Promise<IteratorResult<GenerationEvent>> => {
        await iterator.return?.();
        return { value: undefined, done: true };
      },
    }),
  };
}
