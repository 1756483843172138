import OpenAI from 'openai';
import { describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import {
  GATEWAY_URL,
  MODEL_ID,
  createSampleGateway,
  debugTeeVerifiers,
  type SampleGatewayOptions,
} from '../../../test/support/sdk-sample-gateway.js';
import { connect, parseTresorPolicy, verifyGateway, type TlsBinding, type VerifiedReceipt } from './index.js';

/** A TLS binding that reports the given key for every connection (what Node's transport observes). */
function observing(spki: string): TlsBinding & { pinned: Map<string, string> } {
  const pinned = new Map<string, string>();
  return { observed: () => spki, pin: (origin, key) => void pinned.set(origin, key), pinned };
}

async function connected(options: SampleGatewayOptions = {}) {
  const gateway = await createSampleGateway(options);
  const receipts: VerifiedReceipt[] = [];
  const client = await connect(GATEWAY_URL, {
    policy: gateway.policy,
    fetch: gateway.fetch,
    tls: observing(gateway.tlsSpkiSha256),
    onReceipt: (r) => receipts.push(r),
  });
  return { gateway, client, receipts };
}

describe('connect: verification document', () => {
  it('verifies a sample-TEE gateway and its serving replica, marking the document insecure', async () => {
    const { client } = await connected();
    const doc = client.document;
    expect(doc.ok).toBe(true);
    expect(doc.insecure).toBe(true);
    expect(doc.entries.every((e) => e.status !== 'fail')).toBe(true);
    // The client cannot see the gateway-to-serving mesh connection; the gateway checks it.
    expect(
      doc.entries.filter((e) => e.status === 'not-observable').map((e) => `${e.component}.${e.check}`),
    ).toEqual(['serving.tls_key']);
    const checks = (component: string) =>
      doc.entries.filter((e) => e.component === component).map((e) => e.check);
    expect(checks('gateway')).toEqual(
      expect.arrayContaining([
        'bundle_nonce',
        'evidence_signature',
        'sample_tee',
        'debug_off',
        'tcb',
        'report_data',
        'nonce',
        'tls_key',
        'hpke_key',
        'measurement',
        'residency',
        'freshness',
      ]),
    );
    expect(checks('serving')).toEqual(
      expect.arrayContaining(['receipt_key', 'models', 'gpu', 'measurement']),
    );
    expect(checks('trust')).toEqual(['reference_values_signature', 'residency_inventory_signature']);
    const measurement = doc.entries.find((e) => e.component === 'gateway' && e.check === 'measurement');
    expect(measurement?.seen).toContain('gateway@1.0.0');
  });

  it('marks the TLS key "not-observable" where the platform cannot see certificates (browsers)', async () => {
    const gateway = await createSampleGateway();
    const { document } = await verifyGateway(GATEWAY_URL, { policy: gateway.policy, fetch: gateway.fetch });
    const tls = document.entries.find((e) => e.component === 'gateway' && e.check === 'tls_key');
    expect(tls?.status).toBe('not-observable');
    expect(tls?.seen).toMatch(/browser/);
    expect(document.ok).toBe(true);
  });

  it('pins the attested TLS key for the gateway origin after verifying', async () => {
    const gateway = await createSampleGateway();
    const tls = observing(gateway.tlsSpkiSha256);
    await connect(GATEWAY_URL, { policy: gateway.policy, fetch: gateway.fetch, tls });
    expect(tls.pinned.get(GATEWAY_URL)).toBe(gateway.tlsSpkiSha256);
  });
});

interface FailCase {
  readonly name: string;
  readonly check: string;
  readonly code: string;
  readonly gateway?: SampleGatewayOptions;
  readonly policy?: (p: Record<string, unknown>) => Record<string, unknown>;
  readonly observedTls?: string;
  readonly verifiers?: ReturnType<typeof debugTeeVerifiers>;
}

const failCases: FailCase[] = [
  {
    name: 'wrong measurement',
    check: 'measurement',
    code: 'MEASUREMENT_NOT_ALLOWED',
    gateway: { gatewayMeasurement: new Uint8Array(48).fill(0x99) },
  },
  {
    name: 'debug TEE',
    check: 'debug_off',
    code: 'ATTESTATION_DEBUG_ENABLED',
    verifiers: debugTeeVerifiers(),
  },
  {
    name: 'wrong TLS key binding (MITM certificate)',
    check: 'tls_key',
    code: 'TLS_KEY_MISMATCH',
    observedTls: 'ee'.repeat(32),
  },
  {
    name: 'stale nonce (replayed evidence)',
    check: 'nonce',
    code: 'EVIDENCE_STALE',
    gateway: { runtimeData: (rd) => void (rd.nonce = '00'.repeat(32)) },
  },
  {
    name: 'unsigned reference values',
    check: 'reference_values_signature',
    code: 'SIGNED_DOCUMENT_INVALID',
    gateway: {
      bundle: (b) => void (b.referenceValues = b.referenceValues.split('.').slice(0, 2).join('.') + '.'),
    },
  },
  {
    name: 'tampered reference values',
    check: 'reference_values_signature',
    code: 'SIGNED_DOCUMENT_INVALID',
    gateway: {
      bundle: (b) => {
        const [h, p, s] = b.referenceValues.split('.');
        const payload = JSON.parse(Buffer.from(p ?? '', 'base64url').toString()) as {
          referenceValues: { measurements: Record<string, string[]> }[];
        };
        payload.referenceValues[0]!.measurements.measurement = ['99'.repeat(48)];
        b.referenceValues = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`;
      },
    },
  },
  {
    name: 'documents signed by an unpinned key',
    check: 'residency_inventory_signature',
    code: 'SIGNED_DOCUMENT_INVALID',
    gateway: { signDocumentsWithUnpinnedKey: true },
  },
  {
    name: 'chip outside the residency inventory',
    check: 'residency',
    code: 'RESIDENCY_VIOLATION',
    gateway: { machineJurisdiction: null },
  },
  {
    name: 'chip in another jurisdiction',
    check: 'residency',
    code: 'RESIDENCY_VIOLATION',
    gateway: { machineJurisdiction: 'DE' },
  },
  {
    name: 'sample TEE under a production policy',
    check: 'sample_tee',
    code: 'SAMPLE_TEE_NOT_ALLOWED',
    policy: (p) => ({ ...p, allowSampleTee: false }),
  },
  {
    name: 'old evidence',
    check: 'freshness',
    code: 'EVIDENCE_STALE',
    gateway: { now: () => new Date(Date.now() - 3_600_000) },
  },
  {
    name: 'runtime data changed after the evidence was produced',
    check: 'report_data',
    code: 'REPORT_DATA_MISMATCH',
    gateway: {
      bundle: (b) => void (b.gateway.runtimeData.tlsSpkiSha256 = 'c0'.repeat(32).replace('c0', 'c1')),
    },
  },
  {
    name: 'serving replica with a different measurement',
    check: 'measurement',
    code: 'MEASUREMENT_NOT_ALLOWED',
    policy: (p) => ({
      ...p,
      trustSignedReferenceValues: false,
      releases: [{ component: 'gateway', release: '1.0.0' }],
    }),
  },
  {
    name: 'GPU required but absent',
    check: 'gpu',
    code: 'GPU_CC_REQUIRED',
    policy: (p) => ({ ...p, requireGpu: true }),
  },
];

describe('connect fails closed before any request body is sent', () => {
  it.each(failCases)('$name → $check ($code)', async (c) => {
    const gateway = await createSampleGateway(c.gateway);
    const policy = c.policy === undefined ? gateway.policy : c.policy(gateway.policy);
    const attempt = connect(GATEWAY_URL, {
      policy,
      fetch: gateway.fetch,
      tls: observing(c.observedTls ?? gateway.tlsSpkiSha256),
      ...(c.verifiers === undefined ? {} : { verifiers: c.verifiers }),
    });
    const err = await attempt.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TresorError);
    expect((err as TresorError).code).toBe(c.code);
    expect((err as TresorError).message).toContain(c.check);
    expect((err as TresorError).message).toContain('No request was sent');
    const doc = (err as TresorError).details?.document as { entries: { check: string; status: string }[] };
    expect(doc.entries.some((e) => e.check === c.check && e.status === 'fail')).toBe(true);
    expect(gateway.calls).not.toContain('/v1/ohttp');
  });
});

describe('client.fetch with the official openai client', () => {
  it('completes a non-streaming chat completion and verifies its receipt', async () => {
    const { gateway, client, receipts } = await connected();
    const openai = new OpenAI({
      baseURL: `${GATEWAY_URL}/v1`,
      apiKey: 'tr-test-key',
      fetch: client.fetch,
      maxRetries: 0,
    });
    const completion = await openai.chat.completions.create({
      model: MODEL_ID,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(completion.choices[0]?.message.content).toBe('Grüezi from the enclave');
    expect(receipts).toHaveLength(1);
    expect(client.lastReceipt?.claims.replica).toBe('serving-1');
    expect(gateway.innerAuthorizations).toEqual(['Bearer tr-test-key']);
  });

  it('streams a chat completion token by token, strips the receipt line and verifies it', async () => {
    const { client, receipts } = await connected();
    const openai = new OpenAI({
      baseURL: `${GATEWAY_URL}/v1`,
      apiKey: 'tr-test-key',
      fetch: client.fetch,
      maxRetries: 0,
    });
    const stream = await openai.chat.completions.create({
      model: MODEL_ID,
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    const tokens: string[] = [];
    for await (const chunk of stream) tokens.push(chunk.choices[0]?.delta.content ?? '');
    expect(tokens.join('')).toBe('Grüezi from the enclave');
    expect(tokens.filter((t) => t !== '').length).toBe(4);
    expect(receipts).toHaveLength(1);
  });

  it('lists models (gateway-answered, no receipt required)', async () => {
    const { client } = await connected();
    const openai = new OpenAI({
      baseURL: `${GATEWAY_URL}/v1`,
      apiKey: 'k',
      fetch: client.fetch,
      maxRetries: 0,
    });
    const models = await openai.models.list();
    expect(models.data.map((m) => m.id)).toEqual([MODEL_ID]);
  });

  it('refuses a response without a receipt, and one with a forged receipt', async () => {
    for (const options of [{ omitReceipts: true }, { forgeReceipts: true }]) {
      const { client } = await connected(options);
      const err = await client
        .fetch(`${GATEWAY_URL}/v1/chat/completions`, {
          method: 'POST',
          body: JSON.stringify({ model: MODEL_ID, messages: [] }),
          headers: { 'content-type': 'application/json' },
        })
        .then(
          () => null,
          (e: unknown) => e,
        );
      expect((err as TresorError).code).toBe('RECEIPT_INVALID');
    }
  });

  it('errors a stream whose receipt is forged, after its tokens', async () => {
    const { client } = await connected({ forgeReceipts: true });
    const response = await client.fetch(`${GATEWAY_URL}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: MODEL_ID, messages: [], stream: true }),
    });
    const err = await response.text().then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as TresorError).code).toBe('RECEIPT_INVALID');
  });

  it('refuses to send to another origin', async () => {
    const { client, gateway } = await connected();
    const err = await client
      .fetch('https://elsewhere.test/v1/chat/completions', { method: 'POST', body: '{}' })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect((err as TresorError).code).toBe('USAGE_INVALID');
    expect(gateway.calls).not.toContain('/v1/ohttp');
  });

  it('re-verifies and re-encrypts when the gateway rotated its key', async () => {
    const { client, gateway } = await connected();
    const before = client.document.time;
    await gateway.rotateKey();
    const response = await client.fetch(`${GATEWAY_URL}/v1/models`);
    expect(response.status).toBe(200);
    expect(gateway.calls.filter((c) => c === '/.well-known/tresor/attestation')).toHaveLength(2);
    expect(client.document.entries.every((e) => e.status !== 'fail')).toBe(true);
    expect(typeof before).toBe('string');
  });

  it('checkKeyConfig re-verifies when the served key config no longer matches the attested one', async () => {
    const { client, gateway } = await connected();
    await client.checkKeyConfig();
    expect(gateway.calls.filter((c) => c === '/.well-known/tresor/attestation')).toHaveLength(1);
    await gateway.rotateKey();
    await client.checkKeyConfig();
    expect(gateway.calls.filter((c) => c === '/.well-known/tresor/attestation')).toHaveLength(2);
  });
});

