/**
 * `llama`: llama.cpp embedded through node-llama-cpp, on CPU. It only ever uses the prebuilt
 * binary shipped in `@node-llama-cpp/linux-x64` (`build: 'never'`, `skipDownload`), so nothing is
 * compiled or fetched at run time: inside an enclave there is no network to fetch from, and the
 * measured image must be all the code that runs.
 *
 * Each model gets one llama.cpp context with a small pool of sequences; every request takes a
 * sequence from the pool for its whole generation (so concurrent requests never share KV state),
 * and waits in FIFO order when all are busy. The serving layer in front applies its own admission
 * limit; this pool only protects llama.cpp.
 */

import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { TresorError } from '@tresor/protocol';
import type {
  ChatHistoryItem,
  ChatWrapper,
  Llama,
  LlamaContext,
  LlamaContextSequence,
  LlamaEmbeddingContext,
  LlamaModel,
  Token,
} from 'node-llama-cpp';
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
} from '../engine/engine.js';
import {
  Channel,
  checkEmbeddingInput,
  checkGenerationParams,
  checkMessages,
  DEFAULT_MAX_TOKENS,
  engineClosed,
  modelNotFound,
  Semaphore,
  StopStringMatcher,
} from './generation.js';

export interface LlamaModelSpec {
  /** The id clients name. */
  readonly id: string;
  /** A GGUF file (for sealed models: the decrypted file inside the enclave's private directory). */
  readonly path: string;
  /**
   * Expected lowercase hex SHA-256 of the file. When given it is checked before loading (a
   * mismatch refuses the model) unless `sha256Verified` says the caller already checked exactly
   * these bytes (the sealed-model path hashes while it decrypts). It is reported in listModels.
   */
  readonly sha256?: string;
  readonly sha256Verified?: boolean;
  /** Context window per request in tokens; default min(trained context, 4096). */
  readonly contextLength?: number;
}

export type LlamaEngineLogLevel = 'error' | 'warn' | 'info';

export interface LlamaEngineOptions {
  readonly models: readonly LlamaModelSpec[];
  /** CPU threads for evaluation; default llama.cpp's choice. */
  readonly threads?: number;
  /** Requests generating at once per model (sequences in the llama.cpp context); default 4. */
  readonly parallelSequences?: number;
  /**
   * Receives llama.cpp's own log lines (never prompts or completions at these levels); default
   * discards them. Wire to the service logger.
   */
  readonly log?: (level: LlamaEngineLogLevel, message: string) => void;
}

interface LoadedModel {
  readonly info: EngineModel;
  readonly model: LlamaModel;
  /** Resolved once from the GGUF's chat template (node-llama-cpp's `resolveChatWrapper`). */
  readonly chatWrapper: ChatWrapper;
  readonly context: LlamaContext;
  readonly free: LlamaContextSequence[];
  readonly pool: Semaphore;
  embedding: Promise<LlamaEmbeddingContext> | undefined;
  readonly embedLock: Semaphore;
}

type NodeLlamaCpp = typeof import('node-llama-cpp');

const DEFAULT_CONTEXT_CAP = 4096;

/** Loads every model; throws ENGINE_UNAVAILABLE or MODEL_LOAD_FAILED and frees what it loaded. */
export async function createLlamaEngine(options: LlamaEngineOptions): Promise<Engine> {
  const parallel = options.parallelSequences ?? 4;
  if (!Number.isSafeInteger(parallel) || parallel < 1 || parallel > 64) {
    throw new RangeError('parallelSequences must be an integer between 1 and 64');
  }
  if (options.models.length === 0) throw new RangeError('createLlamaEngine needs at least one model');
  const ids = new Set<string>();
  for (const m of options.models) {
    if (ids.has(m.id)) throw new RangeError(`model id ${JSON.stringify(m.id)} appears twice`);
    ids.add(m.id);
  }

  for (const spec of options.models) await checkModelFile(spec);

  let lib: NodeLlamaCpp;
  let llama: Llama;
  try {
    lib = await import('node-llama-cpp');
    llama = await lib.getLlama({
      gpu: false,
      build: 'never',
      skipDownload: true,
      usePrebuiltBinaries: true,
      progressLogs: false,
      logLevel: lib.LlamaLogLevel.warn,
      logger: (level, message) => {
        const text = message.trimEnd();
        if (options.log === undefined || text.length === 0) return;
        if (level === lib.LlamaLogLevel.error || level === lib.LlamaLogLevel.fatal)
          options.log('error', text);
        else if (level === lib.LlamaLogLevel.warn) options.log('warn', text);
        else options.log('info', text);
      },
      ...(options.threads === undefined ? {} : { maxThreads: options.threads }),
    });
  } catch (e) {
    throw new TresorError(
      'ENGINE_UNAVAILABLE',
      `llama.cpp could not start (${errorText(e)}); install node-llama-cpp with its CPU prebuilt @node-llama-cpp/linux-x64.`,
      { cause: e },
    );
  }

  const loaded = new Map<string, LoadedModel>();
  try {
    for (const spec of options.models) {
      loaded.set(spec.id, await loadModel(lib, llama, spec, parallel, options.threads));
    }
  } catch (e) {
    for (const m of loaded.values()) await m.model.dispose().catch(() => undefined);
    await llama.dispose().catch(() => undefined);
    throw e;
  }
  return new LlamaEngine(lib, llama, loaded, options.threads);
}

