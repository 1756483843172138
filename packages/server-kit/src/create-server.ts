import {
  fastify,
  LogController,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Http2Session } from 'node:http2';
import type { Socket } from 'node:net';
import type { DestinationStream, Logger } from 'pino';
import { TresorError } from '@tresor/protocol';
import { parseServerConfig, type ServerConfig, type ServerConfigInput } from './config.js';
import { defaultErrorShaper, sendShapedError, type ErrorShaper } from './error-shaper.js';
import { installHealthRoutes, type ReadinessCheck } from './health.js';
import { createServiceLogger } from './logger.js';
import { HttpMetrics } from './metrics.js';
import { newRequestId, REQUEST_ID_HEADER } from './request-context.js';

export interface CreateServerOptions {
  /** The service name on every log line and metric (`trust`, `gateway`, `serving`). */
  readonly service: string;
  /** Validated here (CONFIG_INVALID naming the field) and frozen, whether given raw or already parsed. */
  readonly config: ServerConfigInput | ServerConfig;
  /** Where log lines go; stdout when omitted. */
  readonly logDestination?: DestinationStream;
  /** How refusals are rendered outside scopes that install their own; Tresor's `{code, message, action}` by default. */
  readonly errorShaper?: ErrorShaper;
  /** Readiness checks for /readyz, by name; more can be added before `listen`. */
  readonly readiness?: Readonly<Record<string, ReadinessCheck>>;
  /** Also export Node process metrics (heap, event loop lag) at /metrics. */
  readonly processMetrics?: boolean;
}

/** A configured server: register routes on `app`, then `listen`; `close` shuts down gracefully. */
export interface TresorServer {
  readonly app: FastifyInstance;
  readonly config: ServerConfig;
  readonly logger: Logger;
  readonly metrics: HttpMetrics;
  addReadinessCheck(name: string, check: ReadinessCheck): void;
  /** Starts listening; resolves with the https URL (the actual port when the config says 0). */
  listen(): Promise<string>;
  /**
   * Stops accepting connections, lets requests in flight finish for `shutdownGraceMs`, then cuts
   * whatever is left. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Renders every error thrown in `scope` (and every unknown route under it) through `shaper`.
 * Fastify scopes are encapsulated, so a protocol plugin (e.g. the KBS routes) can install its own
 * shaper without touching the rest of the server.
 */
export function useErrorShaper(scope: FastifyInstance, shaper: ErrorShaper): void {
  scope.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) =>
    sendShapedError(shaper, error, request, reply),
  );
  scope.setNotFoundHandler((request, reply) =>
    sendShapedError(
      shaper,
      new TresorError('ROUTE_NOT_FOUND', `no endpoint ${request.method} ${request.url.split('?')[0] ?? ''}`),
      request,
      reply,
    ),
  );
}

function tlsOptions(config: ServerConfig): Record<string, unknown> {
  const { cert, key, clientCa, requireClientCert } = config.tls;
  return {
    cert,
    key,
    // DESIGN.md §1: TLS 1.3 only on every listener; a TLS 1.2 client fails the handshake.
    minVersion: 'TLSv1.3',
    ...(clientCa === undefined
      ? {}
      : { ca: clientCa, requestCert: true, rejectUnauthorized: requireClientCert }),
  };
}

/**
 * A fastify server with Tresor's defaults: HTTPS with TLS 1.3 only (optionally HTTP/2 and mutual
 * TLS), a frozen validated configuration, catalogue error mapping with no stack traces or bare 500s,
 * body size limits, `/healthz`, `/readyz`, content-free `/metrics`, a redacting pino logger, request
 * ids and graceful shutdown.
 */
