/**
 * `openai-upstream`: an OpenAI-compatible server in the same pod (vLLM in production, on the GPU)
 * reached over loopback TCP or a Unix socket. Prompts cross this hop in plaintext, so the engine
 * refuses any address that leaves the pod's network namespace: loopback hosts and Unix sockets
 * only. It uses `node:http` (no extra dependency in the enclave image).
 *
 * Token counting: vLLM serves `POST /tokenize` (`{model, prompt}` → `{count, …}`) and that exact
 * count is used. A server without that route (detected once, after the model is known to exist)
 * gets an estimate of one token per 4 bytes of UTF-8, rounded up: OpenAI's rule of thumb for
 * English; it is monotone in the text, never exact. The same estimate fills the prompt count of a
 * stream cancelled before the server reported usage.
 */

import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { TresorError } from '@tresor/protocol';
import { z } from 'zod';
import type {
  ChatRequest,
  CompletionRequest,
  EmbeddingRequest,
  EmbeddingResult,
  Engine,
  EngineModel,
  FinishReason,
  GenerationEvent,
  GenerationParams,
  TokenUsage,
} from '../engine/engine.js';
import {
  checkEmbeddingInput,
  checkGenerationParams,
  checkMessages,
  DEFAULT_MAX_TOKENS,
  engineClosed,
  modelNotFound,
  StopStringMatcher,
} from './generation.js';
import { parseSse, parseUpstreamChunk, upstreamFailure } from './openai-format.js';
import { linkAbortSignals } from './linked-signal.js';

export interface OpenAiUpstreamEngineOptions {
  /** `http://127.0.0.1:8000` style base URL (loopback only). Exactly one of baseUrl/socketPath. */
  readonly baseUrl?: string;
  /** A Unix socket the upstream listens on. */
  readonly socketPath?: string;
  /** Sent as `Authorization: Bearer …` (vLLM's `--api-key`). Never logged. */
  readonly apiKey?: string;
  /** Context length to report when the upstream's model list has no `max_model_len`; default 4096. */
  readonly defaultContextLength?: number;
  /** `auto` (default): `/tokenize` when the server has it, else the documented estimate. */
  readonly tokenCounting?: 'auto' | 'upstream' | 'estimate';
  /** Largest JSON answer accepted (models, embeddings, tokenize); default 64 MiB. */
  readonly maxResponseBytes?: number;
}

const LOOPBACK_NAMES = new Set(['localhost', 'ip6-localhost', 'ip6-loopback']);

function isLoopbackHost(hostname: string): boolean {
  const host = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (LOOPBACK_NAMES.has(host.toLowerCase())) return true;
  if (isIP(host) === 4) return host.split('.')[0] === '127';
  if (isIP(host) === 6) return host === '::1' || /^::ffff:127\./iu.test(host);
  return false;
}

/** One token per 4 UTF-8 bytes, rounded up (see the file comment). */
export function estimateTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / 4);
}

const modelList = z.object({
  data: z.array(
    z.looseObject({ id: z.string().min(1), max_model_len: z.number().int().positive().optional() }),
  ),
});
const tokenizeAnswer = z.looseObject({ count: z.number().int().min(0) });
const embeddingAnswer = z.looseObject({
  data: z.array(z.looseObject({ index: z.number().int().min(0), embedding: z.array(z.number()) })).min(1),
  usage: z.looseObject({ prompt_tokens: z.number().int().min(0) }).optional(),
});

interface UpstreamResponse {
  readonly status: number;
  readonly body: http.IncomingMessage;
}

