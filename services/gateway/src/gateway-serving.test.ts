import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type TresorClient, type VerifiedReceipt } from '@tresor/sdk';
import { createNodeTransport } from '@tresor/sdk/node';
import type { RunningServingService } from '@tresor/serving';
import {
  CLUSTER_MODEL,
  gatewayAdminCall,
  startGatewayCluster,
  trustDocumentKeys,
  type GatewayCluster,
} from '../../../test/support/gateway-cluster.js';
import type { RunningGateway } from './start-gateway-service.js';

/**
 * The gateway in front of a REAL serving replica (echo engine, sample TEE, sealed model released
 * through the trust service's KBS): the gateway's mesh identity is attested to the trust service
 * and certified by its mesh CA, the replica is verified by the SDK verifier, and the SDK client
 * verifies every receipt — which only works if the gateway forwards the client's request bytes
 * unchanged and the response bytes the receipt covers.
 */
let cluster: GatewayCluster;
let serving: RunningServingService;
let gateway: RunningGateway;
let client: TresorClient;
let apiKey: string;
const receipts: VerifiedReceipt[] = [];

async function admin(operation: string, request: unknown): Promise<Record<string, unknown>> {
  const answer = await gatewayAdminCall(gateway.url, cluster.gatewayCa, cluster.admin, operation, request);
  expect(answer.status, JSON.stringify(answer.json)).toBe(200);
  return answer.json;
}

async function post(path: string, body: unknown, key = apiKey): Promise<Response> {
  return client.fetch(`${client.gatewayUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

const chat = (content: string, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: CLUSTER_MODEL,
  messages: [{ role: 'user', content }],
  ...extra,
});

beforeAll(async () => {
  cluster = await startGatewayCluster();
  serving = await cluster.startServing();
  gateway = await cluster.startGateway({ replicaUrls: [serving.url] });
  await admin('tenants/create', { id: 'acme' });
  await admin('policies/set', {
    tenant: 'acme',
    policy: 'permit(principal in Gateway::Tenant::"acme", action, resource);',
  });
  apiKey = (await admin('api-keys/create', { tenant: 'acme' })).key as string;
  const documentKeys = await trustDocumentKeys(cluster.trust);
  client = await connect(gateway.url, {
    policy: {
      version: 1,
      trustServiceKeys: documentKeys.map((jwk) => ({ jwk })),
      trustSignedReferenceValues: true,
      allowSampleTee: true,
      sampleVerifyKeys: [cluster.trust.sampleKey.verifyKey.hex],
    },
    ...createNodeTransport({ ca: cluster.gatewayCa }),
    onReceipt: (r) => receipts.push(r),
  });
}, 180_000);

afterAll(async () => {
  await cluster.close();
});

describe('gateway → real serving replica', () => {
  it('holds a mesh certificate from the trust service naming the gateway, and routes to the attested replica', () => {
    expect(gateway.mesh?.spiffeId).toBe('spiffe://tresor.local/gateway/_');
    expect(gateway.pool.replicas.map((r) => [r.lastError, r.verified?.id])).toEqual([[null, 'serving-0']]);
    expect(client.document.ok).toBe(true);
  });

  it('answers a chat completion whose receipt verifies against the attested replica', async () => {
    const before = receipts.length;
    const response = await post('/v1/chat/completions', chat('hello sealed world'));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { choices: { message: { content: string } }[]; usage: unknown };
    expect(body.choices[0]?.message.content).toContain('hello');
    expect(receipts.length).toBe(before + 1);
    expect(receipts.at(-1)?.claims.model).toBe(CLUSTER_MODEL);
  });

  it('streams without include_usage: receipt verifies, no usage reaches the client, tokens are counted', async () => {
    const before = receipts.length;
    const response = await post('/v1/chat/completions', chat('one two three four', { stream: true }));
    expect(response.status).toBe(200);
    const text = await response.text();
    expect(text).toContain('data: [DONE]');
    expect(text).not.toContain('"usage":{');
    expect(text).not.toContain('tresor-usage');
    expect(receipts.length).toBe(before + 1);
    const records = (await admin('usage', { tenant: 'acme' })).records as { completionTokens: number }[];
    expect(records.some((r) => r.completionTokens > 0)).toBe(true);
  });

  it('streams with include_usage: the usage chunk reaches the client and the receipt still verifies', async () => {
    const before = receipts.length;
    const response = await post(
      '/v1/chat/completions',
      chat('alpha beta', { stream: true, stream_options: { include_usage: true } }),
    );
    const text = await response.text();
    expect(text).toMatch(/"usage":\{"prompt_tokens":\d+,"completion_tokens":\d+/);
    expect(text).not.toContain('tresor-usage');
    expect(receipts.length).toBe(before + 1);
  });

  it('answers completions, embeddings and the model list', async () => {
    const completion = await post('/v1/completions', {
      model: CLUSTER_MODEL,
      prompt: 'a b c',
      max_tokens: 3,
    });
    expect(completion.status).toBe(200);
    const embedding = await post('/v1/embeddings', { model: CLUSTER_MODEL, input: 'x' });
    expect(embedding.status).toBe(200);
    const models = await client.fetch(`${client.gatewayUrl}/v1/models`, {
      headers: { authorization: `Bearer ${apiKey}` },
    });
    expect(((await models.json()) as { data: { id: string }[] }).data.map((m) => m.id)).toEqual([
      CLUSTER_MODEL,
    ]);
  });

  it('passes the replica’s own refusals through in OpenAI’s shape', async () => {
    const refused = await post('/v1/chat/completions', chat('x', { max_tokens: -1 }));
    expect(refused.status).toBe(400);
    const body = (await refused.json()) as { error: { code: string } };
    expect(body.error.code).toBe('API_REQUEST_INVALID');
  });

  it('renews its mesh certificate with a fresh key and keeps serving', async () => {
    const before = gateway.mesh?.tls.cert ?? '';
    await gateway.mesh?.renew();
    const after = gateway.mesh?.tls.cert ?? '';
    expect(after).not.toBe(before);
    expect(new X509Certificate(after).publicKey.equals(new X509Certificate(before).publicKey)).toBe(false);
    const response = await post('/v1/chat/completions', chat('after renewal'));
    expect(response.status).toBe(200);
  });

  it('takes a replica that went away out of rotation and says so', async () => {
    await serving.close();
    const failed = await post('/v1/chat/completions', chat('anyone there'));
    expect([502, 503]).toContain(failed.status);
    const code = ((await failed.json()) as { error: { code: string } }).error.code;
    expect(['UPSTREAM_FAILED', 'REPLICA_UNAVAILABLE']).toContain(code);
    const next = await post('/v1/chat/completions', chat('anyone there'));
    expect(next.status).toBe(503);
    expect(((await next.json()) as { error: { code: string } }).error.code).toBe('REPLICA_UNAVAILABLE');
  });
});