async function loadModel(
  lib: NodeLlamaCpp,
  llama: Llama,
  spec: LlamaModelSpec,
  parallel: number,
  threads: number | undefined,
): Promise<LoadedModel> {
  const fail = loadFailure(spec);
  let model: LlamaModel;
  try {
    model = await llama.loadModel({ modelPath: spec.path, gpuLayers: 0 });
  } catch (e) {
    throw fail(
      `llama.cpp refused the file (${errorText(e)}); it must be a GGUF model llama.cpp supports.`,
      e,
    );
  }
  try {
    const contextLength = spec.contextLength ?? Math.min(model.trainContextSize, DEFAULT_CONTEXT_CAP);
    if (!Number.isSafeInteger(contextLength) || contextLength < 16) {
      throw fail(`contextLength ${String(spec.contextLength)} is too small.`);
    }
    const context = await model.createContext({
      contextSize: contextLength,
      sequences: parallel,
      ...(threads === undefined ? {} : { threads }),
    });
    const free: LlamaContextSequence[] = [];
    for (let i = 0; i < parallel; i++) free.push(context.getSequence());
    const info: EngineModel =
      spec.sha256 === undefined
        ? { id: spec.id, contextLength: context.contextSize }
        : { id: spec.id, contextLength: context.contextSize, sha256: spec.sha256 };
    return {
      info,
      model,
      chatWrapper: lib.resolveChatWrapper(model),
      context,
      free,
      pool: new Semaphore(parallel),
      embedding: undefined,
      embedLock: new Semaphore(1),
    };
  } catch (e) {
    await model.dispose().catch(() => undefined);
    if (e instanceof TresorError) throw e;
    throw fail(
      `no llama.cpp context could be created (${errorText(e)}); lower contextLength or parallelSequences.`,
      e,
    );
  }
}

function loadFailure(spec: LlamaModelSpec): (why: string, cause?: unknown) => TresorError {
  return (why, cause) =>
    new TresorError('MODEL_LOAD_FAILED', `Model ${JSON.stringify(spec.id)}: ${why}`, {
      ...(cause === undefined ? {} : { cause }),
    });
}

