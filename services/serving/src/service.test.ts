import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compactVerify, importJWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseSampleEvidence } from '@tresor/attestation';
import { base64ToBytes, bytesToHex, ModelKey, runtimeDataHash } from '@tresor/crypto';
import { sealModelFile } from '@tresor/crypto/node';
import {
  RECEIPT_HEADER,
  RECEIPT_SSE_PREFIX,
  type ComponentEvidence,
  type ReceiptClaims,
} from '@tresor/protocol';
import { createTestPki } from '../../../test/support/test-pki.js';
import {
  PERMIT_ALL,
  SERVING_MEASUREMENT,
  startServingTrust,
  type ServingTrust,
  type ServingTrustOptions,
} from '../../../test/support/serving-trust.js';
import type { ServingConfigInput } from './config.js';
import type { Engine, GenerationEvent } from './engine/engine.js';
import { defaultEngineFactory, type EngineFactory } from './engine-factory.js';
import { sendSealedRequest, type SealedExchangeOptions } from './client/sealed-client.js';
import { startServingService, type RunningServingService } from './service.js';

const MODEL_KEY_PATH = 'models/key/echo-small';
const MODEL_KEY_URI = `kbs:///${MODEL_KEY_PATH}`;
const SERVING_SPIFFE = 'spiffe://tresor.local/serving/_';

let dir: string;
let modelKey: Uint8Array;
let sealedFile: string;
let plaintextSha256: string;

