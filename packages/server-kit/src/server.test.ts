import { connect as http2Connect } from 'node:http2';
import { Writable } from 'node:stream';
import { connect as tlsConnect } from 'node:tls';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { createServer, useErrorShaper, type TresorServer } from './create-server.js';
import { ERROR_CODE_HEADER } from './error-shaper.js';
import { createTestPki, type TestPki } from '../../../test/support/test-pki.js';

const CANARY = 'CANARY-d41d8cd98f';

/** Collects log lines in memory, so tests can read back exactly what the logger wrote. */
class LogCapture extends Writable {
  readonly lines: string[] = [];
  override _write(chunk: Buffer, _encoding: BufferEncoding, done: () => void): void {
    this.lines.push(
      ...chunk
        .toString('utf8')
        .split('\n')
        .filter((l) => l.length > 0),
    );
    done();
  }
  get text(): string {
    return this.lines.join('\n');
  }
}

let pki: TestPki;
beforeAll(async () => {
  pki = await createTestPki();
});

async function start(
  configure: (server: TresorServer) => void | Promise<void>,
  extra: Record<string, unknown> = {},
  logs = new LogCapture(),
): Promise<{ server: TresorServer; url: string; agent: Agent; logs: LogCapture }> {
  const server = createServer({
    service: 'test',
    config: { port: 0, tls: { cert: pki.server.cert, key: pki.server.key }, ...extra },
    logDestination: logs,
  });
  await configure(server);
  const url = await server.listen();
  return { server, url, agent: new Agent({ connect: { ca: pki.ca } }), logs };
}

