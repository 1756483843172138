import { createHash } from 'node:crypto';
import * as http2 from 'node:http2';
import { connect } from 'node:tls';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createChunkedOhttpClient,
  decodeBhttpResponse,
  decodeKeyConfigList,
  encodeBhttpRequest,
  OHTTP_CHUNKED_REQUEST_MEDIA_TYPE,
} from '@tresor/crypto';
import { FAKE_COMPLETION_WORDS, type FakeReplica } from '../../../test/support/fake-serving-replica.js';
import { startGatewayFixture, type GatewayFixture } from '../../../test/support/gateway-fixture.js';
import {
  decodeKnownLengthResponse,
  encapsulate,
  encodeKnownLengthRequest,
} from '../../../test/support/rfc9458-client.js';

const CANARY = `canary-${Math.random().toString(36).slice(2)}-marker`;
const POLICY = 'permit(principal in Gateway::Tenant::"acme", action, resource == Gateway::Model::"tiny");';
const logLines: string[] = [];
const logSink = new Writable({
  write(chunk: Buffer, _enc, done) {
    logLines.push(chunk.toString('utf8'));
    done();
  },
});

let f: GatewayFixture;
let keyList: Uint8Array;
let apiKey: string;

interface InnerAnswer {
  status: number;
  headers: Record<string, string>;
  json: Record<string, unknown>;
  text: string;
}

function chatBody(extra: Record<string, unknown> = {}): Uint8Array {
  return new TextEncoder().encode(
    JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: `say hi ${CANARY}` }], ...extra }),
  );
}

/** Through the independent RFC 9458 client: one message/ohttp-req, one sealed response. */
async function plainRequest(
  path: string,
  body: Uint8Array | undefined,
  headers: [string, string][] = [['authorization', `Bearer ${apiKey}`]],
  method = body === undefined ? 'GET' : 'POST',
): Promise<InnerAnswer> {
  const bhttp = encodeKnownLengthRequest({
    method,
    authority: 'gateway',
    path,
    headers: [
      ...headers,
      ...(body === undefined ? [] : ([['content-type', 'application/json']] as [string, string][])),
    ],
    body: body ?? new Uint8Array(0),
  });
  const exchange = await encapsulate(keyList, bhttp);
  const answer = await f.fetch('POST', '/v1/ohttp', { type: 'message/ohttp-req', bytes: exchange.request });
  expect(answer.status).toBe(200);
  expect(answer.headers['content-type']).toBe('message/ohttp-res');
  const inner = decodeKnownLengthResponse(await exchange.openResponse(answer.body));
  const text = inner.body.toString('utf8');
  return {
    status: inner.status,
    headers: inner.headers,
    text,
    json: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>),
  };
}

/** Through @tresor/crypto's chunked client: streaming. Returns the inner status and SSE events. */
async function chunkedRequest(
  body: Uint8Array,
  token = apiKey,
): Promise<{ status: number; events: string[] }> {
  const [config] = decodeKeyConfigList(keyList);
  const client = await createChunkedOhttpClient(config!);
  const writer = client.requestEncapsulator.writable.getWriter();
  const sealedParts: Uint8Array[] = [];
  const reading = (async () => {
    for await (const p of client.requestEncapsulator.readable as unknown as AsyncIterable<Uint8Array>)
      sealedParts.push(p);
  })();
  await writer.write(
    encodeBhttpRequest({
      method: 'POST',
      scheme: 'https',
      authority: 'gateway',
      path: '/v1/chat/completions',
      headers: [
        ['authorization', `Bearer ${token}`],
        ['content-type', 'application/json'],
      ],
      content: body,
      trailers: [],
    }),
  );
  await writer.close();
  await reading;
  const answer = await f.fetch('POST', '/v1/ohttp', {
    type: OHTTP_CHUNKED_REQUEST_MEDIA_TYPE,
    bytes: new Uint8Array(Buffer.concat(sealedParts)),
  });
  expect(answer.status).toBe(200);
  const plain: Uint8Array[] = [];
  const out = new ReadableStream<Uint8Array>({
    start(c) {
      c.enqueue(new Uint8Array(answer.body));
      c.close();
    },
  }).pipeThrough(client.responseDecapsulator);
  for await (const p of out as unknown as AsyncIterable<Uint8Array>) plain.push(p);
  const { message } = decodeBhttpResponse(new Uint8Array(Buffer.concat(plain)));
  const text = Buffer.from(message.content).toString('utf8');
  return { status: message.status, events: text.split('\n\n').filter((e) => e !== '') };
}

