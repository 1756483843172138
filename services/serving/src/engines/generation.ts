/**
 * Pieces every engine shares: request checks, stop-string matching over a text stream, and a
 * push-to-pull channel that turns callback-style generation (llama.cpp's onTextChunk, an SSE body)
 * into the `AsyncIterable<GenerationEvent>` the Engine contract returns.
 */

import { TresorError } from '@tresor/protocol';
import type { ChatMessage, GenerationParams } from '../engine/engine.js';

/** Tokens generated when a request names no `maxTokens`. */
export const DEFAULT_MAX_TOKENS = 256;

const ROLES: ReadonlySet<string> = new Set(['system', 'user', 'assistant']);

/**
 * Engines are called by the serving request path after schema validation, but they are also a
 * public API: each one refuses parameters it cannot honour instead of guessing.
 */
export function checkGenerationParams(params: GenerationParams): void {
  const { maxTokens, temperature, topP, seed, stop } = params;
  if (maxTokens !== undefined && (!Number.isSafeInteger(maxTokens) || maxTokens < 1)) {
    throw invalid(`maxTokens must be a positive integer, got ${String(maxTokens)}.`);
  }
  if (temperature !== undefined && (!Number.isFinite(temperature) || temperature < 0 || temperature > 2)) {
    throw invalid(`temperature must be between 0 and 2, got ${String(temperature)}.`);
  }
  if (topP !== undefined && (!Number.isFinite(topP) || topP <= 0 || topP > 1)) {
    throw invalid(`topP must be in (0, 1], got ${String(topP)}.`);
  }
  if (seed !== undefined && (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffff_ffff)) {
    throw invalid(`seed must be an integer between 0 and 2^32-1, got ${String(seed)}.`);
  }
  if (stop !== undefined) {
    if (stop.length > 4) throw invalid(`At most 4 stop strings are allowed, got ${stop.length}.`);
    for (const s of stop) {
      if (typeof s !== 'string' || s.length === 0) throw invalid('Stop strings must be non-empty strings.');
    }
  }
}

export function checkMessages(messages: readonly ChatMessage[]): void {
  if (messages.length === 0) throw invalid('A chat request needs at least one message.');
  for (const m of messages) {
    if (!ROLES.has(m.role)) throw invalid(`Unknown message role ${JSON.stringify(m.role)}.`);
    if (typeof m.content !== 'string') throw invalid('Message content must be a string.');
  }
}

export function checkEmbeddingInput(input: readonly string[]): void {
  if (input.length === 0) throw invalid('An embeddings request needs at least one input string.');
  for (const s of input) {
    if (typeof s !== 'string') throw invalid('Embedding inputs must be strings.');
  }
}

function invalid(message: string): TresorError {
  return new TresorError('API_REQUEST_INVALID', message);
}

export function modelNotFound(model: string, known: readonly string[]): TresorError {
  return new TresorError(
    'MODEL_NOT_FOUND',
    `No model ${JSON.stringify(model)} is loaded; available: ${known.map((k) => JSON.stringify(k)).join(', ') || 'none'}.`,
  );
}

export function engineClosed(kind: string): TresorError {
  return new TresorError('ENGINE_UNAVAILABLE', `The ${kind} engine has been closed; start a new one.`);
}

/**
 * Cuts a streamed text at the first occurrence of any stop string (the stop string itself is not
 * emitted, as in OpenAI's API). Text that could be the start of a stop string is held back until
 * the next chunk decides it, so a stop string split across chunks is still caught.
 */
export class StopStringMatcher {
  private held = '';
  private stopped = false;

  constructor(private readonly stops: readonly string[]) {}

  /** Returns the text safe to emit now, and whether a stop string was reached. */
  push(chunk: string): { readonly text: string; readonly stopped: boolean } {
    if (this.stopped) return { text: '', stopped: true };
    if (this.stops.length === 0) return { text: chunk, stopped: false };
    const buffer = this.held + chunk;
    let cut = -1;
    for (const s of this.stops) {
      const at = buffer.indexOf(s);
      if (at !== -1 && (cut === -1 || at < cut)) cut = at;
    }
    if (cut !== -1) {
      this.stopped = true;
      this.held = '';
      return { text: buffer.slice(0, cut), stopped: true };
    }
    const keep = this.partialSuffixLength(buffer);
    this.held = buffer.slice(buffer.length - keep);
    return { text: buffer.slice(0, buffer.length - keep), stopped: false };
  }

  /** Text still held back when the stream ends without a stop string. */
  flush(): string {
    const rest = this.stopped ? '' : this.held;
    this.held = '';
    return rest;
  }

  private partialSuffixLength(buffer: string): number {
    let best = 0;
    for (const s of this.stops) {
      for (let n = Math.min(s.length - 1, buffer.length); n > best; n--) {
        if (buffer.endsWith(s.slice(0, n))) {
          best = n;
          break;
        }
      }
    }
    return best;
  }
}

/**
 * A single-consumer queue: producers `push` values and `end`/`fail` once; the consumer iterates.
 * Used to bridge callback producers into async iterables without buffering beyond what the
 * producer pushes.
 */
export class Channel<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | undefined;
  private waitingReject: ((e: unknown) => void) | undefined;
  private ended = false;
  private failure: { readonly error: unknown } | undefined;

  push(item: T): void {
    if (this.ended) return;
    const resolve = this.waiting;
    if (resolve !== undefined) {
      this.waiting = undefined;
      this.waitingReject = undefined;
      resolve({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    const resolve = this.waiting;
    if (resolve !== undefined) {
      this.waiting = undefined;
      this.waitingReject = undefined;
      resolve({ value: undefined, done: true });
    }
  }

  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = { error };
    const reject = this.waitingReject;
    if (reject !== undefined) {
      this.waiting = undefined;
      this.waitingReject = undefined;
      reject(error);
    }
  }

  next(): Promise<IteratorResult<T>> {
    const item = this.items.shift();
    if (item !== undefined) return Promise.resolve({ value: item, done: false });
    if (this.failure !== undefined) {
      const { error } = this.failure;
      this.failure = undefined;
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    if (this.ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.waitingReject = reject;
    });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next() };
  }
}

/** Limits how many generations run at once; the rest wait in FIFO order. */
export class Semaphore {
  private active = 0;
  private readonly queue: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async acquire(signal?: AbortSignal): Promise<() => void> {
    if (this.active < this.limit) {
      this.active++;
      return this.releaser();
    }
    await new Promise<void>((resolve, reject) => {
      const grant = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = (): void => {
        const i = this.queue.indexOf(grant);
        if (i !== -1) this.queue.splice(i, 1);
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(grant);
    });
    return this.releaser();
  }

  private releaser(): () => void {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = this.queue.shift();
      if (next !== undefined) next();
      else this.active--;
    };
  }
}
