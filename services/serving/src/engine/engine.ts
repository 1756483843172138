/**
 * The one interface every inference engine implements (embedded llama.cpp, an OpenAI-compatible
 * upstream such as vLLM in the same pod, the deterministic test engine). The serving enclave speaks
 * OpenAI's wire format outward; engines speak this, so one conformance suite covers them all.
 */

export interface EngineModel {
  /** The id clients name in `model` (e.g. `tresor-demo`). */
  readonly id: string;
  /** Context window in tokens. */
  readonly contextLength: number;
  /** Lowercase hex SHA-256 of the model's plaintext weights, when the engine loaded a file. */
  readonly sha256?: string;
}

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

export interface GenerationParams {
  /** Upper bound on generated tokens; engines apply a default when absent. */
  readonly maxTokens?: number;
  /** 0 = greedy. */
  readonly temperature?: number;
  readonly topP?: number;
  /** Makes sampling reproducible where the engine supports it. */
  readonly seed?: number;
  /** Generation stops before any of these strings. */
  readonly stop?: readonly string[];
  /** Aborting cancels generation promptly; the stream then ends with finishReason `cancelled`. */
  readonly signal?: AbortSignal;
}

export interface ChatRequest extends GenerationParams {
  readonly model: string;
  readonly messages: readonly ChatMessage[];
}

export interface CompletionRequest extends GenerationParams {
  readonly model: string;
  readonly prompt: string;
}

export interface EmbeddingRequest {
  readonly model: string;
  readonly input: readonly string[];
  readonly signal?: AbortSignal;
}

export interface TokenUsage {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

export type FinishReason = 'stop' | 'length' | 'cancelled';

/** A generation streams `delta`s and ends with exactly one `done`. */
export type GenerationEvent =
  | { readonly type: 'delta'; readonly text: string }
  | { readonly type: 'done'; readonly finishReason: FinishReason; readonly usage: TokenUsage };

export interface EmbeddingResult {
  readonly embeddings: readonly (readonly number[])[];
  readonly promptTokens: number;
}

export interface Engine {
  /** `llama`, `openai-upstream`, `echo`, … */
  readonly kind: string;
  listModels(): Promise<readonly EngineModel[]>;
  /** Throws TresorError `MODEL_NOT_FOUND` (or the catalogue's nearest code) for an unknown model. */
  chat(request: ChatRequest): AsyncIterable<GenerationEvent>;
  complete(request: CompletionRequest): AsyncIterable<GenerationEvent>;
  embed(request: EmbeddingRequest): Promise<EmbeddingResult>;
  countTokens(model: string, text: string): Promise<number>;
  /** Frees models and native memory; further calls fail. Idempotent. */
  close(): Promise<void>;
}
