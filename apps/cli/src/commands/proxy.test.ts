import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { createNodeTransport } from '@tresor/sdk/node';
import {
  createSampleGateway,
  MODEL_ID,
  type SampleGateway,
} from '../../../../test/support/sdk-sample-gateway.js';
import { spkiSha256OfPem } from '../../../../test/support/sdk-serve.js';
import { createTestCa, issueTestCertificate } from '../../../../test/support/test-pki.js';
import { startProxy, type RunningProxy } from './proxy.js';

const ANSWER = 'Grüezi from the enclave';
const CONCURRENCY = 16;
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** How the test gateway answers model requests: in full, or held back before its last piece. */
type Answering = 'whole' | 'hold-last-piece';

interface TestGateway {
  readonly url: string;
  answering: Answering;
  /** Resolves at the next OHTTP request that arrives ('arrived') or is cut before its answer ended ('cut'). */
  next(event: GatewayEvent): Promise<void>;
  /** How many answers the proxy cut (closed their connection before they ended). */
  readonly cuts: number;
  readonly server: Server;
}

type GatewayEvent = 'arrived' | 'cut';

/**
 * The sample gateway over HTTPS, noticing when the proxy closes a connection before an answer
 * ended. With `hold-last-piece` every OHTTP answer is sent except its last piece, which never
 * comes: the client has the start of the answer and waits for the rest.
 */
async function serveGateway(
  gateway: SampleGateway,
  tls: { cert: string; key: string },
): Promise<TestGateway> {
  let cuts = 0;
  let waiters: { event: GatewayEvent; resolve: () => void }[] = [];
  const emit = (event: GatewayEvent): void => {
    if (event === 'cut') cuts += 1;
    const now = waiters.filter((w) => w.event === event);
    waiters = waiters.filter((w) => w.event !== event);
    for (const w of now) w.resolve();
  };
  const listener = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const request = new Request(new URL(req.url ?? '/', 'https://localhost'), {
      method: req.method ?? 'GET',
      headers: Object.entries(req.headers).flatMap(([n, v]): [string, string][] =>
        typeof v === 'string' ? [[n, v]] : [],
      ),
      ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream, duplex: 'half' } : {}),
    });
    res.once('close', () => {
      if (!res.writableFinished) emit('cut');
    });
    if (req.url === '/v1/ohttp') emit('arrived');
    const response = await gateway.handle(request);
    const hold = state.answering === 'hold-last-piece' && req.url === '/v1/ohttp';
    res.writeHead(response.status, Object.fromEntries(response.headers));
    const reader = (response.body ?? new ReadableStream<Uint8Array>()).getReader();
    let previous: Uint8Array | undefined;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      if (previous !== undefined) res.write(previous);
      previous = value;
    }
    if (hold) return; // the last piece never comes
    if (previous !== undefined) res.write(previous);
    res.end();
  };
  const server = createServer(tls, (req, res) => {
    listener(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const state: TestGateway = {
    url: `https://localhost:${(server.address() as AddressInfo).port}`,
    answering: 'whole',
    server,
    get cuts() {
      return cuts;
    },
    next: (event) =>
      new Promise<void>((resolve) => {
        waiters.push({ event, resolve });
      }),
  };
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        waiters = [];
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  );
  return state;
}

async function proxied(
  answering: Answering = 'whole',
): Promise<{ proxy: RunningProxy; upstream: TestGateway; gateway: SampleGateway }> {
  const ca = await createTestCa('tresor-proxy-test-ca');
  const cert = await issueTestCertificate(ca, 'localhost', 'server', '02');
  const gateway = await createSampleGateway({ tlsSpkiSha256: spkiSha256OfPem(cert.cert) });
  const upstream = await serveGateway(gateway, cert);
  upstream.answering = answering;
  const proxy = await startProxy({
    upstream: upstream.url,
    listen: '127.0.0.1:0',
    reverifySeconds: 3600,
    policy: gateway.policy,
    ...createNodeTransport({ ca: ca.cert.toString('pem') }),
  });
  cleanups.push(() => proxy.close());
  return { proxy, upstream, gateway };
}

function chatBody(stream: boolean): string {
  return JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }], stream });
}