describe('policy', () => {
  it('rejects a policy that trusts no code', () => {
    expect(() =>
      parseTresorPolicy({ version: 1, trustServiceKeys: [{ thumbprint: 'a'.repeat(43) }] }),
    ).toThrow(/trustSignedReferenceValues/);
  });
});

/** A transport in front of the sample gateway that can refuse, tamper with or cut what it forwards. */
function faulty(gateway: {
  fetch: (input: string | URL | Request, init?: RequestInit) => Promise<Response>;
}) {
  const state = {
    /** Answer every /v1/ohttp request with this refusal (status, code), in the clear. */
    refuse: undefined as [number, string, (string | undefined)?] | undefined,
    /** Break every /v1/ohttp response body after its first piece with this error. */
    cutWith: undefined as unknown,
    /** Replace the nonce of served attestation bundles (replayed evidence). */
    replayBundles: false,
    ohttpCalls: 0,
  };
  const fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const request = new Request(input, init);
    if (request.signal.aborted) throw request.signal.reason;
    const path = new URL(request.url).pathname;
    if (path === '/v1/ohttp') {
      state.ohttpCalls++;
      if (state.refuse !== undefined) {
        const [status, code, message] = state.refuse;
        return Response.json(
          { error: { code, message: message ?? 'refused', type: 'tresor_error' } },
          { status },
        );
      }
    }
    const response = await gateway.fetch(request);
    if (path === '/.well-known/tresor/attestation' && state.replayBundles) {
      const bundle = (await response.json()) as { nonce: string };
      return Response.json({ ...bundle, nonce: '00'.repeat(32) });
    }
    if (path !== '/v1/ohttp' || state.cutWith === undefined || response.body === null) return response;
    const reader = response.body.getReader();
    let sent = false;
    const cut = state.cutWith;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent) {
          controller.error(cut);
          return;
        }
        const { done, value } = await reader.read();
        if (done) controller.error(cut);
        else controller.enqueue(value.subarray(0, Math.max(1, value.length - 1)));
        sent = true;
      },
    });
    return new Response(body, { status: response.status, headers: response.headers });
  };
  return { state, fetch };
}

