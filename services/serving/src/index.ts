export type {
  ChatMessage,
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
} from './engine/engine.js';