function errorOf(answer: InnerAnswer): { code: string; type: string; message: string } {
  return (answer.json as { error: { code: string; type: string; message: string } }).error;
}

async function newKey(request: Record<string, unknown> = {}): Promise<string> {
  const created = await f.adminCall('api-keys/create', { tenant: 'acme', ...request });
  expect(created.status).toBe(200);
  return created.json.key as string;
}

beforeAll(async () => {
  f = await startGatewayFixture({ logDestination: logSink });
  keyList = new Uint8Array((await f.fetch('GET', '/.well-known/ohttp-gateway')).body);
  expect((await f.adminCall('tenants/create', { id: 'acme', name: 'ACME' })).status).toBe(200);
  expect((await f.adminCall('tenants/create', { id: 'globex' })).status).toBe(200);
  expect((await f.adminCall('policies/set', { tenant: 'acme', policy: POLICY })).json.version).toBe(1);
  apiKey = await newKey({ name: 'main' });
}, 120_000);

afterAll(async () => {
  await f.close();
});

describe('gateway: public endpoints', () => {
  it('publishes its key configuration and an attestation bundle binding key, TLS key and nonce', async () => {
    expect(decodeKeyConfigList(keyList)).toHaveLength(1);
    const nonce = 'ab'.repeat(32);
    const answer = await f.fetch('GET', `/.well-known/tresor/attestation?nonce=${nonce}`);
    expect(answer.status).toBe(200);
    const bundle = JSON.parse(answer.body.toString('utf8')) as {
      nonce: string;
      gateway: {
        runtimeData: { nonce: string; component: string; hpkeKeyConfig: string; tlsSpkiSha256: string };
      };
      serving: { runtimeData: { nonce: string } }[];
      referenceValues: string;
      residencyInventory: string;
    };
    expect(bundle.nonce).toBe(nonce);
    expect(bundle.gateway.runtimeData.component).toBe('gateway');
    expect(bundle.gateway.runtimeData.nonce).toBe(nonce);
    expect(Buffer.from(bundle.gateway.runtimeData.hpkeKeyConfig, 'base64url')).toEqual(
      Buffer.from(keyList.subarray(2)),
    );
    expect(f.gateway.pool.replicas.map((r) => r.lastError)).toEqual([null, null]);
    expect(bundle.serving).toHaveLength(2);
    expect(bundle.serving.every((s) => s.runtimeData.nonce === nonce)).toBe(true);
    expect(bundle.referenceValues.split('.')).toHaveLength(3);
    expect(bundle.residencyInventory.split('.')).toHaveLength(3);
  });

  it('refuses a nonce that is not 64 lowercase hex digits', async () => {
    for (const nonce of ['', 'AB'.repeat(32), 'ab'.repeat(31), 'zz'.repeat(32)]) {
      const answer = await f.fetch('GET', `/.well-known/tresor/attestation?nonce=${nonce}`);
      expect(answer.status).toBe(400);
      expect(answer.headers['tresor-error-code']).toBe('USAGE_INVALID');
    }
  });

  it('has no plaintext API route and serves health, readiness, metrics and OpenAPI', async () => {
    const plaintext = await f.fetch('POST', '/v1/chat/completions', {
      type: 'application/json',
      bytes: chatBody(),
    });
    expect(plaintext.status).toBe(404);
    expect((await f.fetch('GET', '/healthz')).status).toBe(200);
    expect((await f.fetch('GET', '/readyz')).status).toBe(200);
    expect((await f.fetch('GET', '/metrics')).status).toBe(200);
    const openapi = JSON.parse((await f.fetch('GET', '/openapi.json')).body.toString('utf8')) as {
      paths: Record<string, unknown>;
    };
    expect(Object.keys(openapi.paths)).toEqual(
      expect.arrayContaining(['/v1/ohttp', '/.well-known/ohttp-gateway', '/admin/v0/usage']),
    );
  });

  it('speaks HTTP/2 over TLS 1.3: key configuration, attestation bundle and /v1/ohttp', async () => {
    const session = http2.connect(f.url, { ca: f.ca, minVersion: 'TLSv1.3' });
    try {
      const call = (
        headers: http2.OutgoingHttpHeaders,
        body?: Uint8Array,
      ): Promise<{ status: number; headers: http2.IncomingHttpHeaders; body: Buffer }> =>
        new Promise((resolve, reject) => {
          const stream = session.request(headers);
          const parts: Buffer[] = [];
          let head: http2.IncomingHttpHeaders = {};
          stream.on('response', (h) => (head = h));
          stream.on('data', (p: Buffer) => parts.push(p));
          stream.on('end', () => {
            resolve({ status: Number(head[':status']), headers: head, body: Buffer.concat(parts) });
          });
          stream.on('error', reject);
          stream.end(body === undefined ? undefined : Buffer.from(body));
        });
      const keys = await call({ ':method': 'GET', ':path': '/.well-known/ohttp-gateway' });
      expect(keys.status).toBe(200);
      expect(keys.headers['content-type']).toBe('application/ohttp-keys');
      expect(new Uint8Array(keys.body)).toEqual(keyList);
      const bundle = await call({
        ':method': 'GET',
        ':path': `/.well-known/tresor/attestation?nonce=${'cd'.repeat(32)}`,
      });
      expect(bundle.status).toBe(200);
      expect((JSON.parse(bundle.body.toString('utf8')) as { nonce: string }).nonce).toBe('cd'.repeat(32));
      const exchange = await encapsulate(
        keyList,
        encodeKnownLengthRequest({
          method: 'GET',
          authority: 'gateway',
          path: '/v1/models',
          headers: [['authorization', `Bearer ${apiKey}`]],
          body: new Uint8Array(0),
        }),
      );
      const sealed = await call(
        { ':method': 'POST', ':path': '/v1/ohttp', 'content-type': 'message/ohttp-req' },
        exchange.request,
      );
      expect(sealed.status).toBe(200);
      const inner = decodeKnownLengthResponse(await exchange.openResponse(sealed.body));
      expect(inner.status).toBe(200);
      expect(JSON.parse(inner.body.toString('utf8'))).toMatchObject({ object: 'list' });
      const socket = session.socket as import('node:tls').TLSSocket;
      expect([socket.alpnProtocol, socket.getProtocol()]).toEqual(['h2', 'TLSv1.3']);
    } finally {
      session.close();
    }
  });

  it('rate-limits attestation bundles (each signs fresh evidence): 429 with Retry-After, back after a second', async () => {
    const nonce = 'ef'.repeat(32);
    f.freeze();
    const answers = await Promise.all(
      Array.from({ length: 40 }, () => f.fetch('GET', `/.well-known/tresor/attestation?nonce=${nonce}`)),
    );
    const limited = answers.filter((a) => a.status === 429);
    expect(limited.length).toBeGreaterThan(0);
    expect(answers.filter((a) => a.status === 200).length).toBeLessThanOrEqual(20);
    expect(limited[0]!.headers['tresor-error-code']).toBe('RATE_LIMITED');
    expect(Number(limited[0]!.headers['retry-after'])).toBeGreaterThan(0);
    f.advance(2_000);
    try {
      expect((await f.fetch('GET', `/.well-known/tresor/attestation?nonce=${nonce}`)).status).toBe(200);
    } finally {
      f.advance(-2_000);
      f.thaw();
    }
  });

  it('refuses a TLS 1.2 client at the handshake', async () => {
    const outcome = await new Promise<string>((resolve) => {
      const socket = connect({
        host: '127.0.0.1',
        port: Number(new URL(f.url).port),
        maxVersion: 'TLSv1.2',
        ca: f.ca,
        servername: 'localhost',
      });
      socket.on('secureConnect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('error', (err: NodeJS.ErrnoException) => {
        resolve(err.code ?? 'error');
      });
    });
    expect(outcome).not.toBe('connected');
  });
});

