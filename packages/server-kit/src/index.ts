/** Fastify bootstrap for Tresor services (DESIGN.md §4): TLS 1.3, config, errors, health, metrics, redacting logs. */
export {
  closeOnSignals,
  createServer,
  useErrorShaper,
  type CreateServerOptions,
  type TresorServer,
} from './create-server.js';
export {
  parseServerConfig,
  serverConfigSchema,
  type ServerConfig,
  type ServerConfigInput,
} from './config.js';
export { configInvalid, deepFreeze } from './config-error.js';
export {
  defaultErrorShaper,
  ERROR_CODE_HEADER,
  sendShapedError,
  type ErrorShaper,
  type ShapedError,
} from './error-shaper.js';
export { toTresorError } from './error-mapping.js';
export { installHealthRoutes, type ReadinessCheck } from './health.js';
export { HttpMetrics } from './metrics.js';
export { createServiceLogger, type LogLevel, type ServiceLoggerOptions } from './logger.js';
export {
  isSensitiveName,
  REDACTED,
  safeError,
  safeReply,
  safeRequest,
  scrubLogObject,
  scrubLogValue,
} from './log-redaction.js';
export { newRequestId, REQUEST_ID_HEADER, verifiedClientCertificate } from './request-context.js';
export { TokenBucket } from './token-bucket.js';
