/**
 * The AI gateway enclave: an Oblivious HTTP endpoint with the OpenAI-compatible API inside the
 * encryption, API keys, Cedar policies, rate limits and quotas, attested routing to serving
 * replicas over mTLS, and minimal metadata (docs/gateway.md).
 */
export {
  gatewayConfigSchema,
  loadGatewayConfig,
  parseGatewayConfig,
  type GatewayConfig,
  type GatewayConfigInput,
} from './config.js';
export {
  startGatewayService,
  type GatewayDependencies,
  type RunningGateway,
} from './start-gateway-service.js';
export {
  PolicyReplicaVerifier,
  componentEvidenceSchema,
  replicaTrustPolicy,
  type ReplicaPolicyOptions,
  type ReplicaExpectations,
  type ReplicaVerifier,
  type VerifiedReplica,
} from './replicas/replica-verifier.js';
export { ReplicaPool, type Replica, type ReplicaPoolOptions } from './replicas/replica-pool.js';
export { MeshClient, type MeshTls } from './replicas/mesh-client.js';
export {
  HttpsTrustDocumentSource,
  type TrustDocuments,
  type TrustDocumentSource,
} from './attestation/trust-documents.js';
export { configfsTsmAttester, sampleTeeAttester, type TeeAttester } from './attestation/gateway-attester.js';
export { spkiSha256OfPem } from './attestation/tls-spki.js';
export {
  API_KEY_PREFIX,
  apiKeyIdOf,
  generateApiKey,
  hashApiKey,
  type NewApiKey,
} from './auth/api-key-secret.js';
export { checkGatewayPolicy, GATEWAY_POLICY_SCHEMA, type GatewayOperation } from './auth/gateway-policy.js';
export { MemoryCounterStore, windowOf, type CounterStore } from './limits/counter-store.js';
export { RedisCounterStore } from './limits/redis-counter-store.js';
export { UsageLimiter, type LimitDefaults } from './limits/usage-limiter.js';
export {
  encodeContentChunk,
  encodeResponseHead,
  BhttpResponseReader,
  RESPONSE_END,
} from './api/bhttp-stream.js';
export { openAiErrorBody, type OpenAiErrorBody } from './api/openai-error.js';
export { gatewayOpenApi, OPENAPI_PATH } from './openapi/gateway-openapi.js';
export { OHTTP_PATH } from './routes/ohttp-route.js';
export {
  CONSOLE_CONFIG_FILE,
  CONSOLE_CSP,
  CONSOLE_MANIFEST_FILE,
  CONSOLE_PREFIX,
  consolePageHash,
  consolePlugin,
  consoleResponse,
  loadConsoleBuild,
  type ConsoleBuild,
  type ConsolePluginOptions,
  type ConsoleResponse,
} from './console/console-plugin.js';