describe('gateway: the OpenAI API inside OHTTP', () => {
  it('completes a chat completion through an independent RFC 9458 client (@hpke/core)', async () => {
    const answer = await plainRequest('/v1/chat/completions', chatBody());
    expect(answer.status).toBe(200);
    expect(answer.json.object).toBe('chat.completion');
    expect(JSON.stringify(answer.json.choices)).toContain(FAKE_COMPLETION_WORDS.join(''));
    expect(answer.headers['tresor-receipt']).toBe('fake.receipt.jws');
    expect(f.replicas.some((r) => r.prompts.some((p) => p.includes(CANARY)))).toBe(true);
  });

  it('sends a non-streaming request to the replica as one message/ohttp-req, not chunked', async () => {
    const body = chatBody({ user: 'single-shot-framing' });
    const answer = await plainRequest('/v1/chat/completions', body);
    expect(answer.status).toBe(200);
    expect(answer.json.object).toBe('chat.completion');
    const digest = createHash('sha256').update(body).digest('hex');
    const types = f.replicas.map((r) => r.mediaTypes.get(digest)).filter((t) => t !== undefined);
    expect(types).toEqual(['message/ohttp-req']);
  });

  it('streams one sealed chunk per event, forwards the body unchanged and strips the usage line', async () => {
    const body = chatBody({ stream: true, user: 'stream-unchanged' });
    const streamed = await chunkedRequest(body);
    expect(streamed.status).toBe(200);
    const data = streamed.events.filter((e) => e.startsWith('data: {'));
    expect(data).toHaveLength(FAKE_COMPLETION_WORDS.length);
    expect(streamed.events.some((e) => e.includes('"usage":{'))).toBe(false);
    expect(streamed.events.some((e) => e.includes('tresor-usage'))).toBe(false);
    expect(streamed.events).toContain('data: [DONE]');
    expect(streamed.events.at(-1)).toBe(': tresor-receipt fake.receipt.jws');
    // The replica saw exactly the client's bytes: the client's receipt covers its own request.
    const digest = createHash('sha256').update(body).digest('hex');
    expect(f.replicas.some((r) => r.bodySha256.includes(digest))).toBe(true);
    // Sealed event by event on the way back: chunked OHTTP to the replica too.
    expect(f.replicas.map((r) => r.mediaTypes.get(digest))).toContain('message/ohttp-chunked-req');
    const usage = await f.adminCall('usage', { tenant: 'acme' });
    const records = usage.json.records as { promptTokens: number; completionTokens: number }[];
    expect(records.filter((r) => r.promptTokens === 7 && r.completionTokens === 5).length).toBeGreaterThan(0);
  });

  it('keeps the usage chunk when the client asks for it', async () => {
    const streamed = await chunkedRequest(
      chatBody({ stream: true, stream_options: { include_usage: true } }),
    );
    expect(streamed.events.filter((e) => e.includes('"completion_tokens":5'))).toHaveLength(1);
  });

  it('lists the models the key may use, and answers embeddings', async () => {
    const models = await plainRequest('/v1/models', undefined);
    expect(models.json).toEqual({
      object: 'list',
      data: [{ id: 'tiny', object: 'model', created: 0, owned_by: 'tresor' }],
    });
    const embeddings = await plainRequest(
      '/v1/embeddings',
      new TextEncoder().encode(JSON.stringify({ model: 'tiny', input: 'x' })),
    );
    expect(embeddings.status).toBe(200);
    expect(embeddings.json.object).toBe('list');
  });

  it('records minimal metadata and exports it per tenant', async () => {
    const usage = await f.adminCall('usage', { tenant: 'acme' });
    expect(usage.status).toBe(200);
    const records = usage.json.records as Record<string, unknown>[];
    expect(records.length).toBeGreaterThanOrEqual(3);
    expect(Object.keys(records[0]!).sort()).toEqual(
      ['apiKeyId', 'completionTokens', 'id', 'latencyMs', 'model', 'promptTokens', 'status', 'time'].sort(),
    );
    expect(records.some((r) => r.promptTokens === 7 && r.completionTokens === 5 && r.model === 'tiny')).toBe(
      true,
    );
  });
});

