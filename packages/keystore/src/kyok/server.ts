import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { TLSSocket } from 'node:tls';
import { TresorError } from '@tresor/protocol';
import { handleKyokRequest, type KyokServices } from './routes.js';
import { MAX_BODY_BYTES } from './wire.js';

export interface KyokServerTls {
  /** The server's certificate chain and private key (PEM). */
  readonly cert: string;
  readonly key: string;
  /** CA certificate(s) (PEM) that issue the client certificates the server accepts. */
  readonly clientCa: string;
}

export interface KyokServerOptions {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
  readonly tls: KyokServerTls;
  readonly services: KyokServices;
}

export interface RunningKyokServer {
  /** https://host:port */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * The reference KYOK key server over node:https: TLS 1.3 only (RFC 8446; TLS 1.2 and below refused in
 * the handshake), and mutual TLS — a client without a certificate from `clientCa` never gets past
 * the handshake (requestCert + rejectUnauthorized).
 */
export async function startKyokServer(options: KyokServerOptions): Promise<RunningKyokServer> {
  const server = createServer(
    {
      cert: options.tls.cert,
      key: options.tls.key,
      ca: options.tls.clientCa,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
      maxVersion: 'TLSv1.3',
    },
    (req, res) => {
      void serve(options.services, req, res);
    },
  );
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (cause) => {
      reject(
        new TresorError('KEYSTORE_UNAVAILABLE', `cannot listen on ${options.host}:${options.port}`, {
          cause,
        }),
      );
    });
    server.listen(options.port, options.host, resolve);
  });
  const port = (server.address() as AddressInfo).port;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;
  return { url: `https://${host}:${port}`, port, close: () => closeServer(server) };
}

async function closeServer(server: Server): Promise<void> {
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
    server.closeAllConnections();
  });
}

async function serve(services: KyokServices, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let response: { status: number; body: unknown };
  try {
    const socket = req.socket;
    const fingerprint = socket instanceof TLSSocket ? socket.getPeerCertificate().fingerprint256 : undefined;
    if (!(socket instanceof TLSSocket) || !socket.authorized || typeof fingerprint !== 'string') {
      throw new TresorError('KYOK_CLIENT_FORBIDDEN', 'a client certificate is required');
    }
    const body = await readJsonBody(req);
    const authorization = req.headers.authorization ?? '';
    const bearer = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(authorization);
    response = await handleKyokRequest(services, {
      method: req.method ?? 'GET',
      path: (req.url ?? '/').split('?')[0] ?? '/',
      body,
      client: fingerprint.replaceAll(':', '').toLowerCase(),
      bearerToken: bearer?.[1] ?? null,
    });
  } catch (err) {
    const e =
      err instanceof TresorError
        ? err
        : new TresorError('INTERNAL_ERROR', 'the key server failed unexpectedly');
    response = { status: e.status, body: { code: e.code, message: e.message, action: e.action } };
  }
  const text = JSON.stringify(response.body);
  res.writeHead(response.status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/** Reads at most MAX_BODY_BYTES, refusing longer bodies as soon as they exceed the limit. */
async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > MAX_BODY_BYTES)
    throw new TresorError('INPUT_MALFORMED', `request bodies are at most ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) {
      req.destroy();
      throw new TresorError('INPUT_MALFORMED', `request bodies are at most ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(buffer);
  }
  if (size === 0) return null;
  const raw = Buffer.concat(chunks);
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch (cause) {
    throw new TresorError('INPUT_MALFORMED', 'the request body is not JSON', { cause });
  } finally {
    // The body of a wrap request is a data key.
    raw.fill(0);
    for (const c of chunks) c.fill(0);
  }
}