/** Opens a streamed chat through the proxy and reads until its first content event. */
async function firstEvent(proxy: RunningProxy, signal: AbortSignal): Promise<string> {
  const response = await fetch(`${proxy.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer k' },
    body: chatBody(true),
    signal,
  });
  expect(response.status).toBe(200);
  const reader = response.body!.getReader();
  let text = '';
  while (!text.includes('\n\n')) {
    const { done, value } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  return text;
}

describe('tresor proxy under concurrency', () => {
  it(`answers ${CONCURRENCY} streamed and ${CONCURRENCY} single-shot requests sent at once, each in full`, async () => {
    const { proxy, gateway } = await proxied();
    const openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'k', maxRetries: 0 });
    const single = async (): Promise<string> => {
      const c = await openai.chat.completions.create({
        model: MODEL_ID,
        messages: [{ role: 'user', content: 'hi' }],
      });
      return c.choices[0]?.message.content ?? '';
    };
    const streamed = async (): Promise<string> => {
      const s = await openai.chat.completions.create({
        model: MODEL_ID,
        messages: [{ role: 'user', content: 'hi' }],
        stream: true,
      });
      let text = '';
      for await (const chunk of s) text += chunk.choices[0]?.delta.content ?? '';
      return text;
    };
    // Two rounds: the second reuses the kept-alive connections of the first on both hops.
    for (let round = 0; round < 2; round++) {
      const answers = await Promise.all(
        Array.from({ length: CONCURRENCY * 2 }, (_, i) => (i % 2 === 0 ? single() : streamed())),
      );
      expect(answers).toEqual(Array.from({ length: CONCURRENCY * 2 }, () => ANSWER));
    }
    expect(gateway.calls.filter((c) => c === '/v1/ohttp')).toHaveLength(CONCURRENCY * 4);
  }, 30_000);

  it('closes the gateway connection of a stream whose client went away, and keeps serving', async () => {
    const { proxy, upstream } = await proxied('hold-last-piece');
    const client = new AbortController();
    const cut = upstream.next('cut');
    expect(await firstEvent(proxy, client.signal)).toMatch(/^data: \{/);
    client.abort();
    await cut;
    expect(upstream.cuts).toBe(1);
    upstream.answering = 'whole';
    const openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'k', maxRetries: 0 });
    const after = await openai.chat.completions.create({ model: MODEL_ID, messages: [] });
    expect(after.choices[0]?.message.content).toBe(ANSWER);
  }, 20_000);

  it(`closes the gateway connections of ${CONCURRENCY} streams whose clients all went away at once`, async () => {
    const { proxy, upstream } = await proxied('hold-last-piece');
    const clients = Array.from({ length: CONCURRENCY }, () => new AbortController());
    const cuts: Promise<void>[] = [];
    await Promise.all(clients.map((c) => firstEvent(proxy, c.signal)));
    for (const c of clients) {
      cuts.push(upstream.next('cut'));
      c.abort();
      await cuts.at(-1);
    }
    expect(upstream.cuts).toBe(CONCURRENCY);
  }, 20_000);

  it('closes the gateway connection of a single-shot request whose client gave up waiting', async () => {
    const { proxy, upstream } = await proxied('hold-last-piece');
    const client = new AbortController();
    const cut = upstream.next('cut');
    const arrived = upstream.next('arrived');
    const pending = fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer k' },
      body: chatBody(false),
      signal: client.signal,
    });
    await arrived; // its answer is held at the gateway: the client gives up waiting
    client.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    await cut;
    expect(upstream.cuts).toBe(1);
  }, 20_000);

  it(`answers ${CONCURRENCY} requests sent at once with OpenAI-shaped errors when the gateway is gone, none left hanging`, async () => {
    const { proxy, upstream } = await proxied();
    upstream.server.closeAllConnections();
    await new Promise<void>((resolve) =>
      upstream.server.close(() => {
        resolve();
      }),
    );
    const statuses = await Promise.all(
      Array.from({ length: CONCURRENCY }, async (_, i) => {
        const response = await fetch(`${proxy.url}/v1/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer k' },
          body: chatBody(i % 2 === 0),
        });
        const body = (await response.json()) as { error: { code: string; type: string } };
        return `${response.status} ${body.error.code} ${body.error.type}`;
      }),
    );
    expect(new Set(statuses)).toEqual(new Set(['502 GATEWAY_UNREACHABLE tresor_error']));
  }, 20_000);

  it('answers 404 ROUTE_NOT_FOUND outside /v1/ and forwards nothing', async () => {
    const { proxy, gateway } = await proxied();
    const before = gateway.calls.length;
    const response = await fetch(`${proxy.url}/admin/v0/tenants`, { method: 'POST', body: 'x' });
    expect(response.status).toBe(404);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('ROUTE_NOT_FOUND');
    expect(gateway.calls.length).toBe(before);
  });
});
