import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { TresorError } from '@tresor/protocol';
import { connect, type ConnectOptions, type TresorClient } from '@tresor/sdk';
import type { CliIo } from '../io.js';
import { untilSignal } from '../signals.js';
import { readPolicy, transportFor } from './verify-options.js';

export interface ProxyOptions extends ConnectOptions {
  readonly upstream: string;
  /** host:port; loopback only unless allowRemote. */
  readonly listen: string;
  readonly allowRemote?: boolean;
  /** Re-verify the gateway this often (seconds). */
  readonly reverifySeconds: number;
  /** Called when a periodic re-verification fails (never with request content). */
  readonly onVerificationFailure?: (err: TresorError) => void;
}

export interface RunningProxy {
  readonly url: string;
  readonly client: TresorClient;
  /** Re-verifies now (what the periodic timer does); failures switch the proxy to refusing. */
  reverify(): Promise<void>;
  close(): Promise<void>;
}

/** host:port with IPv6 in brackets; refuses anything else with USAGE_INVALID. */
export function parseListen(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (match === null || host === undefined || !Number.isInteger(port) || port > 65535) {
    throw new TresorError('USAGE_INVALID', `--listen ${text} is not host:port (e.g. 127.0.0.1:8080)`);
  }
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

/**
 * Starts `server` listening on `listen` (already parsed into host and port); resolves with its
 * `http://host:port` origin (IPv6 in brackets). A port in use is PORT_IN_USE, any other bind
 * failure PROXY_BIND_REFUSED.
 */
export async function listenLocally(
  server: Server,
  listen: string,
  { host, port }: { host: string; port: number },
): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new TresorError('PORT_IN_USE', `${listen} is already in use; pick another --listen port`)
          : new TresorError('PROXY_BIND_REFUSED', `cannot listen on ${listen}: ${err.code ?? err.message}`),
      );
    });
    server.listen(port, host, () => {
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shown = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${shown}:${String(address.port)}`;
}

/** An OpenAI-shaped error body, so any OpenAI client shows it as an API error. */
function openAiError(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message, type: 'tresor_error', param: null, code } }));
}

/** Response headers that describe the gateway's connection, not the answer: never passed on. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'content-length',
  'transfer-encoding',
  'upgrade',
  'trailer',
  'proxy-connection',
]);

/** The whole request body. */
async function readBody(req: IncomingMessage): Promise<Uint8Array> {
  const parts: Buffer[] = [];
  for await (const part of req as AsyncIterable<Buffer>) parts.push(part);
  return Buffer.concat(parts);
}

/** Resolves once `res` takes writes again (its buffer drained) or is gone. */
function writable(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/**
 * Copies `body` to `res` as it arrives, waiting while the client reads slower than the answer
 * comes. An error (a receipt that fails at the end of a stream, the gateway's connection breaking)
 * cuts the answer so the client sees it incomplete; a client that left cancels `body`.
 */
async function relay(body: ReadableStream<Uint8Array>, res: ServerResponse): Promise<void> {
  const reader = body.getReader();
  const gone = (): void => {
    if (!res.writableFinished) reader.cancel().catch(() => undefined);
  };
  res.once('close', gone);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (res.destroyed) {
        await reader.cancel();
        return;
      }
      if (!res.write(value)) await writable(res);
    }
    res.end();
  } catch {
    res.destroy();
  } finally {
    res.off('close', gone);
  }
}

/**
 * Starts the local proxy: verifies the gateway first (throws like `connect`), then answers every
 * request by sending it OHTTP-encapsulated through the verified client. The caller's own
 * Authorization header travels inside the encryption. While verification fails, every request
 * gets an OpenAI-shaped error and nothing is forwarded.
 */
export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const { host, port } = parseListen(options.listen);
  if (!isLoopback(host) && options.allowRemote !== true) {
    throw new TresorError(
      'PROXY_BIND_REFUSED',
      `the proxy serves plain HTTP and listens on loopback only; ${host} is not loopback (pass --allow-remote to override)`,
    );
  }
  const client = await connect(options.upstream, options);
  let failure: TresorError | null = null;
  const reverify = async (): Promise<void> => {
    try {
      await client.reverify();
      failure = null;
    } catch (err) {
      failure =
        err instanceof TresorError
          ? err
          : new TresorError('VERIFICATION_FAILED', 'the gateway could not be verified');
      options.onVerificationFailure?.(failure);
    }
  };
  const timer = setInterval(() => void reverify(), options.reverifySeconds * 1000);
  timer.unref();

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    if (failure !== null) {
      openAiError(res, 502, failure.code, `Tresor refused to forward: ${failure.message}`);
      req.resume();
      return;
    }
    const path = req.url ?? '/';
    if (!path.startsWith('/v1/')) {
      openAiError(res, 404, 'ROUTE_NOT_FOUND', 'the proxy serves the OpenAI API under /v1/');
      req.resume();
      return;
    }
    // A client that goes away (a timeout, Ctrl-C, a closed tab) cancels its request upstream: its
    // connection to the gateway is closed rather than the rest of the answer read for nobody.
    const upstream = new AbortController();
    res.once('close', () => {
      if (!res.writableFinished) upstream.abort();
    });
    const headers = new Headers();
    for (const [name, value] of Object.entries(req.headers)) {
      if (typeof value === 'string' && name !== 'host') headers.set(name, value);
    }
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const body = hasBody ? await readBody(req) : null;
    let response: Response;
    try {
      response = await client.fetch(`${client.gatewayUrl}${path}`, {
        method: req.method ?? 'GET',
        headers,
        signal: upstream.signal,
        ...(body === null ? {} : { body: body as BodyInit }),
      });
    } catch (err) {
      if (upstream.signal.aborted) return;
      const e = err instanceof TresorError ? err : new TresorError('UPSTREAM_FAILED', 'the request failed');
      openAiError(res, e.status >= 400 ? e.status : 502, e.code, e.message);
      return;
    }
    const out: Record<string, string> = {};
    response.headers.forEach((value, name) => {
      if (!HOP_BY_HOP.has(name)) out[name] = value;
    });
    res.writeHead(response.status, out);
    if (response.body === null) {
      res.end();
      return;
    }
    await relay(response.body, res);
  };
  const server = createServer((req, res) => {
    void handle(req, res).catch(() => {
      if (!res.headersSent) openAiError(res, 500, 'INTERNAL_ERROR', 'the proxy failed');
      else res.destroy();
    });
  });
  let url: string;
  try {
    url = await listenLocally(server, options.listen, { host, port });
  } catch (err) {
    clearInterval(timer);
    throw err;
  }
  return {
    url,
    client,
    reverify,
    close: () =>
      new Promise<void>((resolve) => {
        clearInterval(timer);
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** `tresor proxy --upstream <gateway-url> [--listen 127.0.0.1:8080]`. */
export async function proxyCommand(
  options: Record<string, string | boolean | undefined>,
  io: CliIo,
): Promise<void> {
  const seconds = Number(options.reverifySeconds ?? '60');
  if (!Number.isInteger(seconds) || seconds < 1)
    throw new TresorError('USAGE_INVALID', '--reverify-seconds must be a positive integer');
  const listen = typeof options.listen === 'string' ? options.listen : '127.0.0.1:8080';
  const { host } = parseListen(listen);
  if (!isLoopback(host) && options.allowRemote !== true) {
    // Refused before anything else is read or contacted.
    throw new TresorError(
      'PROXY_BIND_REFUSED',
      `the proxy listens on loopback only; ${host} is not loopback (pass --allow-remote to override)`,
    );
  }
  const policy = await readPolicy(typeof options.policy === 'string' ? options.policy : undefined, io);
  const transport = await transportFor(typeof options.ca === 'string' ? options.ca : undefined, io);
  const proxy = await startProxy({
    upstream: String(options.upstream),
    listen,
    allowRemote: options.allowRemote === true,
    reverifySeconds: seconds,
    policy,
    ...transport,
    onVerificationFailure: (err) =>
      io.stderr.write(`verification failed, refusing requests: ${err.code}: ${err.message}\n`),
  });
  const insecure = proxy.client.document.insecure ? ' INSECURE (sample TEE)' : '';
  io.stdout.write(
    `tresor proxy${insecure}: ${proxy.url}/v1 -> ${proxy.client.gatewayUrl} (verified; every request end-to-end encrypted)\n`,
  );
  await untilSignal();
  await proxy.close();
}