export function createServer(options: CreateServerOptions): TresorServer {
  const config = parseServerConfig(options.config);
  const logger = createServiceLogger({
    service: options.service,
    level: config.logLevel,
    ...(options.logDestination === undefined ? {} : { destination: options.logDestination }),
  });
  const serverOptions = {
    // noDelay: Node's HTTP/1.1 server disables Nagle on accepted sockets, its HTTP/2 server (and so
    // the HTTP/1.1 fallback of an allowHTTP1 server) does not: a small write after an unacknowledged
    // one waited for the client's delayed ACK, 40 ms before a streamed answer's first event.
    https: config.http2
      ? { allowHTTP1: true, noDelay: true, ...tlsOptions(config) }
      : { noDelay: true, ...tlsOptions(config) },
    ...(config.http2 ? { http2: true } : {}),
    loggerInstance: logger,
    // Fastify's own request lines log URLs with query strings; one redacted line per request is logged below instead.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: newRequestId,
    requestIdHeader: false as const,
    bodyLimit: config.limits.bodyBytes,
    requestTimeout: config.limits.requestTimeoutMs,
    keepAliveTimeout: config.limits.keepAliveTimeoutMs,
    return503OnClosing: true,
  };
  // fastify's typings pick the server type (HTTP/1.1 or HTTP/2) from literal options; routes here use
  // only the common request/reply surface, so the instance is typed as the default one.
  const app = fastify(serverOptions as Parameters<typeof fastify>[0]) as unknown as FastifyInstance;

  const metrics = new HttpMetrics(options.service, { processMetrics: options.processMetrics === true });
  const checks = new Map<string, ReadinessCheck>(Object.entries(options.readiness ?? {}));
  useErrorShaper(app, options.errorShaper ?? defaultErrorShaper);
  app.addHook('onRequest', (request, reply, done) => {
    void reply.header(REQUEST_ID_HEADER, request.id);
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    request.log.info(
      {
        method: request.method,
        route: request.routeOptions.url ?? 'unmatched',
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime * 10) / 10,
      },
      'request completed',
    );
    done();
  });
  metrics.install(app);
  installHealthRoutes(app, checks);
  const sessions = trackHttp2Sessions(app);

  let closing: Promise<void> | undefined;
  return {
    app,
    config,
    logger,
    metrics,
    addReadinessCheck(name, check) {
      checks.set(name, check);
    },
    async listen() {
      try {
        return await app.listen({ host: config.host, port: config.port });
      } catch (cause) {
        throw new TresorError('CONFIG_INVALID', `cannot listen on ${config.host}:${config.port}`, { cause });
      }
    },
    close() {
      closing ??= closeGracefully(app, config.shutdownGraceMs, sessions);
      return closing;
    },
  };
}

/** HTTP/2 sessions of `app`, tracked so shutdown can send GOAWAY and later cut them (HTTP/1.1 servers have closeAllConnections). */
const openConnections = new WeakMap<FastifyInstance, Set<Socket>>();

function connections(app: FastifyInstance): Set<Socket> {
  return openConnections.get(app) ?? new Set();
}

function trackHttp2Sessions(app: FastifyInstance): Set<Http2Session> {
  const sockets = new Set<Socket>();
  openConnections.set(app, sockets);
  app.server.on('secureConnection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  const sessions = new Set<Http2Session>();
  app.server.on('session', (session: Http2Session) => {
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
  });
  return sessions;
}

async function closeGracefully(
  app: FastifyInstance,
  graceMs: number,
  sessions: Set<Http2Session>,
): Promise<void> {
  const server = app.server as { closeAllConnections?: () => void };
  // RFC 9113 §6.8: GOAWAY lets streams in flight finish while the client opens no new ones.
  for (const session of sessions) session.close();
  const timer = setTimeout(() => {
    server.closeAllConnections?.();
    for (const session of sessions) session.destroy();
    // An HTTP/2 server (allowHTTP1) has no closeAllConnections: its kept-alive HTTP/1.1
    // connections would hold app.close() open forever. Cut every connection still open.
    for (const socket of connections(app)) socket.destroy();
  }, graceMs);
  timer.unref();
  try {
    await app.close();
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Closes `server` gracefully on the first of `signals` (SIGTERM from Kubernetes, SIGINT from a
 * terminal). Returns a function that removes the handlers.
 */
export function closeOnSignals(
  server: TresorServer,
  signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT'],
): () => void {
  const handler = (signal: NodeJS.Signals): void => {
    server.logger.info({ signal }, 'shutting down');
    void server.close();
  };
  for (const signal of signals) process.once(signal, handler);
  return () => {
    for (const signal of signals) process.off(signal, handler);
  };
}