describe('gateway: refusals carry catalogue codes in OpenAI-shaped bodies', () => {
  it('bad, missing, expired and revoked API keys', async () => {
    const missing = await plainRequest('/v1/chat/completions', chatBody(), []);
    expect([missing.status, errorOf(missing).code, errorOf(missing).type]).toEqual([
      401,
      'API_KEY_MISSING',
      'authentication_error',
    ]);
    const bad = await plainRequest('/v1/chat/completions', chatBody(), [
      ['authorization', `Bearer ${apiKey.slice(0, -2)}xx`],
    ]);
    expect([bad.status, errorOf(bad).code]).toEqual([401, 'API_KEY_INVALID']);
    const garbage = await plainRequest('/v1/chat/completions', chatBody(), [
      ['authorization', 'Bearer sk-openai'],
    ]);
    expect(errorOf(garbage).code).toBe('API_KEY_INVALID');

    const expiring = await newKey({ expiresAt: new Date(f.now().getTime() + 60_000).toISOString() });
    expect(
      (await plainRequest('/v1/models', undefined, [['authorization', `Bearer ${expiring}`]])).status,
    ).toBe(200);
    f.advance(120_000);
    try {
      const expired = await plainRequest('/v1/models', undefined, [['authorization', `Bearer ${expiring}`]]);
      expect([expired.status, errorOf(expired).code]).toEqual([401, 'API_KEY_EXPIRED']);
    } finally {
      f.advance(-120_000);
    }
    const revoking = await newKey();
    const id = revoking.split('_')[1];
    expect((await f.adminCall('api-keys/revoke', { id })).status).toBe(200);
    const revoked = await plainRequest('/v1/models', undefined, [['authorization', `Bearer ${revoking}`]]);
    expect([revoked.status, errorOf(revoked).code]).toEqual([401, 'API_KEY_REVOKED']);
  });

  it('policy deny: another model, a tenant without policy, a key without the scope', async () => {
    const other = await plainRequest('/v1/chat/completions', chatBody({ model: 'tiny' }), [
      [
        'authorization',
        `Bearer ${(await f.adminCall('api-keys/create', { tenant: 'globex' })).json.key as string}`,
      ],
    ]);
    expect([other.status, errorOf(other).code, errorOf(other).type]).toEqual([
      403,
      'POLICY_DENIED',
      'permission_error',
    ]);
    const chatOnly = await newKey({ scopes: ['models'] });
    const noScope = await plainRequest('/v1/chat/completions', chatBody(), [
      ['authorization', `Bearer ${chatOnly}`],
    ]);
    expect(errorOf(noScope).code).toBe('POLICY_DENIED');
  });

  it('unknown model, unknown route, invalid body, oversized inner request', async () => {
    const unknown = await plainRequest('/v1/chat/completions', chatBody({ model: 'gpt-9' }));
    expect([unknown.status, errorOf(unknown).code]).toEqual([404, 'MODEL_NOT_FOUND']);
    const route = await plainRequest('/v1/images/generations', chatBody());
    expect([route.status, errorOf(route).code]).toEqual([404, 'ROUTE_NOT_FOUND']);
    const invalid = await plainRequest(
      '/v1/chat/completions',
      new TextEncoder().encode(JSON.stringify({ model: 'tiny', messages: [] })),
    );
    expect([invalid.status, errorOf(invalid).code]).toEqual([400, 'API_REQUEST_INVALID']);
    expect(errorOf(invalid).message).toContain('messages');
    const huge = await plainRequest('/v1/chat/completions', chatBody({ pad: 'x'.repeat(1024 * 1024) }));
    expect([huge.status, errorOf(huge).code]).toEqual([413, 'REQUEST_BODY_TOO_LARGE']);
  });

  it('rate limit: 429 with Retry-After; quota exhausted', async () => {
    const limited = await newKey({ requestsPerMinute: 1 });
    expect(
      (await plainRequest('/v1/chat/completions', chatBody(), [['authorization', `Bearer ${limited}`]]))
        .status,
    ).toBe(200);
    const second = await plainRequest('/v1/chat/completions', chatBody(), [
      ['authorization', `Bearer ${limited}`],
    ]);
    expect([second.status, errorOf(second).code, errorOf(second).type]).toEqual([
      429,
      'RATE_LIMITED',
      'rate_limit_error',
    ]);
    expect(Number(second.headers['retry-after'])).toBeGreaterThan(0);
    const small = await newKey({ tokensPerDay: 10 });
    expect(
      (await plainRequest('/v1/chat/completions', chatBody(), [['authorization', `Bearer ${small}`]])).status,
    ).toBe(200);
    const quota = await plainRequest('/v1/chat/completions', chatBody(), [
      ['authorization', `Bearer ${small}`],
    ]);
    expect([quota.status, errorOf(quota).code, errorOf(quota).type]).toEqual([
      429,
      'QUOTA_EXHAUSTED',
      'insufficient_quota',
    ]);
    expect(Number(quota.headers['retry-after'])).toBeGreaterThan(0);
  });

  it('malformed OHTTP, wrong key id, replayed and truncated requests are refused in the clear, OpenAI-shaped', async () => {
    const outer = async (type: string, bytes: Uint8Array): Promise<[number, string]> => {
      const answer = await f.fetch('POST', '/v1/ohttp', { type, bytes });
      const body = JSON.parse(answer.body.toString('utf8')) as { error: { code: string } };
      return [answer.status, body.error.code];
    };
    expect(await outer('message/ohttp-req', new Uint8Array(5))).toEqual([400, 'OHTTP_MESSAGE_MALFORMED']);
    const exchange = await encapsulate(
      keyList,
      encodeKnownLengthRequest({
        method: 'GET',
        authority: 'g',
        path: '/v1/models',
        headers: [],
        body: new Uint8Array(0),
      }),
    );
    const wrongId = Uint8Array.from(exchange.request);
    wrongId[0] = (wrongId[0]! + 1) & 0xff;
    expect((await outer('message/ohttp-req', wrongId))[1]).toBe('OHTTP_KEY_ID_UNKNOWN');
    const flipped = Uint8Array.from(exchange.request);
    flipped[flipped.length - 1]! ^= 1;
    expect(await outer('message/ohttp-req', flipped)).toEqual([400, 'OHTTP_DECRYPT_FAILED']);
    expect(
      (await f.fetch('POST', '/v1/ohttp', { type: 'message/ohttp-req', bytes: exchange.request })).status,
    ).toBe(200);
    expect(await outer('message/ohttp-req', exchange.request)).toEqual([400, 'OHTTP_REQUEST_REPLAYED']);

    const [config] = decodeKeyConfigList(keyList);
    const client = await createChunkedOhttpClient(config!);
    const writer = client.requestEncapsulator.writable.getWriter();
    const parts: Uint8Array[] = [];
    const reading = (async () => {
      for await (const p of client.requestEncapsulator.readable as unknown as AsyncIterable<Uint8Array>)
        parts.push(p);
    })();
    await writer.write(new Uint8Array(40).fill(1));
    await writer.close();
    await reading;
    const truncated = new Uint8Array(Buffer.concat(parts.slice(0, -1))); // the final chunk left out
    expect(await outer(OHTTP_CHUNKED_REQUEST_MEDIA_TYPE, truncated)).toEqual([400, 'OHTTP_STREAM_TRUNCATED']);
    expect((await f.fetch('POST', '/v1/ohttp', { type: 'application/json', bytes: chatBody() })).status).toBe(
      415,
    );
  });
});

