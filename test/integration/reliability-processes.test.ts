import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:https';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import type { RunningGateway } from '@tresor/gateway';
import { connect, type TresorClient } from '@tresor/sdk';
import { createNodeTransport } from '@tresor/sdk/node';
import {
  CLUSTER_MODEL,
  gatewayAdminCall,
  startGatewayCluster,
  type GatewayCluster,
} from '../support/gateway-cluster.js';
import { FileKeyStore, SecretKeyBytes } from '@tresor/keystore';
import { GATEWAY_MEASUREMENT, SERVING_MEASUREMENT } from '../support/serving-trust.js';
import { createTestCa, issueTestCertificate } from '../support/test-pki.js';

/**
 * Fault injection across processes (issue #13): a serving replica in its own process
 * (test/reliability/support/serving-child.ts, the built workspaces run by tsx) behind a real
 * gateway, killed with SIGKILL in the middle of a streamed answer.
 *
 * Expectations: the client's stream ENDS (no hang) with a sealed, authenticated error — the
 * gateway's `event: error` carrying UPSTREAM_FAILED, and the SDK refusing the answer as unreceipted
 * — never a silently truncated answer presented as complete; the next request is refused at once
 * with REPLICA_UNAVAILABLE (not a timeout); once a replica is back on the same address, the
 * gateway's next periodic re-attestation brings it back into rotation without a gateway restart,
 * and the same client, on the new replica's first receipt (a new attested receipt key under the same
 * replica id), verifies the gateway again by itself once and then accepts it.
 */

const CHILD = fileURLToPath(new URL('../reliability/support/serving-child.ts', import.meta.url));
/** A stream is held open at least this long per token, so SIGKILL lands in its middle. */
const INTER_TOKEN_DELAY_MS = 25;
/** A hang guard, not a timing assertion: a stream still open this long after the kill is a hang. */
const HANG_GUARD_MS = 60_000;

/**
 * Reads the rest of a stream after a fault: 'ended' when it ends or fails (the failure is
 * `refusal`), 'hang' when neither happens within HANG_GUARD_MS.
 */
async function drainAfterFault(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  decoder: TextDecoder,
): Promise<{ outcome: 'ended' | 'hang'; text: string; refusal: unknown }> {
  let text = '';
  let refusal: unknown;
  let guard: NodeJS.Timeout | undefined;
  const hang = new Promise<'hang'>((resolve) => {
    guard = setTimeout(() => {
      resolve('hang');
    }, HANG_GUARD_MS);
  });
  const drained = (async () => {
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
    } catch (err) {
      refusal = err;
    }
    return 'ended' as const;
  })();
  const outcome = await Promise.race([drained, hang]);
  clearTimeout(guard);
  return { outcome, text, refusal };
}

let cluster: GatewayCluster;
let gateway: RunningGateway;
let client: TresorClient;
let apiKey: string;
let child: ChildProcess | undefined;
let servingPort = 0;

async function startChild(port: number): Promise<{ url: string; process: ChildProcess }> {
  const config = join(cluster.dir, `serving-child-${port}.json`);
  await writeFile(
    config,
    JSON.stringify({
      mode: 'local',
      replicaId: 'serving-child',
      listen: { host: '127.0.0.1', port },
      trust: { url: cluster.trust.url, caFile: cluster.trust.caFile },
      tee: {
        source: 'sample',
        signingKeyFile: cluster.trust.sampleKeyFile,
        measurement: SERVING_MEASUREMENT,
      },
      models: [
        {
          id: CLUSTER_MODEL,
          file: join(cluster.dir, `${CLUSTER_MODEL}.tresor`),
          key: `kbs:///models/key/${CLUSTER_MODEL}`,
        },
      ],
      engine: { kind: 'echo' },
      workDir: join(cluster.dir, `child-work-${port}`),
      logLevel: 'silent',
      shutdownGraceMs: 0,
      testInterTokenDelayMs: INTER_TOKEN_DELAY_MS,
    }),
  );
  // `node --import tsx` (not the tsx CLI, which runs the script in a second process that SIGKILL would miss).
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, config], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    const lines = createInterface({ input: proc.stdout });
    lines.once('line', resolve);
    proc.once('exit', (code) => {
      reject(new Error(`serving child exited ${String(code)} before it was ready`));
    });
  });
  return { url: (JSON.parse(line) as { url: string }).url, process: proc };
}