describe('createServer over loopback TLS', () => {
  let ctx: Awaited<ReturnType<typeof start>>;
  beforeAll(async () => {
    ctx = await start(
      async (server) => {
        server.addReadinessCheck('always', () => Promise.resolve());
        server.app.post('/echo-size', (req) => Promise.resolve({ size: JSON.stringify(req.body).length }));
        server.app.get('/boom', () => {
          throw new Error(`internal detail ${CANARY}`);
        });
        server.app.get('/denied', () => {
          throw new TresorError('POLICY_DENIED', 'the policy denies this');
        });
        server.app.get('/items/:id', () => Promise.resolve({ ok: true }));
        await server.app.register(
          (scope, _options, done) => {
            useErrorShaper(scope, (error) => ({
              status: 401,
              body: { type: `urn:test/${error.code}`, detail: error.message },
            }));
            scope.get('/fail', () => {
              throw new TresorError('RESOURCE_NOT_FOUND', 'nothing here');
            });
            done();
          },
          { prefix: '/custom' },
        );
      },
      { limits: { bodyBytes: 1024 } },
    );
  });
  afterAll(async () => {
    await ctx.server.close();
    await ctx.agent.close();
  });

  const get = (path: string, init: Parameters<typeof request>[1] = {}) =>
    request(`${ctx.url}${path}`, { dispatcher: ctx.agent, ...init });

  it('answers /healthz and /readyz with a request id', async () => {
    const health = await get('/healthz');
    expect(health.statusCode).toBe(200);
    expect(await health.body.json()).toEqual({ status: 'ok' });
    expect(health.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    const ready = await get('/readyz');
    expect(ready.statusCode).toBe(200);
    expect(await ready.body.json()).toEqual({ status: 'ready', checks: ['always'] });
  });

  it('ignores a client-chosen request id', async () => {
    const res = await get('/healthz', { headers: { 'x-request-id': 'chosen-by-client' } });
    await res.body.dump();
    expect(res.headers['x-request-id']).not.toBe('chosen-by-client');
  });

  it('refuses a TLS 1.2 client during the handshake', async () => {
    const { port } = new URL(ctx.url);
    const outcome = await new Promise<string>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: Number(port), ca: pki.ca, maxVersion: 'TLSv1.2' });
      socket.once('secureConnect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.once('error', (err: NodeJS.ErrnoException) => {
        resolve(err.code ?? err.message);
      });
    });
    expect(outcome).not.toBe('connected');
    expect(outcome).toMatch(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|VERSION/);
  });

  it('negotiates TLS 1.3', async () => {
    const { port } = new URL(ctx.url);
    const protocol = await new Promise<string | null>((resolve, reject) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port: Number(port),
        ca: pki.ca,
        servername: 'localhost',
      });
      socket.once('secureConnect', () => {
        resolve(socket.getProtocol());
        socket.destroy();
      });
      socket.once('error', reject);
    });
    expect(protocol).toBe('TLSv1.3');
  });

  it('refuses bodies over the configured limit with REQUEST_BODY_TOO_LARGE (413)', async () => {
    const res = await get('/echo-size', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(2048) }),
    });
    expect(res.statusCode).toBe(413);
    expect(res.headers[ERROR_CODE_HEADER]).toBe('REQUEST_BODY_TOO_LARGE');
    expect(await res.body.json()).toMatchObject({ code: 'REQUEST_BODY_TOO_LARGE' });
  });

  it('refuses malformed JSON with INPUT_MALFORMED and does not echo the body', async () => {
    const res = await get('/echo-size', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: `{"a": ${CANARY}`,
    });
    expect(res.statusCode).toBe(400);
    const text = await res.body.text();
    expect(JSON.parse(text)).toMatchObject({ code: 'INPUT_MALFORMED' });
    expect(text).not.toContain(CANARY);
  });

  it('refuses an unsupported media type with REQUEST_MEDIA_TYPE_UNSUPPORTED (415)', async () => {
    const res = await get('/echo-size', {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body: 'a,b',
    });
    expect(res.statusCode).toBe(415);
    expect(await res.body.json()).toMatchObject({ code: 'REQUEST_MEDIA_TYPE_UNSUPPORTED' });
  });

  it('answers unknown routes with ROUTE_NOT_FOUND (404)', async () => {
    const res = await get('/nope?x=1');
    expect(res.statusCode).toBe(404);
    expect(await res.body.json()).toMatchObject({
      code: 'ROUTE_NOT_FOUND',
      message: 'no endpoint GET /nope',
    });
  });

  it('answers an unexpected failure with INTERNAL_ERROR: no stack, no internal message', async () => {
    const res = await get('/boom');
    expect(res.statusCode).toBe(500);
    const text = await res.body.text();
    expect(JSON.parse(text)).toEqual({
      code: 'INTERNAL_ERROR',
      message: 'An unexpected internal error occurred; no data was released.',
      action: 'Retry; if it persists, report it with the time and the request id (never the prompt).',
    });
    expect(text).not.toContain(CANARY);
    expect(text).not.toMatch(/at .*\.ts:\d+/);
  });

  it('maps a catalogue error to its status and body', async () => {
    const res = await get('/denied');
    expect(res.statusCode).toBe(403);
    expect(await res.body.json()).toMatchObject({ code: 'POLICY_DENIED', message: 'the policy denies this' });
  });

  it('lets a scope install its own error shaper, for errors and unknown routes', async () => {
    const fail = await get('/custom/fail');
    expect(fail.statusCode).toBe(401);
    expect(fail.headers[ERROR_CODE_HEADER]).toBe('RESOURCE_NOT_FOUND');
    expect(await fail.body.json()).toEqual({ type: 'urn:test/RESOURCE_NOT_FOUND', detail: 'nothing here' });
    const missing = await get('/custom/missing');
    expect(missing.statusCode).toBe(401);
    expect(await missing.body.json()).toMatchObject({ type: 'urn:test/ROUTE_NOT_FOUND' });
  });

  it('exports content-free metrics: route patterns and statuses, never concrete paths', async () => {
    await (await get(`/items/${CANARY}`)).body.dump();
    const res = await get('/metrics');
    const text = await res.body.text();
    expect(res.statusCode).toBe(200);
    expect(text).toContain(
      'http_requests_total{method="GET",route="/items/:id",status="200",service="test"}',
    );
    expect(text).toContain('route="unmatched",status="404"');
    expect(text).not.toContain(CANARY);
  });
});

describe('readiness', () => {
  it('answers 503 SERVICE_NOT_READY naming the failing check, without its error', async () => {
    const ctx = await start((server) => {
      server.addReadinessCheck('keystore', () => Promise.reject(new Error(`db at ${CANARY}`)));
      server.addReadinessCheck('fine', () => Promise.resolve());
    });
    try {
      const res = await request(`${ctx.url}/readyz`, { dispatcher: ctx.agent });
      expect(res.statusCode).toBe(503);
      const text = await res.body.text();
      expect(JSON.parse(text)).toMatchObject({
        code: 'SERVICE_NOT_READY',
        details: { failing: ['keystore'] },
      });
      expect(text).not.toContain(CANARY);
    } finally {
      await ctx.server.close();
      await ctx.agent.close();
    }
  });
});