/** Checks a model file before llama.cpp starts, so a bad path or digest fails fast and specifically. */
async function checkModelFile(spec: LlamaModelSpec): Promise<void> {
  const fail = loadFailure(spec);
  try {
    const s = await stat(spec.path);
    if (!s.isFile()) throw fail(`${spec.path} is not a regular file; point the model at a GGUF file.`);
  } catch (e) {
    if (e instanceof TresorError) throw e;
    throw fail(`cannot read ${spec.path} (${errorText(e)}); check the model path.`, e);
  }
  if (spec.sha256 !== undefined) {
    if (!/^[0-9a-f]{64}$/u.test(spec.sha256)) throw fail('sha256 must be 64 lowercase hex digits.');
    if (spec.sha256Verified !== true) {
      const actual = await sha256File(spec.path);
      if (actual !== spec.sha256) {
        throw fail(
          `file SHA-256 ${actual} does not match the expected ${spec.sha256}; the file is not the model.`,
        );
      }
    }
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

function errorText(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  return text.split('\n')[0]!.slice(0, 300);
}

interface GenerationHooks {
  readonly sequence: LlamaContextSequence;
  readonly signal: AbortSignal;
  readonly maxTokens: number;
  readonly onTextChunk: (text: string) => void;
  readonly onToken: (tokens: Token[]) => void;
}

type StopReason =
  'eogToken' | 'stopGenerationTrigger' | 'maxTokens' | 'abort' | 'customStopTrigger' | 'functionCalls';

class LlamaEngine implements Engine {
  readonly kind = 'llama';
  private closed = false;
  private closing: Promise<void> | undefined;
  private readonly closeController = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();

  constructor(
    private readonly lib: NodeLlamaCpp,
    private readonly llama: Llama,
    private readonly models: Map<string, LoadedModel>,
    private readonly threads: number | undefined,
  ) {}

  private require(id: string): LoadedModel {
    if (this.closed) throw engineClosed(this.kind);
    const m = this.models.get(id);
    if (m === undefined) throw modelNotFound(id, [...this.models.keys()]);
    return m;
  }

  listModels(): Promise<readonly EngineModel[]> {
    return settle(() => {
      if (this.closed) throw engineClosed(this.kind);
      return [...this.models.values()].map((m) => m.info);
    });
  }

  async *chat(request: ChatRequest): AsyncGenerator<GenerationEvent> {
    const m = this.require(request.model);
    checkMessages(request.messages);
    checkGenerationParams(request);
    const history: ChatHistoryItem[] = request.messages.map((msg) =>
      msg.role === 'system'
        ? { type: 'system', text: msg.content }
        : msg.role === 'user'
          ? { type: 'user', text: msg.content }
          : { type: 'model', response: [msg.content] },
    );
    history.push({ type: 'model', response: [] });
    const lib = this.lib;
    yield* this.generate(
      m,
      request,
      // The rendered prompt (chat template applied) is what llama.cpp evaluates; count that.
      () =>
        m.chatWrapper.generateContextState({ chatHistory: history }).contextText.tokenize(m.model.tokenizer)
          .length,
      async (hooks) => {
        const chat = new lib.LlamaChat({
          contextSequence: hooks.sequence,
          chatWrapper: m.chatWrapper,
          autoDisposeSequence: false,
        });
        try {
          const r = await chat.generateResponse(history, this.samplingOptions(request, hooks));
          return r.metadata.stopReason;
        } finally {
          chat.dispose({ disposeSequence: false });
        }
      },
    );
  }

  async *complete(request: CompletionRequest): AsyncGenerator<GenerationEvent> {
    const m = this.require(request.model);
    checkGenerationParams(request);
    const lib = this.lib;
    yield* this.generate(
      m,
      request,
      () => m.model.tokenize(request.prompt).length + (m.model.tokens.bos === null ? 0 : 1),
      async (hooks) => {
        const completion = new lib.LlamaCompletion({
          contextSequence: hooks.sequence,
          autoDisposeSequence: false,
        });
        try {
          const r = await completion.generateCompletionWithMeta(
            request.prompt,
            this.samplingOptions(request, hooks),
          );
          return r.metadata.stopReason;
        } finally {
          completion.dispose({ disposeSequence: false });
        }
      },
    );
  }

  private samplingOptions(params: GenerationParams, hooks: GenerationHooks) {
    return {
      onTextChunk: hooks.onTextChunk,
      onToken: hooks.onToken,
      signal: hooks.signal,
      stopOnAbortSignal: true,
      maxTokens: hooks.maxTokens,
      temperature: params.temperature ?? 1,
      // OpenAI's API (and vLLM) apply no repetition penalty unless asked; match them.
      repeatPenalty: false as const,
      ...(params.topP === undefined ? {} : { topP: params.topP }),
      ...(params.seed === undefined ? {} : { seed: params.seed }),
      ...(params.stop === undefined || params.stop.length === 0 ? {} : { customStopTriggers: params.stop }),
    };
  }

  /**
   * Runs one generation on a pooled sequence and turns its callbacks into events. The `finally`
   * also runs when the consumer stops iterating early (client disconnect): it aborts llama.cpp,
   * waits for it to let go of the sequence, clears the sequence's KV cache and returns it.
   */
  private async *generate(
    m: LoadedModel,
    params: GenerationParams,
    countPrompt: () => number,
    run: (hooks: GenerationHooks) => Promise<StopReason>,
  ): AsyncGenerator<GenerationEvent> {
    const promptTokens = countPrompt();
    const contextLength = m.info.contextLength;
    if (promptTokens >= contextLength) {
      throw new TresorError(
        'API_REQUEST_INVALID',
        `The prompt has ${promptTokens} tokens but the model's context is ${contextLength}; shorten the prompt.`,
      );
    }
    const requested = params.maxTokens ?? DEFAULT_MAX_TOKENS;
    const maxTokens = Math.min(requested, contextLength - promptTokens);
    const cancelled = (completionTokens: number): GenerationEvent => ({
      type: 'done',
      finishReason: 'cancelled',
      usage: { promptTokens, completionTokens },
    });
    const external = params.signal;
    if (external?.aborted === true) {
      yield cancelled(0);
      return;
    }
    const abort = new AbortController();
    const onAbort = (): void => {
      abort.abort();
    };
    external?.addEventListener('abort', onAbort, { once: true });
    this.closeController.signal.addEventListener('abort', onAbort, { once: true });
    let release: (() => void) | undefined;
    try {
      release = await m.pool.acquire(abort.signal);
    } catch {
      external?.removeEventListener('abort', onAbort);
      this.closeController.signal.removeEventListener('abort', onAbort);
      yield cancelled(0);
      return;
    }
    const sequence = m.free.pop()!;
    const channel = new Channel<GenerationEvent>();
    const stop = new StopStringMatcher(params.stop ?? []);
    let completionTokens = 0;
    let stoppedByString = false;
    const running = run({
      sequence,
      signal: abort.signal,
      maxTokens,
      onToken: (tokens) => {
        completionTokens += tokens.length;
      },
      onTextChunk: (chunk) => {
        if (stoppedByString) return;
        const { text, stopped } = stop.push(chunk);
        if (text.length > 0) channel.push({ type: 'delta', text });
        if (stopped) {
          stoppedByString = true;
          abort.abort();
        }
      },
    }).then(
      (reason) => {
        const rest = stop.flush();
        if (rest.length > 0) channel.push({ type: 'delta', text: rest });
        const finishReason: FinishReason = stoppedByString
          ? 'stop'
          : reason === 'abort'
            ? 'cancelled'
            : reason === 'maxTokens'
              ? 'length'
              : 'stop';
        channel.push({ type: 'done', finishReason, usage: { promptTokens, completionTokens } });
        channel.end();
      },
      (e: unknown) => {
        channel.fail(
          abort.signal.aborted && !stoppedByString
            ? cancelledError
            : new TresorError('ENGINE_UNAVAILABLE', `llama.cpp failed while generating (${errorText(e)}).`, {
                cause: e,
              }),
        );
      },
    );
    this.inFlight.add(running);
    try {
      for (;;) {
        let next: IteratorResult<GenerationEvent>;
        try {
          next = await channel.next();
        } catch (e) {
          // An abort that surfaced as an exception inside llama.cpp is still a cancellation.
          if (e === cancelledError) {
            yield cancelled(completionTokens);
            return;
          }
          throw e;
        }
        if (next.done === true) return;
        yield next.value;
      }
    } finally {
      abort.abort();
      await running;
      this.inFlight.delete(running);
      external?.removeEventListener('abort', onAbort);
      this.closeController.signal.removeEventListener('abort', onAbort);
      await sequence.clearHistory().catch(() => undefined);
      m.free.push(sequence);
      release();
    }
  }

  async embed(request: EmbeddingRequest): Promise<EmbeddingResult> {
    const m = this.require(request.model);
    checkEmbeddingInput(request.input);
    const release = await m.embedLock.acquire(request.signal);
    try {
      m.embedding ??= m.model.createEmbeddingContext({
        contextSize: m.info.contextLength,
        ...(this.threads === undefined ? {} : { threads: this.threads }),
      });
      let context: LlamaEmbeddingContext;
      try {
        context = await m.embedding;
      } catch (e) {
        m.embedding = undefined;
        throw new TresorError(
          'ENGINE_UNAVAILABLE',
          `llama.cpp could not create an embedding context (${errorText(e)}).`,
        );
      }
      const embeddings: (readonly number[])[] = [];
      let promptTokens = 0;
      for (const text of request.input) {
        if (request.signal?.aborted === true)
          throw new TresorError('ENGINE_UNAVAILABLE', 'The embedding request was cancelled.');
        if (this.closed) throw engineClosed(this.kind);
        const tokens = m.model.tokenize(text);
        if (tokens.length >= m.info.contextLength) {
          throw new TresorError(
            'API_REQUEST_INVALID',
            `An input has ${tokens.length} tokens but the model's context is ${m.info.contextLength}; shorten it.`,
          );
        }
        promptTokens += tokens.length;
        const e = await context.getEmbeddingFor(tokens);
        embeddings.push([...e.vector]);
      }
      return { embeddings, promptTokens };
    } finally {
      release();
    }
  }

  countTokens(model: string, text: string): Promise<number> {
    return settle(() => this.require(model).model.tokenize(text).length);
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.closed = true;
    this.closeController.abort();
    await Promise.allSettled([...this.inFlight]);
    for (const m of this.models.values()) {
      if (m.embedding !== undefined) await (await m.embedding.catch(() => undefined))?.dispose();
      await m.context.dispose().catch(() => undefined);
      await m.model.dispose().catch(() => undefined);
    }
    await this.llama.dispose().catch(() => undefined);
  }
}

const cancelledError = new Error('generation cancelled');

function settle<T>(fn: () => T): Promise<T> {
  return new Promise((resolve) => {
    resolve(fn());
  });
}
