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

// The serving service: configuration, attested start-up, sealed request path, evidence.
export {
  loadServingConfig,
  parseServingConfig,
  servingConfigSchema,
  type ServingConfig,
  type ServingConfigInput,
} from './config.js';
export {
  startServingService,
  type RunningServingService,
  type ServingDependencies,
  type StartupStep,
} from './service.js';
export {
  defaultEngineFactory,
  type EngineFactory,
  type EngineFactoryContext,
  type EngineModelFile,
} from './engine-factory.js';
export type { CpuTee, EvidenceSource } from './evidence/evidence-source.js';
export { noGpu, type GpuEvidence, type GpuEvidenceSource } from './evidence/gpu-evidence.js';
export {
  commandGpuEvidenceSource,
  gpuEvidenceSourceOf,
  type CommandGpuEvidenceOptions,
} from './evidence/gpu-command-source.js';
export {
  openConfigfsTsmSource,
  parseSnpCertificateTable,
  type ConfigfsTsmOptions,
  type TsmFileSystem,
} from './evidence/configfs-tsm.js';
export { sampleEvidenceSource } from './evidence/sample-source.js';
export { OHTTP_PATH } from './request/ohttp-route.js';
export { RECEIPT_TYPE } from './request/receipts.js';
export { StreamingBhttpResponseReader, type StreamedResponsePart } from './request/streaming-bhttp.js';
export {
  sendSealedRequest,
  type SealedExchangeOptions,
  type SealedResponse,
} from './client/sealed-client.js';

// Engines (llama.cpp embedded, OpenAI-compatible upstream, deterministic echo) and the demo model.
export { createEchoEngine, echoChatPrompt, echoTokenize } from './engines/echo-engine.js';
export type { EchoEngineOptions } from './engines/echo-engine.js';
export { createLlamaEngine } from './engines/llama-engine.js';
export type { LlamaEngineLogLevel, LlamaEngineOptions, LlamaModelSpec } from './engines/llama-engine.js';
export { createOpenAiUpstreamEngine, estimateTokens } from './engines/openai-upstream-engine.js';
export type { OpenAiUpstreamEngineOptions } from './engines/openai-upstream-engine.js';
export {
  checkUpstreamCommand,
  DEFAULT_UPSTREAM_HEALTH,
  isSupervisedEngine,
  startUpstreamProcess,
  superviseUpstream,
  type SupervisedEngine,
  type SupervisedState,
  type SuperviseOptions,
  type UpstreamChild,
  type UpstreamEvent,
  type UpstreamExit,
  type UpstreamHealthOptions,
  type UpstreamModelFile,
  type UpstreamProcessOptions,
} from './engines/upstream-process.js';
export { DEFAULT_RESTART_POLICY, RestartPolicy } from './engines/restart-policy.js';
export type { RestartDecision, RestartPolicyOptions } from './engines/restart-policy.js';
export {
  aggregateGeneration,
  chatCompletionResponse,
  chatCompletionSse,
  completionResponse,
  completionSse,
  embeddingResponse,
  float32Base64,
  modelListResponse,
  newResponseId,
  OPENAI_COMPLETION_DEFAULT_MAX_TOKENS,
  openAiErrorBody,
  openAiFinishReason,
  openAiUsage,
  parseChatCompletionRequest,
  parseCompletionRequest,
  parseEmbeddingRequest,
  parseFinishReason,
  parseSse,
  parseUpstreamChunk,
  primeGeneration,
  SSE_DONE,
  sseData,
  upstreamFailure,
} from './engines/openai-format.js';
export type {
  AggregatedGeneration,
  OpenAiFinishReason,
  OpenAiUsage,
  ParsedChatRequest,
  ParsedCompletionRequest,
  ParsedEmbeddingRequest,
  ParsedStreamOptions,
  ResponseIdentity,
  UpstreamChunk,
} from './engines/openai-format.js';
export { DEFAULT_MAX_TOKENS, StopStringMatcher } from './engines/generation.js';
export {
  buildDemoVocabulary,
  DEMO_CHAT_TEMPLATE,
  DEMO_MODEL_DEFAULT_SEED,
  DEMO_MODEL_ID,
  DEMO_MODEL_SHAPE,
  demoModelBytes,
  writeDemoModel,
} from './demo-model/demo-model.js';
export type { DemoModelOptions, DemoVocabulary } from './demo-model/demo-model.js';
export { encodeGguf, parseGguf, readGgufTensor } from './demo-model/gguf.js';
export type { GgufFile, GgufTensor, GgufTensorInfo, GgufValue, ParsedGguf } from './demo-model/gguf.js';
export { PrivateWorkDir } from './models/work-dir.js';
export { unsealModel } from './models/sealed-models.js';
export type { SealedModelRef, UnsealedModel } from './models/sealed-models.js';