describe('gateway: routing', () => {
  it('a replica whose connection breaks mid-stream: a sealed error event, the replica kept (one failure), the next request served', async () => {
    // Least outstanding requests with both idle picks the first; make it die after two events.
    for (const r of f.replicas) r.dieAfterEvents = 2;
    const streamed = await chunkedRequest(chatBody({ stream: true }));
    for (const r of f.replicas) r.dieAfterEvents = undefined;
    expect(streamed.status).toBe(200);
    const last = streamed.events.at(-1) ?? '';
    expect(last.startsWith('event: error\ndata: ')).toBe(true);
    expect((JSON.parse(last.split('data: ')[1] ?? '{}') as { error: { code: string } }).error.code).toBe(
      'UPSTREAM_FAILED',
    );
    // One broken connection is not an outage: out only after three in a row (replica-pool.test.ts).
    expect(f.gateway.pool.healthy()).toHaveLength(2);
    expect(f.gateway.pool.replicas.map((r) => r.transportFailures).sort()).toEqual([0, 1]);
    const next = await plainRequest('/v1/chat/completions', chatBody());
    expect(next.status).toBe(200);
    await f.gateway.pool.verifyAll();
    expect(f.gateway.pool.healthy()).toHaveLength(2);
  });

  it('a replica that does not answer at all: out of rotation, the request served by the next one', async () => {
    f.replicas[0]!.hangUp = true;
    const served = f.replicas[1]!.served();
    try {
      const answer = await plainRequest('/v1/chat/completions', chatBody());
      expect(answer.status).toBe(200);
      expect(f.replicas[1]!.served()).toBe(served + 1);
      expect(f.gateway.pool.replicas[0]!.lastError).toBe('UPSTREAM_FAILED');
      expect(f.gateway.pool.healthy()).toHaveLength(1);
    } finally {
      f.replicas[0]!.hangUp = false;
    }
    await f.gateway.pool.verifyAll();
    expect(f.gateway.pool.healthy()).toHaveLength(2);
  });

  it('no retry once a replica answered: a replica failing mid-answer is not asked twice', async () => {
    for (const r of f.replicas) r.dieAfterEvents = 0;
    const total = f.replicas[0]!.served() + f.replicas[1]!.served();
    const streamed = await chunkedRequest(chatBody({ stream: true }));
    for (const r of f.replicas) r.dieAfterEvents = undefined;
    // Whether the replica's head got out before it died or not, the client learns UPSTREAM_FAILED.
    expect(streamed.events.at(-1)).toContain('"code":"UPSTREAM_FAILED"');
    expect(f.replicas[0]!.served() + f.replicas[1]!.served()).toBe(total + 1);
    await f.gateway.pool.verifyAll();
    expect(f.gateway.pool.healthy()).toHaveLength(2);
  });

  it('a busy replica’s SERVING_BUSY (OpenAI-shaped, before sealing) reaches the client; the replica stays in rotation', async () => {
    for (const r of f.replicas) r.busy = true;
    try {
      const answer = await plainRequest('/v1/chat/completions', chatBody());
      expect(errorOf(answer).code).toBe('SERVING_BUSY');
      expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
      expect(f.gateway.pool.healthy()).toHaveLength(2);
    } finally {
      for (const r of f.replicas) r.busy = false;
    }
  });

  it('a replica restarting its engine (ENGINE_UNAVAILABLE, before decryption) passes the request on; with none left, 503 REPLICA_UNAVAILABLE + Retry-After', async () => {
    const [a, b] = f.replicas as [FakeReplica, FakeReplica];
    try {
      a.engineRestarting = true;
      for (let i = 0; i < 4; i++) {
        const before = b.served();
        const answer = await plainRequest('/v1/chat/completions', chatBody());
        expect(answer.status).toBe(200);
        expect(b.served()).toBe(before + 1);
      }
      b.engineRestarting = true;
      const answer = await plainRequest('/v1/chat/completions', chatBody());
      expect([answer.status, errorOf(answer).code]).toEqual([503, 'REPLICA_UNAVAILABLE']);
      expect(answer.headers['retry-after']).toBe('2');
      // Restarting says nothing bad about the replicas: both stay in rotation.
      expect(f.gateway.pool.healthy()).toHaveLength(2);
    } finally {
      a.engineRestarting = false;
      b.engineRestarting = false;
    }
  });

  it('REPLICA_UNAVAILABLE when no attested replica serves a known model', async () => {
    for (const r of f.gateway.pool.replicas) f.gateway.pool.fail(r, 'TEST');
    const answer = await plainRequest('/v1/chat/completions', chatBody());
    expect([answer.status, errorOf(answer).code]).toEqual([503, 'REPLICA_UNAVAILABLE']);
    expect((await f.fetch('GET', '/readyz')).status).toBe(503);
    await f.gateway.pool.verifyAll();
    expect(f.gateway.pool.healthy()).toHaveLength(2);
  });
});

describe('gateway: canary', () => {
  it('the prompt marker never appears in a log line, the database files or the metrics', async () => {
    const metrics = (await f.fetch('GET', '/metrics')).body.toString('utf8');
    expect(metrics).not.toContain(CANARY);
    expect(logLines.length).toBeGreaterThan(0);
    for (const line of logLines) expect(line).not.toContain(CANARY);
    const files = readdirSync(f.stateDir).map((n) => join(f.stateDir, n));
    expect(files.some((p) => p.endsWith('.db'))).toBe(true);
    for (const file of files) expect(readFileSync(file).includes(Buffer.from(CANARY))).toBe(false);
    expect(logLines.join('')).not.toContain(apiKey);
  });
});