describe('log redaction canary', () => {
  it('never writes a marker sent in a body, header, cookie, query or error message to the log', async () => {
    const logs = new LogCapture();
    const ctx = await start(
      (server) => {
        server.app.post('/submit', (req) => {
          // A careless handler logging the request and the body: the redactor must still hold.
          req.log.info({ req, body: req.body, headers: req.headers }, 'handling');
          throw new Error(`failed on ${JSON.stringify(req.body)}`);
        });
      },
      { logLevel: 'trace' },
      logs,
    );
    try {
      const base = {
        dispatcher: ctx.agent,
        method: 'POST' as const,
        headers: {
          'content-type': 'application/json',
          authorization: `Bearer ${CANARY}`,
          cookie: `kbs-session-id=${CANARY}`,
          'x-api-key': CANARY,
        },
      };
      await (
        await request(`${ctx.url}/submit?token=${CANARY}`, {
          ...base,
          body: JSON.stringify({ prompt: CANARY }),
        })
      ).body.dump();
      await (await request(`${ctx.url}/submit`, { ...base, body: `{"broken": "${CANARY}` })).body.dump();
      await (await request(`${ctx.url}/missing/x?q=${CANARY}`, { ...base, method: 'GET' })).body.dump();
    } finally {
      await ctx.server.close();
      await ctx.agent.close();
    }
    expect(logs.lines.length).toBeGreaterThan(3);
    expect(logs.text).toContain('request completed');
    expect(logs.text).not.toContain(CANARY);
  });
});

describe('HTTP/2', () => {
  it('serves HTTP/2 over TLS 1.3 when configured', async () => {
    const ctx = await start(() => undefined, { http2: true });
    try {
      const session = http2Connect(ctx.url, { ca: pki.ca });
      const status = await new Promise<number>((resolve, reject) => {
        const stream = session.request({ ':path': '/healthz' });
        stream.on('response', (headers) => {
          resolve(Number(headers[':status']));
        });
        stream.on('error', reject);
        stream.resume();
        stream.end();
      });
      expect(status).toBe(200);
      expect(session.alpnProtocol).toBe('h2');
      session.close();
    } finally {
      await ctx.server.close();
      await ctx.agent.close();
    }
  });
});

describe('Nagle', () => {
  // net.Server sets TCP_NODELAY on every accepted socket when its `noDelay` is on. Node's HTTP/2
  // server leaves it off (its HTTP/1.1 server turns it on): a streamed answer's second small write
  // then waited for the client's delayed ACK, 40 ms.
  it.each([false, true])('disables Nagle on accepted connections (http2: %s)', async (http2) => {
    const ctx = await start(() => undefined, { http2 });
    try {
      expect((ctx.server.app.server as unknown as { noDelay?: unknown }).noDelay).toBe(true);
    } finally {
      await ctx.server.close();
      await ctx.agent.close();
    }
  });
});

describe('HTTP/2 shutdown', () => {
  it('closes within the grace period even while a client keeps its session open', async () => {
    const ctx = await start(() => undefined, { http2: true, shutdownGraceMs: 200 });
    const session = http2Connect(ctx.url, { ca: pki.ca });
    session.on('error', () => undefined);
    await new Promise<void>((resolve) => {
      session.once('connect', () => {
        resolve();
      });
    });
    const started = Date.now();
    await ctx.server.close();
    expect(Date.now() - started).toBeLessThan(5_000);
    session.destroy();
    await ctx.agent.close();
  });
});

describe('mutual TLS', () => {
  it('refuses a client without a certificate and serves one with a certificate from the client CA', async () => {
    const ctx = await start(() => undefined, {
      tls: { cert: pki.server.cert, key: pki.server.key, clientCa: pki.ca, requireClientCert: true },
    });
    const withCert = new Agent({ connect: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key } });
    try {
      await expect(request(`${ctx.url}/healthz`, { dispatcher: ctx.agent })).rejects.toThrow();
      const res = await request(`${ctx.url}/healthz`, { dispatcher: withCert });
      expect(res.statusCode).toBe(200);
      await res.body.dump();
    } finally {
      await withCert.close();
      await ctx.server.close();
      await ctx.agent.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('lets a request in flight finish, then stops accepting connections', async () => {
    let release: () => void = () => undefined;
    const ctx = await start((server) => {
      server.app.get('/slow', async () => {
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        return { done: true };
      });
    });
    const inFlight = request(`${ctx.url}/slow`, { dispatcher: ctx.agent });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const closed = ctx.server.close();
    release();
    const res = await inFlight;
    expect(res.statusCode).toBe(200);
    expect(await res.body.json()).toEqual({ done: true });
    await closed;
    const fresh = new Agent({ connect: { ca: pki.ca } });
    await expect(request(`${ctx.url}/healthz`, { dispatcher: fresh })).rejects.toThrow();
    await fresh.close();
    await ctx.agent.close();
  });
});