async function faultyClient(options: SampleGatewayOptions = {}) {
  const gateway = await createSampleGateway(options);
  const transport = faulty(gateway);
  const receipts: VerifiedReceipt[] = [];
  const client = await connect(GATEWAY_URL, {
    policy: gateway.policy,
    fetch: transport.fetch,
    tls: observing(gateway.tlsSpkiSha256),
    onReceipt: (r) => receipts.push(r),
  });
  const attestations = () => gateway.calls.filter((c) => c === '/.well-known/tresor/attestation').length;
  return { gateway, client, state: transport.state, attestations, receipts };
}

const chatRequest = (stream: boolean): RequestInit => ({
  method: 'POST',
  headers: { 'content-type': 'application/json', authorization: 'Bearer tr-test-key' },
  body: JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }], stream }),
});

const failure = (promise: Promise<unknown>): Promise<unknown> =>
  promise.then(
    () => null,
    (e: unknown) => e,
  );

describe('a gateway restarted under the client (new OHTTP key, same key id)', () => {
  it.each([false, true])(
    'stream=%s: the refused request is re-sent once, after one automatic re-verification',
    async (stream) => {
      const { gateway, client, attestations } = await faultyClient();
      const before = client.document.time;
      await gateway.rotateKey({ sameKeyId: true });
      const response = await client.fetch(`${GATEWAY_URL}/v1/chat/completions`, chatRequest(stream));
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('enclave');
      expect(attestations()).toBe(2);
      expect(gateway.calls.filter((c) => c === '/v1/ohttp')).toHaveLength(2);
      expect(client.document.ok).toBe(true);
      expect(typeof before).toBe('string');
      // The next request goes straight to the new key.
      await (await client.fetch(`${GATEWAY_URL}/v1/chat/completions`, chatRequest(stream))).text();
      expect(attestations()).toBe(2);
      expect(gateway.calls.filter((c) => c === '/v1/ohttp')).toHaveLength(3);
    },
  );

  it.each(['OHTTP_DECRYPT_FAILED', 'OHTTP_KEY_ID_UNKNOWN'])(
    'a second %s refusal reaches the caller with its code: one re-verification, one resend, no more',
    async (code) => {
      const { client, state, attestations } = await faultyClient();
      state.refuse = [400, code];
      const response = await client.fetch(`${GATEWAY_URL}/v1/models`);
      expect(response.status).toBe(400);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
      expect(attestations()).toBe(2);
      expect(state.ohttpCalls).toBe(2);
    },
  );

  it.each([
    [429, 'RATE_LIMITED', undefined],
    [401, 'API_KEY_INVALID', undefined],
    [400, 'OHTTP_MESSAGE_MALFORMED', 'not OHTTP_DECRYPT_FAILED nor OHTTP_KEY_ID_UNKNOWN'],
    [502, 'UPSTREAM_FAILED', undefined],
  ] as const)(
    'any other refusal (%i %s) is passed on as is: no re-verification, no resend',
    async (status, code, message) => {
      const { client, state, attestations } = await faultyClient();
      state.refuse = [status, code, message];
      const response = await client.fetch(`${GATEWAY_URL}/v1/chat/completions`, chatRequest(false));
      expect(response.status).toBe(status);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe(code);
      expect(attestations()).toBe(1);
      expect(state.ohttpCalls).toBe(1);
    },
  );

  it('sends nothing again when the re-verification fails: the failed check is thrown', async () => {
    const { client, state, attestations } = await faultyClient();
    state.refuse = [400, 'OHTTP_DECRYPT_FAILED'];
    state.replayBundles = true;
    const err = await failure(client.fetch(`${GATEWAY_URL}/v1/chat/completions`, chatRequest(false)));
    expect((err as TresorError).code).toBe('EVIDENCE_STALE');
    expect((err as TresorError).message).toContain('No request was sent');
    expect(attestations()).toBe(2);
    expect(state.ohttpCalls).toBe(1);
  });

  it('concurrent requests refused together share one re-verification', async () => {
    const { gateway, client, attestations } = await faultyClient();
    await gateway.rotateKey({ sameKeyId: true });
    const answers = await Promise.all(
      [false, true, false].map(async (stream) =>
        (await client.fetch(`${GATEWAY_URL}/v1/chat/completions`, chatRequest(stream))).text(),
      ),
    );
    expect(answers.every((a) => a.includes('enclave'))).toBe(true);
    expect(attestations()).toBe(2);
  });
});