async function seal(plaintext: Uint8Array, name: string, key = modelKey): Promise<string> {
  const input = join(dir, `${name}.gguf`);
  const output = join(dir, `${name}.tresor`);
  await writeFile(input, plaintext);
  await sealModelFile({
    input,
    output,
    key: await ModelKey.import(key),
    keyId: MODEL_KEY_URI,
    chunkSize: 4096,
    durable: false,
  });
  return output;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-serving-test-'));
  modelKey = new Uint8Array(randomBytes(32));
  const plaintext = new Uint8Array(randomBytes(20_000));
  plaintextSha256 = createHash('sha256').update(plaintext).digest('hex');
  sealedFile = await seal(plaintext, 'echo-small');
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function servingConfig(
  trust: ServingTrust,
  workDir: string,
  overrides: Partial<ServingConfigInput> = {},
): ServingConfigInput {
  return {
    mode: 'local',
    replicaId: 'serving-test',
    listen: { host: '127.0.0.1', port: 0 },
    trust: { url: trust.url, caFile: trust.caFile },
    tee: { source: 'sample', signingKeyFile: trust.sampleKeyFile, measurement: SERVING_MEASUREMENT },
    models: [{ id: 'echo-small', file: sealedFile, key: MODEL_KEY_URI }],
    engine: { kind: 'echo' },
    workDir,
    logLevel: 'silent',
    shutdownGraceMs: 0,
    ...overrides,
  };
}

/** Counts engine factory calls: a refused start must never reach the engine. */
function countingFactory(inner: EngineFactory = defaultEngineFactory): {
  factory: EngineFactory;
  calls: () => number;
} {
  let calls = 0;
  return {
    factory: (models, config) => {
      calls++;
      return inner(models, config);
    },
    calls: () => calls,
  };
}

async function get(
  url: string,
  ca: string,
): Promise<{ status: number; body: unknown; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca, checkServerIdentity: () => undefined, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (p: Buffer) => parts.push(p));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          body: text.length === 0 ? null : (JSON.parse(text) as unknown),
          headers: res.headers,
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Fetches a URL whatever certificate the server shows (readiness probes do that too). */
async function probe(
  url: string,
): Promise<{ status: number; body: unknown; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { rejectUnauthorized: false, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (p: Buffer) => parts.push(p));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        resolve({
          status: res.statusCode ?? 0,
          body: text.length === 0 ? null : (JSON.parse(text) as unknown),
          headers: res.headers,
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

describe('a replica that attests and loads its sealed model', () => {
  let trust: ServingTrust;
  let serving: RunningServingService;
  let workDir: string;
  let gateway: { cert: string; key: string };
  let meshCaPem: string;
  let evidence: ComponentEvidence;
  const factory = countingFactory();

  beforeAll(async () => {
    trust = await startServingTrust({ resources: { [MODEL_KEY_PATH]: modelKey } });
    workDir = join(dir, 'work-ready');
    serving = await startServingService(servingConfig(trust, workDir), { engineFactory: factory.factory });
    await serving.ready;
    gateway = await trust.meshClient('gateway');
    meshCaPem = trust.meshCa.caCertificatePem;
    evidence = (await probe(`${serving.url}/attestation?nonce=${'ab'.repeat(32)}`)).body as ComponentEvidence;
  });

  afterAll(async () => {
    await serving.close();
    await trust.close();
  });

  const exchange = (
    overrides: Partial<SealedExchangeOptions>,
  ): Promise<Awaited<ReturnType<typeof sendSealedRequest>>> =>
    sendSealedRequest({
      url: serving.url,
      keyConfig: evidence.runtimeData.hpkeKeyConfig,
      method: 'POST',
      path: '/v1/chat/completions',
      body: { model: 'echo-small', messages: [{ role: 'user', content: 'hello sealed world' }] },
      tls: { ca: meshCaPem, cert: gateway.cert, key: gateway.key },
      serverSpiffeId: SERVING_SPIFFE,
      ...overrides,
    });

  async function verifyReceipt(jws: string): Promise<ReceiptClaims> {
    const key = await importJWK({ ...evidence.runtimeData.receiptKey! }, 'EdDSA');
    const { payload, protectedHeader } = await compactVerify(jws, key);
    expect(protectedHeader.alg).toBe('EdDSA');
    return JSON.parse(new TextDecoder().decode(payload)) as ReceiptClaims;
  }

  it('becomes ready, answers /readyz, and serves with a mesh certificate naming serving', async () => {
    expect(serving.step()).toBe('ready');
    expect((await get(`${serving.url}/readyz`, meshCaPem)).status).toBe(200);
    const cert = new X509Certificate(serving.certificatePem());
    expect(cert.subjectAltName).toContain(`URI:${SERVING_SPIFFE}`);
    expect(cert.checkIssued(new X509Certificate(meshCaPem))).toBe(true);
    expect(factory.calls()).toBe(1);
  });

  it('leaves no plaintext in its work folder once the engine loaded the model', async () => {
    expect(await readdir(workDir)).toEqual([]);
  });

  it('binds its keys, models and the nonce into fresh sample evidence', async () => {
    expect(evidence.component).toBe('serving');
    expect(evidence.tee).toBe('sample');
    expect(evidence.runtimeData.nonce).toBe('ab'.repeat(32));
    expect(evidence.runtimeData.models).toEqual([{ id: 'echo-small', sha256: plaintextSha256 }]);
    const cert = new X509Certificate(serving.certificatePem());
    const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
    expect(evidence.runtimeData.tlsSpkiSha256).toBe(createHash('sha256').update(spki).digest('hex'));
    const parsed = parseSampleEvidence(base64ToBytes(evidence.evidence));
    expect(bytesToHex(parsed.reportData)).toBe(bytesToHex(await runtimeDataHash(evidence.runtimeData)));
    const other = (await probe(`${serving.url}/attestation?nonce=${'cd'.repeat(32)}`))
      .body as ComponentEvidence;
    expect(other.runtimeData.nonce).toBe('cd'.repeat(32));
    expect(other.evidence).not.toBe(evidence.evidence);
  });

  it('refuses a malformed nonce', async () => {
    for (const nonce of ['AB'.repeat(32), 'ab'.repeat(31), 'zz'.repeat(32), '']) {
      const answer = await probe(`${serving.url}/attestation?nonce=${nonce}`);
      expect(answer.status).toBe(400);
    }
  });

  it('answers a sealed chat completion with a receipt binding request, answer, model and evidence', async () => {
    const answer = await exchange({});
    expect(answer.outerStatus).toBe(200);
    expect(answer.status).toBe(200);
    const body = JSON.parse(new TextDecoder().decode(answer.body)) as {
      object: string;
      choices: { message: { content: string }; finish_reason: string }[];
      usage: { completion_tokens: number };
    };
    expect(body.object).toBe('chat.completion');
    expect(body.choices[0]?.message.content).toContain('hello');
    const receipt = answer.headers.find(([name]) => name === RECEIPT_HEADER)?.[1];
    expect(receipt).toBeDefined();
    const claims = await verifyReceipt(receipt!);
    expect(claims.model).toBe('echo-small');
    expect(claims.modelSha256).toBe(plaintextSha256);
    expect(claims.replica).toBe('serving-test');
    expect(claims.responseSha256).toBe(createHash('sha256').update(answer.body).digest('hex'));
    const requestBody = JSON.stringify({
      model: 'echo-small',
      messages: [{ role: 'user', content: 'hello sealed world' }],
    });
    expect(claims.requestSha256).toBe(createHash('sha256').update(requestBody).digest('hex'));
  });

  it('streams one sealed chunk per SSE event and ends with the receipt line', async () => {
    const answer = await exchange({
      body: {
        model: 'echo-small',
        messages: [{ role: 'user', content: 'one two three four' }],
        stream: true,
      },
    });
    expect(answer.status).toBe(200);
    expect(answer.headers).toContainEqual(['content-type', 'text/event-stream']);
    const events = answer.chunks.map((c) => new TextDecoder().decode(c));
    for (const event of events) expect(event.endsWith('\n\n')).toBe(true);
    const last = events.at(-1)!;
    expect(last.startsWith(RECEIPT_SSE_PREFIX)).toBe(true);
    expect(events.at(-2)).toBe('data: [DONE]\n\n');
    const text = events
      .slice(0, -2)
      .map((e) => JSON.parse(e.slice('data: '.length)) as { choices: { delta: { content?: string } }[] })
      .map((e) => e.choices[0]?.delta.content ?? '')
      .join('');
    expect(text).toContain('one');
    expect(text).toContain('four');
    const claims = await verifyReceipt(last.slice(RECEIPT_SSE_PREFIX.length).trim());
    const before = new TextEncoder().encode(events.slice(0, -1).join(''));
    expect(claims.responseSha256).toBe(createHash('sha256').update(before).digest('hex'));
  });

  it('answers single-shot OHTTP and GET /v1/models', async () => {
    const single = await exchange({ chunked: false });
    expect(single.status).toBe(200);
    const models = await exchange({ method: 'GET', path: '/v1/models', body: undefined });
    expect(JSON.parse(new TextDecoder().decode(models.body))).toMatchObject({
      object: 'list',
      data: [{ id: 'echo-small', object: 'model' }],
    });
  });

  it('answers inner refusals in OpenAI shape with catalogue codes', async () => {
    const cases: [Partial<SealedExchangeOptions>, number, string][] = [
      [{ body: { model: 'nope', messages: [{ role: 'user', content: 'x' }] } }, 404, 'MODEL_NOT_FOUND'],
      [{ body: { model: 'echo-small', messages: [] } }, 400, 'API_REQUEST_INVALID'],
      [
        { body: { model: 'echo-small', messages: [{ role: 'robot', content: 'x' }] } },
        400,
        'API_REQUEST_INVALID',
      ],
      [
        { body: { model: 'echo-small', messages: [{ role: 'user', content: 'x' }], temperature: 9 } },
        400,
        'API_REQUEST_INVALID',
      ],
      [{ path: '/v1/secrets' }, 404, 'ROUTE_NOT_FOUND'],
    ];
    for (const [overrides, status, code] of cases) {
      const answer = await exchange(overrides);
      expect(answer.outerStatus).toBe(200);
      expect(answer.status).toBe(status);
      expect(JSON.parse(new TextDecoder().decode(answer.body))).toMatchObject({ error: { code } });
    }
  });

  it('refuses callers whose mesh certificate does not name the gateway', async () => {
    const otherServing = await trust.meshClient('serving');
    const foreign = await createTestPki('foreign');
    for (const tls of [
      { ca: meshCaPem, cert: otherServing.cert, key: otherServing.key },
      { ca: meshCaPem },
      { ca: meshCaPem, cert: foreign.client.cert, key: foreign.client.key },
    ]) {
      const answer = await exchange({ tls });
      expect(answer.outerStatus).toBe(403);
      expect(JSON.parse(new TextDecoder().decode(answer.body))).toMatchObject({
        error: { code: 'MESH_PEER_NOT_ALLOWED' },
      });
    }
  });

  it('refuses requests sealed to another key', async () => {
    const other = (await probe(`${serving.url}/attestation?nonce=${'ef'.repeat(32)}`))
      .body as ComponentEvidence;
    expect(other.runtimeData.hpkeKeyConfig).toBe(evidence.runtimeData.hpkeKeyConfig);
    const { HpkeKeyPair, createGatewayKey } = await import('@tresor/crypto');
    const stranger = createGatewayKey(
      base64ToBytes(evidence.runtimeData.hpkeKeyConfig.replace(/-/g, '+').replace(/_/g, '/'))[0] ?? 0,
      await HpkeKeyPair.generate(),
    );
    for (const chunked of [true, false]) {
      const answer = await exchange({ keyConfig: stranger.config, chunked });
      expect(answer.outerStatus).toBe(400);
      expect(JSON.parse(new TextDecoder().decode(answer.body))).toMatchObject({
        error: { code: 'OHTTP_DECRYPT_FAILED' },
      });
    }
  });
});

/** An engine whose generations wait for the test: no clocks, no sleeps. */
function gatedEngine(): {
  engine: Engine;
  started: () => Promise<void>;
  release: () => void;
  aborted: () => Promise<void>;
} {
  let onStart: (() => void) | undefined;
  let startedPromise = new Promise<void>((resolve) => (onStart = resolve));
  let openGate: (() => void) | undefined;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  let onAbort: (() => void) | undefined;
  const abortedPromise = new Promise<void>((resolve) => (onAbort = resolve));
  async function* generate(signal: AbortSignal | undefined): AsyncIterable<GenerationEvent> {
    yield { type: 'delta', text: 'first' };
    onStart?.();
    startedPromise = new Promise<void>((resolve) => (onStart = resolve));
    const aborted = new Promise<'aborted'>((resolve) =>
      signal?.addEventListener('abort', () => {
        onAbort?.();
        resolve('aborted');
      }),
    );
    const outcome = await Promise.race([gate.then(() => 'open' as const), aborted]);
    if (outcome === 'aborted') {
      yield { type: 'done', finishReason: 'cancelled', usage: { promptTokens: 1, completionTokens: 1 } };
      return;
    }
    yield { type: 'delta', text: ' second' };
    yield { type: 'done', finishReason: 'stop', usage: { promptTokens: 1, completionTokens: 2 } };
  }
  const engine: Engine = {
    kind: 'gated',
    listModels: () => Promise.resolve([{ id: 'echo-small', contextLength: 64 }]),
    chat: (request) => generate(request.signal),
    complete: (request) => generate(request.signal),
    embed: () => Promise.resolve({ embeddings: [[0]], promptTokens: 1 }),
    countTokens: () => Promise.resolve(1),
    close: () => Promise.resolve(),
  };
  return {
    engine,
    started: () => startedPromise,
    release: () => openGate?.(),
    aborted: () => abortedPromise,
  };
}

describe('limits and cancellation', () => {
  let trust: ServingTrust;
  let serving: RunningServingService;
  let gateway: { cert: string; key: string };
  let evidence: ComponentEvidence;
  const gated = gatedEngine();

  beforeAll(async () => {
    trust = await startServingTrust({ resources: { [MODEL_KEY_PATH]: modelKey } });
    serving = await startServingService(
      servingConfig(trust, join(dir, 'work-limits'), {
        concurrency: { maxConcurrent: 1, maxQueue: 1, retryAfterSeconds: 7 },
      }),
      { engineFactory: () => Promise.resolve(gated.engine) },
    );
    await serving.ready;
    gateway = await trust.meshClient('gateway');
    evidence = (await probe(`${serving.url}/attestation?nonce=${'ab'.repeat(32)}`)).body as ComponentEvidence;
  });

  afterAll(async () => {
    await serving.close();
    await trust.close();
  });

  const send = (overrides: Partial<SealedExchangeOptions> = {}): ReturnType<typeof sendSealedRequest> =>
    sendSealedRequest({
      url: serving.url,
      keyConfig: evidence.runtimeData.hpkeKeyConfig,
      method: 'POST',
      path: '/v1/chat/completions',
      body: { model: 'echo-small', messages: [{ role: 'user', content: 'x' }], stream: true },
      tls: { ca: trust.meshCa.caCertificatePem, cert: gateway.cert, key: gateway.key },
      serverSpiffeId: SERVING_SPIFFE,
      ...overrides,
    });

  it('cancels the generation when the client goes away mid-stream', async () => {
    const controller = new AbortController();
    const outcome = send({
      signal: controller.signal,
      onContent: (bytes) => {
        if (new TextDecoder().decode(bytes).includes('first')) controller.abort();
      },
    }).catch((err: unknown) => err);
    await gated.aborted();
    expect(await outcome).toBeInstanceOf(Error);
  });

  it('queues one request behind the running one and refuses the next with 503 SERVING_BUSY and Retry-After', async () => {
    const started = gated.started();
    const first = send();
    await started;
    const second = send();
    // The queue holds one; whichever of these arrives while both slots are taken is refused.
    let busy = await send();
    for (let i = 0; i < 20 && busy.outerStatus === 200; i++) busy = await send();
    expect(busy.outerStatus).toBe(503);
    expect(busy.outerHeaders['retry-after']).toBe('7');
    expect(JSON.parse(new TextDecoder().decode(busy.body))).toMatchObject({
      error: { code: 'SERVING_BUSY' },
    });
    gated.release();
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
  });
});

describe('a replica whose model key is not released stays not ready', () => {
  const cases: [string, ServingTrustOptions, string][] = [
    [
      'the resource policy denies',
      { resourcePolicy: 'forbid(principal, action, resource);' },
      'POLICY_DENIED',
    ],
    [
      'its measurement is not released',
      { releasedMeasurement: 'c7'.repeat(48), resourcePolicy: PERMIT_ALL },
      'MEASUREMENT_NOT_ALLOWED',
    ],
    ['its machine is outside the residency inventory', { resident: false }, 'RESIDENCY_VIOLATION'],
    ['the key does not exist', { resources: {} }, 'RESOURCE_NOT_FOUND'],
  ];
  for (const [why, options, refusal] of cases) {
    it(`when ${why} (${refusal})`, async () => {
      const trust = await startServingTrust({ resources: { [MODEL_KEY_PATH]: modelKey }, ...options });
      const workDir = join(dir, `work-${refusal}`);
      const factory = countingFactory();
      const serving = await startServingService(servingConfig(trust, workDir), {
        engineFactory: factory.factory,
      });
      try {
        await expect(serving.ready).rejects.toMatchObject({
          code: 'MODEL_KEY_NOT_RELEASED',
          details: { refusal },
        });
        const ready = await probe(`${serving.url}/readyz`);
        expect(ready.status).toBe(503);
        expect(ready.body).toMatchObject({ code: 'MODEL_KEY_NOT_RELEASED', details: { refusal } });
        expect(ready.headers['tresor-error-code']).toBe('MODEL_KEY_NOT_RELEASED');
        expect(factory.calls()).toBe(0);
        expect(await readdir(workDir)).toEqual([]);
      } finally {
        await serving.close();
        await trust.close();
      }
    });
  }
});

describe('a replica refuses a tampered or unlisted model before the engine sees it', () => {
  let trust: ServingTrust;
  beforeAll(async () => {
    trust = await startServingTrust({ resources: { [MODEL_KEY_PATH]: modelKey } });
  });
  afterAll(async () => {
    await trust.close();
  });

  async function tampered(kind: 'flip' | 'truncate' | 'swap'): Promise<string> {
    const bytes = new Uint8Array(await readFile(sealedFile));
    const file = join(dir, `tampered-${kind}.tresor`);
    if (kind === 'flip') {
      bytes[bytes.length - 5000] = (bytes[bytes.length - 5000] ?? 0) ^ 0x10;
      await writeFile(file, bytes);
    } else if (kind === 'truncate') {
      await writeFile(file, bytes.subarray(0, bytes.length - 4200));
    } else {
      // The header (and its MAC) of another model sealed with the same key, on this model's chunks.
      const other = new Uint8Array(await readFile(await seal(new Uint8Array(randomBytes(20_000)), 'other')));
      const headerLength = 13 + new DataView(other.buffer).getUint32(9) + 32;
      const ownHeaderLength = 13 + new DataView(bytes.buffer).getUint32(9) + 32;
      await writeFile(
        file,
        Buffer.concat([other.subarray(0, headerLength), bytes.subarray(ownHeaderLength)]),
      );
    }
    return file;
  }

  for (const [kind, code] of [
    ['flip', 'SEALED_MODEL_TAMPERED'],
    ['truncate', 'SEALED_MODEL_TRUNCATED'],
    ['swap', 'SEALED_MODEL_TAMPERED'],
  ] as const) {
    it(`refuses a model with a ${kind} (${code}) and leaves no plaintext`, async () => {
      const workDir = join(dir, `work-${kind}`);
      const factory = countingFactory();
      const serving = await startServingService(
        servingConfig(trust, workDir, {
          models: [{ id: 'echo-small', file: await tampered(kind), key: MODEL_KEY_URI }],
        }),
        { engineFactory: factory.factory },
      );
      try {
        await expect(serving.ready).rejects.toMatchObject({ code });
        expect(factory.calls()).toBe(0);
        expect(await readdir(workDir)).toEqual([]);
        expect((await probe(`${serving.url}/readyz`)).body).toMatchObject({ code });
      } finally {
        await serving.close();
      }
    });
  }

  it('refuses a model whose digest the reference values do not list (MODEL_LOAD_FAILED)', async () => {
    const strict = await startServingTrust({
      resources: { [MODEL_KEY_PATH]: modelKey },
      modelDigests: ['0'.repeat(64)],
    });
    const workDir = join(dir, 'work-unlisted');
    const factory = countingFactory();
    const serving = await startServingService(servingConfig(strict, workDir), {
      engineFactory: factory.factory,
    });
    try {
      await expect(serving.ready).rejects.toMatchObject({ code: 'MODEL_LOAD_FAILED' });
      expect(factory.calls()).toBe(0);
      expect(await readdir(workDir)).toEqual([]);
    } finally {
      await serving.close();
      await strict.close();
    }
  });

  it('loads a model whose digest the reference values list', async () => {
    const listed = await startServingTrust({
      resources: { [MODEL_KEY_PATH]: modelKey },
      modelDigests: [plaintextSha256],
    });
    const serving = await startServingService(servingConfig(listed, join(dir, 'work-listed')));
    try {
      await serving.ready;
      expect(serving.step()).toBe('ready');
    } finally {
      await serving.close();
      await listed.close();
    }
  });

  it('stays not ready without evidence (EVIDENCE_UNAVAILABLE) or without a required GPU (GPU_CC_REQUIRED)', async () => {
    for (const [overrides, code] of [
      [{ tee: { source: 'configfs-tsm', root: join(dir, 'no-such-tsm') } }, 'EVIDENCE_UNAVAILABLE'],
      [{ tee: { source: 'auto', root: join(dir, 'no-such-tsm') } }, 'EVIDENCE_UNAVAILABLE'],
      [{ gpu: { requireGpu: true } }, 'GPU_CC_REQUIRED'],
    ] as const) {
      const factory = countingFactory();
      const workDir = join(dir, `work-${code}`);
      const serving = await startServingService(servingConfig(trust, workDir, overrides), {
        engineFactory: factory.factory,
      });
      try {
        await expect(serving.ready).rejects.toMatchObject({ code });
        expect((await probe(`${serving.url}/readyz`)).body).toMatchObject({ code });
        expect(factory.calls()).toBe(0);
        expect(await readdir(workDir)).toEqual([]);
      } finally {
        await serving.close();
      }
    }
  });
});

describe('the llama engine behind the sealed path, with the sealed demo model', () => {
  it('decrypts the demo GGUF, loads it in llama.cpp, deletes the plaintext and answers a sealed chat', async () => {
    const { demoModelBytes } = await import('./demo-model/demo-model.js');
    const demo = demoModelBytes();
    const file = await seal(demo, 'tresor-demo');
    const trust = await startServingTrust({ resources: { [MODEL_KEY_PATH]: modelKey } });
    const workDir = join(dir, 'work-llama');
    const serving = await startServingService(
      servingConfig(trust, workDir, {
        models: [{ id: 'tresor-demo', file, key: MODEL_KEY_URI }],
        engine: { kind: 'llama', threads: 1 },
      }),
    );
    try {
      await serving.ready;
      expect(await readdir(workDir)).toEqual([]);
      const gateway = await trust.meshClient('gateway');
      const evidence = (await probe(`${serving.url}/attestation?nonce=${'ab'.repeat(32)}`))
        .body as ComponentEvidence;
      expect(evidence.runtimeData.models).toEqual([
        { id: 'tresor-demo', sha256: createHash('sha256').update(demo).digest('hex') },
      ]);
      const answer = await sendSealedRequest({
        url: serving.url,
        keyConfig: evidence.runtimeData.hpkeKeyConfig,
        method: 'POST',
        path: '/v1/chat/completions',
        body: {
          model: 'tresor-demo',
          messages: [{ role: 'user', content: 'hello' }],
          max_tokens: 4,
          temperature: 0,
          stream: true,
        },
        tls: { ca: trust.meshCa.caCertificatePem, cert: gateway.cert, key: gateway.key },
        serverSpiffeId: SERVING_SPIFFE,
      });
      expect(answer.status).toBe(200);
      const events = answer.chunks.map((c) => new TextDecoder().decode(c));
      expect(events.at(-1)?.startsWith(RECEIPT_SSE_PREFIX)).toBe(true);
      expect(events).toContain('data: [DONE]\n\n');
    } finally {
      await serving.close();
      await trust.close();
    }
  });
});
