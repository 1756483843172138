import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { ATTESTATION_BUNDLE_PATH, TresorError } from '@tresor/protocol';
import { normaliseGatewayUrl } from '@tresor/sdk';
import { consoleResponse, loadConsoleBuild, type ConsoleBuild } from '@tresor/gateway';
import { isLoopback, listenLocally, parseListen } from './proxy.js';

/**
 * `tresor console`: the web console on this machine. Serves the console build (the same bytes and
 * headers as the gateway's /console/) and relays to the gateway exactly what the page needs — the
 * attestation bundle, the OHTTP key list, OHTTP requests and signed admin requests — so the page
 * and the gateway share one origin. The relay never sees plaintext of a model request: OHTTP
 * bodies are encrypted in the page to the attested gateway key, and are passed on as bytes.
 */
export interface ConsoleServerOptions {
  readonly gateway: string;
  /** host:port, loopback only (the page is served over plain HTTP). */
  readonly listen: string;
  /** The built console (apps/console/dist). */
  readonly dist: string;
  /** The trust policy's JSON, handed to the page in console-config.json. */
  readonly policy: unknown;
  readonly adminAudience: string;
  /** Extra CA (PEM) to trust for the gateway's TLS certificate. */
  readonly ca?: string;
}

export interface RunningConsole {
  readonly url: string;
  readonly pageHash: string;
  close(): Promise<void>;
}

const OHTTP_PATH = '/v1/ohttp';
const OHTTP_KEYS_PATH = '/.well-known/ohttp-gateway';
const ADMIN_PATH = /^\/admin\/v0\/[a-z][a-z0-9/-]{0,63}$/;
const REQUEST_HEADERS = ['content-type', 'accept', 'content-length'];
const RESPONSE_HEADERS = ['content-type', 'cache-control', 'tresor-error-code', 'content-length'];

/** Which gateway route a page request goes to; undefined for everything else (served from the build). */
export function relayTarget(method: string, url: string): string | undefined {
  const parsed = new URL(url, 'http://console.invalid');
  const path = parsed.pathname;
  if (method === 'GET' && path === ATTESTATION_BUNDLE_PATH) return `${path}${parsed.search}`;
  if (method === 'GET' && path === OHTTP_KEYS_PATH && parsed.search === '') return path;
  if (method === 'POST' && path === OHTTP_PATH && parsed.search === '') return path;
  if (method === 'POST' && ADMIN_PATH.test(path) && parsed.search === '') return path;
  return undefined;
}

function sendJsonError(res: ServerResponse, error: TresorError): void {
  res.writeHead(error.status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(error.toJSON()));
}

function relay(
  gateway: URL,
  ca: string | undefined,
  target: string,
  req: IncomingMessage,
  res: ServerResponse,
): void {
  const headers: Record<string, string> = {};
  for (const name of REQUEST_HEADERS) {
    const value = req.headers[name];
    if (typeof value === 'string') headers[name] = value;
  }
  const options = {
    method: req.method ?? 'GET',
    host: gateway.hostname,
    port: gateway.port === '' ? undefined : Number(gateway.port),
    path: `${gateway.pathname.replace(/\/$/, '')}${target}`,
    headers,
    ...(gateway.protocol === 'https:'
      ? { minVersion: 'TLSv1.3' as const, ...(ca === undefined ? {} : { ca }) }
      : {}),
  };
  const upstream = (gateway.protocol === 'https:' ? httpsRequest : httpRequest)(options, (answer) => {
    const out: Record<string, string> = {};
    for (const name of RESPONSE_HEADERS) {
      const value = answer.headers[name];
      if (typeof value === 'string') out[name] = value;
    }
    res.writeHead(answer.statusCode ?? 502, out);
    answer.pipe(res);
    answer.on('error', () => res.destroy());
  });
  upstream.on('error', () => {
    if (res.headersSent) res.destroy();
    else
      sendJsonError(
        res,
        new TresorError('GATEWAY_UNREACHABLE', `could not reach the gateway ${gateway.origin}`),
      );
  });
  req.on('aborted', () => upstream.destroy());
  res.on('close', () => {
    if (!res.writableFinished) upstream.destroy();
  });
  req.pipe(upstream);
}

function serveFile(build: ConsoleBuild, config: unknown, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    sendJsonError(res, new TresorError('ROUTE_NOT_FOUND', `${req.method ?? '?'} is not served here`));
    req.resume();
    return;
  }
  const path = new URL(req.url ?? '/', 'http://console.invalid').pathname.replace(/^\//, '');
  const answer = consoleResponse(build, path, config);
  const etag = answer.headers.etag;
  if (answer.status === 200 && etag !== undefined && req.headers['if-none-match'] === etag) {
    res.writeHead(304, answer.headers);
    res.end();
    return;
  }
  res.writeHead(answer.status, answer.headers);
  res.end(req.method === 'HEAD' ? undefined : answer.body);
}

export async function startConsoleServer(options: ConsoleServerOptions): Promise<RunningConsole> {
  const { host, port } = parseListen(options.listen);
  if (!isLoopback(host)) {
    throw new TresorError(
      'PROXY_BIND_REFUSED',
      `the console is served over plain HTTP and listens on loopback only; ${host} is not loopback`,
    );
  }
  const gateway = normaliseGatewayUrl(options.gateway);
  const build = await loadConsoleBuild(options.dist);
  const config = { policy: options.policy, adminAudience: options.adminAudience, upstream: gateway.origin };
  const server = createServer((req, res) => {
    const target = relayTarget(req.method ?? 'GET', req.url ?? '/');
    if (target === undefined) serveFile(build, config, req, res);
    else relay(gateway, options.ca, target, req, res);
  });
  const origin = await listenLocally(server, options.listen, { host, port });
  return {
    url: `${origin}/`,
    pageHash: build.pageHash,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** Reads a file the command needs, as INPUT_UNREADABLE (exit 2) when it cannot. */
export async function readInput(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new TresorError('INPUT_UNREADABLE', `cannot read the ${what} ${path}`, { cause });
  }
}