describe('a serving replica restarted under the client (new attested receipt key, same id)', () => {
  it.each([false, true])(
    'stream=%s: the receipt verifies after one automatic re-verification, with the new key',
    async (stream) => {
      const { gateway, client, attestations, receipts } = await faultyClient();
      await (await client.fetch(`${GATEWAY_URL}/v1/chat/completions`, chatRequest(stream))).text();
      const oldKey = receipts[0]?.receiptKey.x;
      await gateway.restartServing();
      const response = await client.fetch(`${GATEWAY_URL}/v1/chat/completions`, chatRequest(stream));
      expect(await response.text()).toContain('enclave');
      expect(attestations()).toBe(2);
      expect(receipts).toHaveLength(2);
      expect(receipts[1]?.receiptKey.x).not.toBe(oldKey);
      expect(client.lastReceipt?.receiptKey.x).toBe(receipts[1]?.receiptKey.x);
    },
  );

  it.each([false, true])(
    'stream=%s: a receipt signed by a key no verification attests is refused after the one re-verification',
    async (stream) => {
      const { client, attestations, receipts } = await faultyClient({ forgeReceipts: true });
      const err = await failure(
        client.fetch(`${GATEWAY_URL}/v1/chat/completions`, chatRequest(stream)).then((r) => r.text()),
      );
      expect((err as TresorError).code).toBe('RECEIPT_INVALID');
      expect((err as TresorError).message).toContain('attested receipt key');
      expect(attestations()).toBe(2);
      expect(receipts).toHaveLength(0);
    },
  );

  it('a missing receipt is refused at once, without re-verifying', async () => {
    const { client, attestations } = await faultyClient({ omitReceipts: true });
    const err = await failure(client.fetch(`${GATEWAY_URL}/v1/chat/completions`, chatRequest(false)));
    expect((err as TresorError).code).toBe('RECEIPT_INVALID');
    expect(attestations()).toBe(1);
  });

  it('refuses the receipt when the re-verification itself fails (fail closed)', async () => {
    const { gateway, client, state } = await faultyClient();
    await gateway.restartServing();
    state.replayBundles = true;
    const err = await failure(client.fetch(`${GATEWAY_URL}/v1/chat/completions`, chatRequest(false)));
    expect((err as TresorError).code).toBe('EVIDENCE_STALE');
    expect(client.lastReceipt).toBeUndefined();
  });
});

