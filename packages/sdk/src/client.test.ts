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