export function createOpenAiUpstreamEngine(options: OpenAiUpstreamEngineOptions): Engine {
  const { baseUrl, socketPath, apiKey } = options;
  if ((baseUrl === undefined) === (socketPath === undefined)) {
    throw new TresorError('CONFIG_INVALID', 'Give the upstream engine exactly one of baseUrl or socketPath.');
  }
  let target: { readonly url: URL } | { readonly socketPath: string };
  if (baseUrl !== undefined) {
    let url: URL;
    try {
      url = new URL(baseUrl);
    } catch {
      throw new TresorError('CONFIG_INVALID', `Upstream baseUrl ${JSON.stringify(baseUrl)} is not a URL.`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TresorError('CONFIG_INVALID', `Upstream baseUrl must be http(s), got ${url.protocol}.`);
    }
    if (!isLoopbackHost(url.hostname)) {
      throw new TresorError(
        'CONFIG_INVALID',
        `Upstream host ${url.hostname} is not loopback; prompts would leave the enclave in plaintext. Run the upstream in the same pod on 127.0.0.1 or a Unix socket.`,
      );
    }
    if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '') {
      throw new TresorError(
        'CONFIG_INVALID',
        'Upstream baseUrl must not carry credentials, a query or a fragment.',
      );
    }
    target = { url };
  } else {
    target = { socketPath: socketPath! };
  }
  const basePath = 'url' in target ? target.url.pathname.replace(/\/+$/u, '') : '';
  const defaultContextLength = options.defaultContextLength ?? 4096;
  const maxResponseBytes = options.maxResponseBytes ?? 64 * 1024 * 1024;
  const tokenCounting = options.tokenCounting ?? 'auto';
  const agent =
    'url' in target && target.url.protocol === 'https:'
      ? new https.Agent({ keepAlive: true })
      : new http.Agent({ keepAlive: true });
  const closeController = new AbortController();
  let closed = false;
  let tokenizeRoute: boolean | undefined = tokenCounting === 'estimate' ? false : undefined;
  let knownModels: readonly EngineModel[] | undefined;
  const where = 'url' in target ? target.url.origin : `unix:${target.socketPath}`;

  function request(
    method: 'GET' | 'POST',
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
  ): Promise<UpstreamResponse> {
    if (closed) return Promise.reject(engineClosed('openai-upstream'));
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers: Record<string, string> = { accept: 'application/json, text/event-stream' };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    }
    if (apiKey !== undefined) headers.authorization = `Bearer ${apiKey}`;
    // Linked for this call only, released when the request closes (after its response was read or
    // it failed); not AbortSignal.any, which keeps an entry per call in closeController's signal.
    const link = linkAbortSignals([signal, closeController.signal]);
    const combined = link.signal;
    return new Promise((resolve, reject) => {
      const common = { method, headers, agent, signal: combined, path: basePath + path };
      const req =
        'url' in target
          ? (target.url.protocol === 'https:' ? https : http).request({
              ...common,
              hostname: target.url.hostname.replace(/^\[|\]$/gu, ''),
              port: target.url.port === '' ? undefined : Number(target.url.port),
            })
          : http.request({ ...common, socketPath: target.socketPath });
      req.once('close', link.release);
      req.on('response', (res) => {
        resolve({ status: res.statusCode ?? 0, body: res });
      });
      req.on('error', (e) => {
        if (combined.aborted) reject(abortedError);
        else
          reject(
            new TresorError(
              'ENGINE_UNAVAILABLE',
              `The upstream engine at ${where} is unreachable (${e.message}); start it or fix its address.`,
            ),
          );
      });
      req.setNoDelay(true); // https: tls.connect ignores the agent's noDelay (Nagle, 40 ms stalls)
      req.end(payload);
    });
  }

  async function readJson(res: UpstreamResponse): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of res.body) {
      const chunk = c as Buffer;
      size += chunk.length;
      if (size > maxResponseBytes) {
        res.body.destroy();
        throw new TresorError(
          'ENGINE_UNAVAILABLE',
          `The upstream engine's answer exceeds ${maxResponseBytes} bytes.`,
        );
      }
      chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    try {
      return JSON.parse(text) as unknown;
    } catch {
      if (res.status >= 400) return { message: text.slice(0, 300) };
      throw new TresorError(
        'ENGINE_UNAVAILABLE',
        'The upstream engine answered with something that is not JSON.',
      );
    }
  }

  async function callJson(path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    const res = await request(body === undefined ? 'GET' : 'POST', path, body, signal);
    const json = await readJson(res);
    if (res.status < 200 || res.status >= 300) throw upstreamFailure(res.status, json);
    return json;
  }

  async function listModels(): Promise<readonly EngineModel[]> {
    const parsed = modelList.safeParse(await callJson('/v1/models', undefined));
    if (!parsed.success) {
      throw new TresorError(
        'ENGINE_UNAVAILABLE',
        'The upstream engine answered /v1/models with an unexpected shape.',
      );
    }
    knownModels = parsed.data.data.map((m) => ({
      id: m.id,
      contextLength: m.max_model_len ?? defaultContextLength,
    }));
    return knownModels;
  }

  async function requireModel(model: string): Promise<void> {
    if (knownModels?.some((m) => m.id === model) === true) return;
    const models = await listModels();
    if (!models.some((m) => m.id === model))
      throw modelNotFound(
        model,
        models.map((m) => m.id),
      );
  }

  function samplingBody(params: GenerationParams): Record<string, unknown> {
    return {
      max_tokens: params.maxTokens ?? DEFAULT_MAX_TOKENS,
      ...(params.temperature === undefined ? {} : { temperature: params.temperature }),
      ...(params.topP === undefined ? {} : { top_p: params.topP }),
      ...(params.seed === undefined ? {} : { seed: params.seed }),
      ...(params.stop === undefined || params.stop.length === 0 ? {} : { stop: params.stop }),
      stream: true,
      stream_options: { include_usage: true },
    };
  }

  async function* stream(
    path: string,
    body: Record<string, unknown>,
    params: GenerationParams,
    promptEstimate: () => number,
  ): AsyncGenerator<GenerationEvent> {
    if (closed) throw engineClosed('openai-upstream');
    let completionChunks = 0;
    const cancelled = (): GenerationEvent => ({
      type: 'done',
      finishReason: 'cancelled',
      usage: { promptTokens: promptEstimate(), completionTokens: completionChunks },
    });
    if (params.signal?.aborted === true) {
      yield cancelled();
      return;
    }
    // Our own controller also ends the request when the consumer stops reading early.
    const local = new AbortController();
    const signal =
      params.signal === undefined ? local.signal : AbortSignal.any([params.signal, local.signal]);
    let res: UpstreamResponse;
    try {
      res = await request('POST', path, body, signal);
    } catch (e) {
      if (e === abortedError) {
        yield cancelled();
        return;
      }
      throw e;
    }
    try {
      if (res.status < 200 || res.status >= 300) throw upstreamFailure(res.status, await readJson(res));
      const stop = new StopStringMatcher(params.stop ?? []);
      let finishReason: FinishReason | undefined;
      let usage: TokenUsage | undefined;
      let sawDone = false;
      try {
        for await (const data of parseSse(res.body)) {
          // Events already buffered when the signal fired are dropped, not delivered late.
          if (signal.aborted) break;
          if (data === '[DONE]') {
            sawDone = true;
            break;
          }
          let json: unknown;
          try {
            json = JSON.parse(data);
          } catch {
            throw new TresorError(
              'ENGINE_UNAVAILABLE',
              'The upstream engine sent a stream event that is not JSON.',
            );
          }
          const chunk = parseUpstreamChunk(json);
          if (chunk.usage !== undefined) usage = chunk.usage;
          if (chunk.finishReason !== undefined) finishReason = chunk.finishReason;
          if (chunk.text.length > 0) {
            completionChunks++;
            const { text, stopped } = stop.push(chunk.text);
            if (text.length > 0) yield { type: 'delta', text };
            if (stopped) {
              local.abort();
              yield {
                type: 'done',
                finishReason: 'stop',
                usage: { promptTokens: promptEstimate(), completionTokens: completionChunks },
              };
              return;
            }
          }
        }
      } catch (e) {
        if (signal.aborted) {
          yield cancelled();
          return;
        }
        if (e instanceof TresorError) throw e;
        throw new TresorError(
          'ENGINE_UNAVAILABLE',
          `The upstream stream broke off (${(e as Error).message}).`,
        );
      }
      if (signal.aborted) {
        yield cancelled();
        return;
      }
      if (!sawDone || finishReason === undefined) {
        throw new TresorError(
          'ENGINE_UNAVAILABLE',
          'The upstream stream ended before it finished the answer.',
        );
      }
      const rest = stop.flush();
      if (rest.length > 0) yield { type: 'delta', text: rest };
      // Without include_usage support, one chunk ≈ one token (vLLM and llama.cpp send one per token).
      yield {
        type: 'done',
        finishReason,
        usage: usage ?? { promptTokens: promptEstimate(), completionTokens: completionChunks },
      };
    } finally {
      local.abort();
      res.body.destroy();
    }
  }

  return {
    kind: 'openai-upstream',
    listModels: async () => {
      if (closed) throw engineClosed('openai-upstream');
      return listModels();
    },
    async *chat(req: ChatRequest) {
      if (closed) throw engineClosed('openai-upstream');
      checkMessages(req.messages);
      checkGenerationParams(req);
      const body = {
        model: req.model,
        messages: req.messages.map((m) => ({ role: m.role, content: m.content })),
        ...samplingBody(req),
      };
      yield* stream('/v1/chat/completions', body, req, () =>
        req.messages.reduce((n, m) => n + estimateTokens(m.content), 0),
      );
    },
    async *complete(req: CompletionRequest) {
      if (closed) throw engineClosed('openai-upstream');
      checkGenerationParams(req);
      const body = { model: req.model, prompt: req.prompt, ...samplingBody(req) };
      yield* stream('/v1/completions', body, req, () => estimateTokens(req.prompt));
    },
    async embed(req: EmbeddingRequest): Promise<EmbeddingResult> {
      if (closed) throw engineClosed('openai-upstream');
      checkEmbeddingInput(req.input);
      const json = await callJson(
        '/v1/embeddings',
        { model: req.model, input: req.input, encoding_format: 'float' },
        req.signal,
      ).catch((e: unknown) => {
        throw e === abortedError
          ? new TresorError('ENGINE_UNAVAILABLE', 'The embedding request was cancelled.')
          : e;
      });
      const parsed = embeddingAnswer.safeParse(json);
      if (!parsed.success || parsed.data.data.length !== req.input.length) {
        throw new TresorError(
          'ENGINE_UNAVAILABLE',
          'The upstream engine answered /v1/embeddings with an unexpected shape.',
        );
      }
      const embeddings = [...parsed.data.data].sort((a, b) => a.index - b.index).map((d) => d.embedding);
      return {
        embeddings,
        promptTokens:
          parsed.data.usage?.prompt_tokens ?? req.input.reduce((n, t) => n + estimateTokens(t), 0),
      };
    },
    async countTokens(model: string, text: string): Promise<number> {
      if (closed) throw engineClosed('openai-upstream');
      if (tokenizeRoute !== true) await requireModel(model);
      if (tokenizeRoute === false) return estimateTokens(text);
      const res = await request(
        'POST',
        '/tokenize',
        { model, prompt: text, add_special_tokens: false },
        undefined,
      );
      const json = await readJson(res);
      if (
        (res.status === 404 || res.status === 405) &&
        tokenizeRoute === undefined &&
        tokenCounting === 'auto'
      ) {
        // The model exists (checked above), so a 404 here means the server has no /tokenize.
        tokenizeRoute = false;
        return estimateTokens(text);
      }
      if (res.status < 200 || res.status >= 300) throw upstreamFailure(res.status, json);
      const parsed = tokenizeAnswer.safeParse(json);
      if (!parsed.success) {
        throw new TresorError(
          'ENGINE_UNAVAILABLE',
          'The upstream engine answered /tokenize with an unexpected shape.',
        );
      }
      tokenizeRoute = true;
      return parsed.data.count;
    },
    close() {
      if (!closed) {
        closed = true;
        closeController.abort();
        agent.destroy();
      }
      return Promise.resolve();
    },
  };
}

const abortedError = new Error('upstream request aborted');