function killed(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else
      proc.once('exit', () => {
        resolve();
      });
  });
}

async function admin(operation: string, body: unknown): Promise<Record<string, unknown>> {
  const answer = await gatewayAdminCall(gateway.url, cluster.gatewayCa, cluster.admin, operation, body);
  expect(answer.status, JSON.stringify(answer.json)).toBe(200);
  return answer.json;
}

function documentKeys(): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const req = request(`${cluster.trust.url}/trust/v0/document-keys`, { ca: cluster.trust.caPem }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (p: Buffer) => parts.push(p));
      res.on('end', () => {
        resolve(
          (JSON.parse(Buffer.concat(parts).toString('utf8')) as { keys: Record<string, unknown>[] }).keys,
        );
      });
    });
    req.on('error', reject);
    req.end();
  });
}

const chat = (content: string, extra: Record<string, unknown> = {}) =>
  client.fetch(`${client.gatewayUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: CLUSTER_MODEL, messages: [{ role: 'user', content }], ...extra }),
  });

beforeAll(async () => {
  cluster = await startGatewayCluster();
  const started = await startChild(0);
  child = started.process;
  servingPort = Number(new URL(started.url).port);
  gateway = await cluster.startGateway({ replicaUrls: [started.url] });
  await admin('tenants/create', { id: 'acme' });
  await admin('policies/set', {
    tenant: 'acme',
    policy: 'permit(principal in Gateway::Tenant::"acme", action, resource);',
  });
  apiKey = (await admin('api-keys/create', { tenant: 'acme' })).key as string;
  client = await connect(gateway.url, {
    policy: {
      version: 1,
      trustServiceKeys: (await documentKeys()).map((jwk) => ({ jwk })),
      trustSignedReferenceValues: true,
      allowSampleTee: true,
      sampleVerifyKeys: [cluster.trust.sampleKey.verifyKey.hex],
    },
    ...createNodeTransport({ ca: cluster.gatewayCa }),
  });
}, 180_000);

afterAll(async () => {
  if (child?.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await killed(child);
  }
  await cluster.close();
});

describe('kill -9 of serving mid-stream', () => {
  it('answers normally before the fault (control)', async () => {
    const response = await chat('one two three');
    expect(response.status).toBe(200);
    expect(
      ((await response.json()) as { choices: { message: { content: string } }[] }).choices[0]?.message
        .content,
    ).toContain('three');
  });

  it('ends the client stream with a sealed UPSTREAM_FAILED error, not a hang or a silent truncation', async () => {
    const words = Array.from({ length: 400 }, (_, i) => `w${i}`).join(' ');
    const response = await chat(words, { stream: true, max_tokens: 1000 });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    let text = '';
    const first = await reader.read();
    text += decoder.decode(first.value ?? new Uint8Array(0), { stream: true });
    expect(text).toContain('data: {');
    const proc = child!;
    proc.kill('SIGKILL');
    await killed(proc);
    expect(proc.signalCode).toBe('SIGKILL');

    const drained = await drainAfterFault(reader, decoder);
    expect(drained.outcome).toBe('ended');
    text += drained.text;
    const refusal = drained.refusal;
    // The answer never looks complete: no [DONE] after the kill…
    expect(text).not.toContain('data: [DONE]');
    // …the gateway's sealed error event names the failure…
    expect(text).toMatch(/event: error\ndata: \{"error":\{[^\n]*"code":"UPSTREAM_FAILED"/);
    // …and the SDK refuses the stream as unreceipted.
    expect(isTresorError(refusal) ? refusal.code : String(refusal)).toBe('RECEIPT_INVALID');
  });

  it('refuses the next request at once with REPLICA_UNAVAILABLE', async () => {
    const response = await chat('anyone');
    expect(response.status).toBe(503);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('REPLICA_UNAVAILABLE');
  });

  it('takes a restarted replica back at the next re-attestation, without restarting the gateway', async () => {
    const oldReceiptKey = client.lastReceipt?.receiptKey.x;
    expect(oldReceiptKey).toBeDefined();
    const verifiedBefore = client.document;
    const restarted = await startChild(servingPort);
    child = restarted.process;
    expect(await gateway.pool.verifyAll()).toBe(1); // what the re-attestation timer runs
    // The restarted replica signs receipts with a new attested key under the same replica id: the
    // client, WITHOUT reverify(), verifies the gateway again once on the first such receipt and
    // accepts it against the freshly attested key (single-shot, then streamed).
    const response = await chat('back again');
    expect(response.status).toBe(200);
    expect(await response.text()).toContain('again');
    expect(client.document).not.toBe(verifiedBefore);
    expect(client.document.ok).toBe(true);
    const newReceiptKey = client.lastReceipt?.receiptKey.x;
    expect(newReceiptKey).toBeDefined();
    expect(newReceiptKey).not.toBe(oldReceiptKey);
    expect(client.lastReceipt?.claims.replica).toBe('serving-child');
    const verifiedAfter = client.document;
    const streamed = await chat('streamed back', { stream: true });
    expect(await streamed.text()).toContain('data: [DONE]');
    expect(client.document).toBe(verifiedAfter); // no further verification
    expect(client.lastReceipt?.receiptKey.x).toBe(newReceiptKey);
  });
});

// ── kill -9 of the gateway during a request ──────────────────────────────────────────────────────

const TRESOR_BIN = fileURLToPath(new URL('../../apps/cli/bin/tresor.js', import.meta.url));
const GATEWAY_PASSPHRASE_ENV = 'TRESOR_TEST_FAULT_GATEWAY_PASSPHRASE';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => {
        resolve(typeof address === 'object' && address !== null ? address.port : 0);
      });
    });
  });
}

/**
 * The real `tresor gateway serve` in its own process, in front of a serving child, with its
 * metadata in SQLite under its state dir. Expectations: a client whose request is in flight when
 * the gateway is SIGKILLed gets an error at once (no hang) and never a complete-looking answer;
 * after a restart (same address, same state, a NEW OHTTP key under a new random key id) a request
 * sealed to the old key is refused in the clear with a clean code, the same client — without being
 * recreated and without reverify() — verifies the gateway again by itself once and re-sends it, and
 * the tenant and API key acknowledged before the kill survive.
 */
describe('kill -9 of the gateway during a request', () => {
  let gatewayChild: ChildProcess | undefined;
  let servingChild: ChildProcess | undefined;
  let configFile = '';
  let gatewayUrl = '';
  let ca = '';
  let key = '';
  let faultClient: TresorClient;
  /** What the fault client's transport saw: attestation bundle fetches, refusals in the clear. */
  const seen = { attestations: 0, refusals: [] as string[] };

  async function startGatewayChild(): Promise<ChildProcess> {
    const proc = spawn(process.execPath, [TRESOR_BIN, 'gateway', 'serve', '--config', configFile], {
      env: { PATH: process.env.PATH ?? '', [GATEWAY_PASSPHRASE_ENV]: 'fault injection passphrase only' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      const lines = createInterface({ input: proc.stdout });
      lines.on('line', (line) => {
        if (line.includes('attested and in rotation')) resolve();
      });
      proc.once('exit', (code) => {
        reject(new Error(`gateway child exited ${String(code)} before it was ready`));
      });
    });
    return proc;
  }

  beforeAll(async () => {
    const serving = await startChild(0);
    servingChild = serving.process;
    const dir = join(cluster.dir, 'fault-gateway');
    await mkdir(dir, { recursive: true });
    const tlsCa = await createTestCa('fault-gateway');
    ca = tlsCa.cert.toString('pem');
    const listener = await issueTestCertificate(tlsCa, 'localhost', 'server', '41');
    const keyStore = await FileKeyStore.open({
      path: join(dir, 'keys.tresor'),
      passphrase: SecretKeyBytes.copyOf(new TextEncoder().encode('fault injection passphrase only')),
      mode: 'development',
      createIfMissing: true,
      scryptLog2N: 14,
    });
    const auditKey = await keyStore.createSigningKey('ES256', { label: 'gateway audit' });
    const tenantKek = await keyStore.createKek({ label: 'gateway tenants' });
    await keyStore.close();
    await writeFile(join(dir, 'tls.crt'), listener.cert);
    await writeFile(join(dir, 'tls.key'), listener.key, { mode: 0o600 });
    await writeFile(join(dir, 'sample.pub'), cluster.trust.sampleKey.verifyKey.hex);
    const port = await freePort();
    gatewayUrl = `https://127.0.0.1:${port}`;
    configFile = join(dir, 'gateway.json');
    await writeFile(
      configFile,
      JSON.stringify({
        mode: 'local',
        server: {
          port,
          tls: { certFile: 'tls.crt', keyFile: 'tls.key' },
          logLevel: 'silent',
          shutdownGraceMs: 0,
        },
        stateDir: 'state',
        keystore: {
          backend: 'file',
          path: 'keys.tresor',
          passphraseEnv: GATEWAY_PASSPHRASE_ENV,
          scryptLog2N: 14,
        },
        keys: { auditCheckpoint: auditKey.id, tenantKek: tenantKek.id },
        trust: { url: cluster.trust.url, caFile: cluster.trust.caFile },
        serving: {
          replicas: [{ url: serving.url }],
          mesh: { source: 'trust' },
          sampleVerifyKeyFile: 'sample.pub',
          reverifyIntervalSeconds: 3600,
          upstreamTimeoutMs: 10_000,
        },
        tee: {
          kind: 'sample',
          signingKeyFile: cluster.trust.sampleKeyFile,
          measurement: GATEWAY_MEASUREMENT,
        },
        admin: { keys: [{ id: cluster.admin.id, jwk: cluster.admin.publicJwk }] },
      }),
    );
    gatewayChild = await startGatewayChild();
    const call = async (operation: string, body: unknown): Promise<Record<string, unknown>> => {
      const answer = await gatewayAdminCall(gatewayUrl, ca, cluster.admin, operation, body);
      expect(answer.status, JSON.stringify(answer.json)).toBe(200);
      return answer.json;
    };
    await call('tenants/create', { id: 'acme' });
    await call('policies/set', {
      tenant: 'acme',
      policy: 'permit(principal in Gateway::Tenant::"acme", action, resource);',
    });
    key = (await call('api-keys/create', { tenant: 'acme' })).key as string;
    faultClient = await connect(gatewayUrl, {
      policy: {
        version: 1,
        trustServiceKeys: (await documentKeys()).map((jwk) => ({ jwk })),
        trustSignedReferenceValues: true,
        allowSampleTee: true,
        sampleVerifyKeys: [cluster.trust.sampleKey.verifyKey.hex],
      },
      ...countingTransport(ca),
    });
  }, 180_000);

  /** The Node transport, recording bundle fetches and the codes of /v1/ohttp refusals in the clear. */
  function countingTransport(caPem: string): ReturnType<typeof createNodeTransport> {
    const transport = createNodeTransport({ ca: caPem });
    return {
      ...transport,
      fetch: async (input, init) => {
        const request = new Request(input, init);
        const path = new URL(request.url).pathname;
        if (path === '/.well-known/tresor/attestation') seen.attestations++;
        const response = await transport.fetch(request);
        if (path === '/v1/ohttp' && !response.ok) {
          const body = (await response.clone().json()) as { error?: { code?: string } };
          seen.refusals.push(body.error?.code ?? `status ${response.status}`);
        }
        return response;
      },
    };
  }

  /** The OHTTP key id the fault client verified (its document's gateway hpke_key check). */
  function attestedKeyId(): number {
    const entry = faultClient.document.entries.find(
      (e) => e.component === 'gateway' && e.check === 'hpke_key',
    );
    return Number(/key id (\d+)/.exec(entry?.seen ?? '')?.[1] ?? Number.NaN);
  }

  afterAll(async () => {
    for (const proc of [gatewayChild, servingChild]) {
      if (proc?.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGKILL');
        await killed(proc);
      }
    }
  });

  const faultChat = (content: string, extra: Record<string, unknown> = {}) =>
    faultClient.fetch(`${faultClient.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: CLUSTER_MODEL, messages: [{ role: 'user', content }], ...extra }),
    });

  it('the client gets an error at once when the gateway dies mid-stream, never a complete-looking answer', async () => {
    const words = Array.from({ length: 400 }, (_, i) => `w${i}`).join(' ');
    const response = await faultChat(words, { stream: true, max_tokens: 1000 });
    expect(response.status).toBe(200);
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    const first = await reader.read();
    let text = decoder.decode(first.value ?? new Uint8Array(0), { stream: true });
    const proc = gatewayChild!;
    proc.kill('SIGKILL');
    await killed(proc);
    const drained = await drainAfterFault(reader, decoder);
    expect(drained.outcome).toBe('ended');
    text += drained.text;
    const refusal = drained.refusal;
    expect(text).not.toContain('data: [DONE]');
    // A catalogue code saying the answer is incomplete, not a bare `Error: aborted`.
    expect(isTresorError(refusal) ? refusal.code : String(refusal)).toBe('GATEWAY_UNREACHABLE');
    expect((refusal as Error).message).toMatch(/the answer is incomplete/);
    // While it is down, a new request fails at once too, saying there is no answer.
    await expect(faultChat('anyone').then((r) => r.text())).rejects.toMatchObject({
      code: 'GATEWAY_UNREACHABLE',
      message: expect.stringMatching(/there is no answer/) as unknown,
    });
  });

  it('after a restart (new OHTTP key) the same client, without reverify(), is served after one automatic re-verification; acknowledged tenant and key survive', async () => {
    const oldKeyId = attestedKeyId();
    const attestationsBefore = seen.attestations;
    gatewayChild = await startGatewayChild();
    // The request below is sealed to the previous process's key: the gateway refuses it in the
    // clear without opening it (OHTTP_KEY_ID_UNKNOWN: a new random key id; OHTTP_DECRYPT_FAILED
    // in the 1 case in 256 where the new id equals the old), and the SDK verifies the gateway
    // again by itself, once, and re-sends it sealed to the new key.
    const response = await faultChat('sealed to the old key, then after the restart');
    expect(response.status, await response.clone().text()).toBe(200);
    expect(await response.text()).toContain('restart');
    expect(seen.attestations - attestationsBefore).toBe(1);
    const newKeyId = attestedKeyId();
    expect(seen.refusals).toEqual([newKeyId === oldKeyId ? 'OHTTP_DECRYPT_FAILED' : 'OHTTP_KEY_ID_UNKNOWN']);
    // Each gateway process picks a random key id; the fixed id 1 of earlier builds shows as both
    // being 1 (a chance of 1 in 65,536 with random ids).
    expect([oldKeyId, newKeyId]).not.toEqual([1, 1]);
    // The next request goes straight through: no refusal, no verification.
    const again = await faultChat('once more');
    expect(again.status).toBe(200);
    await again.text();
    expect(seen.attestations - attestationsBefore).toBe(1);
    expect(seen.refusals).toHaveLength(1);
  });
});