describe('transport failures are GATEWAY_UNREACHABLE, never a bare network error', () => {
  it.each([
    ['stream', true],
    ['single-shot', false],
  ] as const)('%s: a connection broken mid-answer says the answer is incomplete', async (_, stream) => {
    const { client, state } = await faultyClient();
    state.cutWith = new TypeError('network error');
    const err = await failure(
      client.fetch(`${GATEWAY_URL}/v1/chat/completions`, chatRequest(stream)).then((r) => r.text()),
    );
    expect(err).toBeInstanceOf(TresorError);
    expect((err as TresorError).code).toBe('GATEWAY_UNREACHABLE');
    expect((err as TresorError).message).toMatch(/the answer is incomplete/);
    expect((err as TresorError).message).toContain('TypeError: network error');
    expect(state.ohttpCalls).toBe(1); // no resend: the gateway may have acted on it
  });

  it('a failure before any answer says there is none', async () => {
    const gateway = await createSampleGateway();
    let down = false;
    const client = await connect(GATEWAY_URL, {
      policy: gateway.policy,
      fetch: (input, init) =>
        down ? Promise.reject(new TypeError('Failed to fetch')) : gateway.fetch(input, init),
    });
    down = true;
    const err = await failure(client.fetch(`${GATEWAY_URL}/v1/chat/completions`, chatRequest(false)));
    expect((err as TresorError).code).toBe('GATEWAY_UNREACHABLE');
    expect((err as TresorError).message).toMatch(/failed before an answer arrived.*there is no answer/);
  });

  it("the caller's own abort stays an AbortError", async () => {
    const { client, state } = await faultyClient();
    const abort = new AbortController();
    abort.abort();
    const err = await failure(
      client.fetch(`${GATEWAY_URL}/v1/chat/completions`, { ...chatRequest(false), signal: abort.signal }),
    );
    expect(err).not.toBeInstanceOf(TresorError);
    expect((err as Error).name).toBe('AbortError');
    expect(state.ohttpCalls).toBe(0);
  });

  it('a refused TLS key or a decryption failure keeps its own code', async () => {
    const { client, state } = await faultyClient();
    state.cutWith = new TresorError('TLS_KEY_MISMATCH', 'test');
    const err = await failure(
      client.fetch(`${GATEWAY_URL}/v1/chat/completions`, chatRequest(true)).then((r) => r.text()),
    );
    expect((err as TresorError).code).toBe('TLS_KEY_MISMATCH');
  });
});
