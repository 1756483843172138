/**
 * `echo`: a deterministic engine for tests and benchmarks. It answers with the words of the prompt
 * (the last user message for chat, the prompt for completion) in order, one word per token, so a
 * test can predict every byte of the answer and tell concurrent answers apart. Time between tokens
 * comes from an injected `sleep`, so tests never wait on a real clock.
 */

import { createHash } from 'node:crypto';
import { setTimeout as sleepTimer } from 'node:timers/promises';
import type {
  ChatMessage,
  ChatRequest,
  CompletionRequest,
  EmbeddingRequest,
  EmbeddingResult,
  Engine,
  EngineModel,
  GenerationEvent,
  GenerationParams,
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
import { linkAbortSignals } from './linked-signal.js';

export interface EchoEngineOptions {
  /** Models it answers for; default one model `echo` with a 4096-token context. */
  readonly models?: readonly { readonly id: string; readonly contextLength?: number }[];
  /**
   * When set, every answer is exactly this many tokens (the prompt's words repeated cyclically),
   * which benchmarks use for a fixed amount of work per request. `maxTokens` still caps it.
   */
  readonly responseTokens?: number;
  /** Delay before each token after the first; 0 (default) yields to the event loop only. */
  readonly interTokenDelayMs?: number;
  /** Injected scheduler; default Node's timer. Must reject or resolve promptly when `signal` aborts. */
  readonly sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
  /** Length of embedding vectors; default 16. */
  readonly embeddingDimensions?: number;
}

const EMPTY_ANSWER = '(empty)';

/** Whitespace-separated words; the echo engine's notion of a token. */
export function echoTokenize(text: string): string[] {
  return text.split(/\s+/u).filter((w) => w.length > 0);
}

/** How the echo engine renders a chat as one prompt (documented so tests can count its tokens). */
export function echoChatPrompt(messages: readonly ChatMessage[]): string {
  return messages.map((m) => `${m.role}: ${m.content}`).join('\n');
}

export function createEchoEngine(options: EchoEngineOptions = {}): Engine {
  const models: EngineModel[] = (options.models ?? [{ id: 'echo' }]).map((m) => ({
    id: m.id,
    contextLength: m.contextLength ?? 4096,
  }));
  const { responseTokens, interTokenDelayMs = 0, embeddingDimensions = 16 } = options;
  if (responseTokens !== undefined && (!Number.isSafeInteger(responseTokens) || responseTokens < 1)) {
    throw new RangeError('responseTokens must be a positive integer');
  }
  if (!Number.isSafeInteger(embeddingDimensions) || embeddingDimensions < 1) {
    throw new RangeError('embeddingDimensions must be a positive integer');
  }
  const sleep =
    options.sleep ??
    (async (ms: number, signal: AbortSignal | undefined): Promise<void> => {
      await sleepTimer(ms, undefined, signal === undefined ? {} : { signal }).catch(() => undefined);
    });
  let closed = false;
  const closeController = new AbortController();

  function requireModel(id: string): EngineModel {
    if (closed) throw engineClosed('echo');
    const m = models.find((x) => x.id === id);
    if (m === undefined)
      throw modelNotFound(
        id,
        models.map((x) => x.id),
      );
    return m;
  }

  async function* generate(
    prompt: string,
    answerSource: string,
    params: GenerationParams,
  ): AsyncGenerator<GenerationEvent> {
    const promptTokens = echoTokenize(prompt).length;
    const words = echoTokenize(answerSource);
    if (words.length === 0) words.push(EMPTY_ANSWER);
    const natural = responseTokens ?? words.length;
    const maxTokens = params.maxTokens ?? DEFAULT_MAX_TOKENS;
    const limit = Math.min(natural, maxTokens);
    const stop = new StopStringMatcher(params.stop ?? []);
    let completionTokens = 0;
    const done = (finishReason: 'stop' | 'length' | 'cancelled'): GenerationEvent => ({
      type: 'done',
      finishReason,
      usage: { promptTokens, completionTokens },
    });
    // Linked for this generation only (not AbortSignal.any: see linked-signal.ts).
    const link = linkAbortSignals([params.signal, closeController.signal]);
    const { signal } = link;
    try {
      for (let i = 0; i < limit; i++) {
        if (i > 0 || interTokenDelayMs > 0) {
          if (interTokenDelayMs > 0) await sleep(interTokenDelayMs, signal);
          else await Promise.resolve();
        }
        if (signal.aborted) {
          yield done('cancelled');
          return;
        }
        const word = words[i % words.length]!;
        completionTokens++;
        const { text, stopped } = stop.push(i === 0 ? word : ` ${word}`);
        if (text.length > 0) yield { type: 'delta', text };
        if (stopped) {
          yield done('stop');
          return;
        }
      }
    } finally {
      link.release();
    }
    const rest = stop.flush();
    if (rest.length > 0) yield { type: 'delta', text: rest };
    yield done(limit < natural ? 'length' : 'stop');
  }

  return {
    kind: 'echo',
    listModels() {
      return settle(() => {
        if (closed) throw engineClosed('echo');
        return models;
      });
    },
    async *chat(request: ChatRequest) {
      requireModel(request.model);
      checkMessages(request.messages);
      checkGenerationParams(request);
      const lastUser = [...request.messages].reverse().find((m) => m.role === 'user');
      yield* generate(echoChatPrompt(request.messages), lastUser?.content ?? '', request);
    },
    async *complete(request: CompletionRequest) {
      requireModel(request.model);
      checkGenerationParams(request);
      yield* generate(request.prompt, request.prompt, request);
    },
    embed(request: EmbeddingRequest): Promise<EmbeddingResult> {
      return settle(() => {
        requireModel(request.model);
        checkEmbeddingInput(request.input);
        const embeddings = request.input.map((text) => echoEmbedding(text, embeddingDimensions));
        const promptTokens = request.input.reduce((n, t) => n + echoTokenize(t).length, 0);
        return { embeddings, promptTokens };
      });
    },
    countTokens(model: string, text: string) {
      return settle(() => {
        requireModel(model);
        return echoTokenize(text).length;
      });
    },
    close() {
      closed = true;
      closeController.abort();
      return Promise.resolve();
    },
  };
}

/** Runs `fn` now; a throw becomes a rejected promise rather than a synchronous exception. */
function settle<T>(fn: () => T): Promise<T> {
  return new Promise((resolve) => {
    resolve(fn());
  });
}

/** A unit vector derived from SHA-256 of the text: equal texts embed equally, different ones differ. */
function echoEmbedding(text: string, dimensions: number): number[] {
  const out: number[] = [];
  let counter = 0;
  while (out.length < dimensions) {
    const block = createHash('sha256').update(`${counter}\u0000${text}`).digest();
    for (let i = 0; i + 1 < block.length && out.length < dimensions; i += 2) {
      out.push(block.readInt16BE(i) / 32768);
    }
    counter++;
  }
  const norm = Math.hypot(...out) || 1;
  return out.map((x) => x / norm);
}
