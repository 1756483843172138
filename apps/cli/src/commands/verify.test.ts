import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from '@tresor/sdk';
import { createNodeTransport } from '@tresor/sdk/node';
import { captureIo } from '../../../../test/support/cli-io.js';
import {
  createSampleGateway,
  MODEL_ID,
  type SampleGatewayOptions,
} from '../../../../test/support/sdk-sample-gateway.js';
import { serveHandler, spkiSha256OfPem } from '../../../../test/support/sdk-serve.js';
import { createTestCa, issueTestCertificate } from '../../../../test/support/test-pki.js';
import { run } from '../index.js';
import { startProxy, type RunningProxy } from './proxy.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  process.exitCode = undefined;
});

async function stack(
  options: SampleGatewayOptions = {},
  policyEdit?: (p: Record<string, unknown>) => unknown,
) {
  const ca = await createTestCa('tresor-cli-test-ca');
  const cert = await issueTestCertificate(ca, 'localhost', 'server', '02');
  const gateway = await createSampleGateway({ ...options, tlsSpkiSha256: spkiSha256OfPem(cert.cert) });
  const server = await serveHandler(gateway.handle, cert);
  const dir = await mkdtemp(join(tmpdir(), 'tresor-cli-client-'));
  cleanups.push(
    () => server.close(),
    () => rm(dir, { recursive: true, force: true }),
  );
  const caFile = join(dir, 'ca.pem');
  const policyFile = join(dir, 'tresor-policy.json');
  await writeFile(caFile, ca.cert.toString('pem'));
  await writeFile(
    policyFile,
    JSON.stringify(policyEdit === undefined ? gateway.policy : policyEdit(gateway.policy)),
  );
  return { gateway, server, dir, caFile, policyFile, caPem: ca.cert.toString('pem') };
}

async function cli(args: string[], env: Record<string, string> = {}) {
  const io = captureIo(env, new Date());
  const code = await run(args, io);
  // Commands that report a failed verification set process.exitCode (1) rather than throwing.
  const exit = code === 0 && process.exitCode === 1 ? 1 : code;
  process.exitCode = undefined;
  return { code: exit, out: io.out(), err: io.err() };
}

describe('tresor verify', () => {
  it('prints the checklist with INSECURE on its first line and exits 0', async () => {
    const s = await stack();
    const r = await cli(['verify', s.server.url, '--policy', s.policyFile, '--ca', s.caFile]);
    expect(r.code).toBe(0);
    expect(r.out.split('\n')[0]).toMatch(/^INSECURE \(sample TEE/);
    expect(r.out).toMatch(/\[PASS\] gateway gateway-1: tls_key/);
    expect(r.out).toMatch(/all passed/);
  });

  it('prints the JSON document with --json', async () => {
    const s = await stack();
    const r = await cli(['verify', s.server.url, '--policy', s.policyFile, '--ca', s.caFile, '--json']);
    const doc = JSON.parse(r.out) as { ok: boolean; insecure: boolean; entries: unknown[] };
    expect(doc).toMatchObject({ ok: true, insecure: true, version: 1 });
    expect(doc.entries.length).toBeGreaterThan(20);
  });

  it('exits 1 naming the failed check for a wrong measurement', async () => {
    const s = await stack({ gatewayMeasurement: new Uint8Array(48).fill(7) });
    const r = await cli(['verify', s.server.url, '--policy', s.policyFile, '--ca', s.caFile]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/\[FAIL\] gateway gateway-1: measurement \(MEASUREMENT_NOT_ALLOWED\)/);
    expect(r.out).toMatch(/NOT VERIFIED/);
  });

  it('exits 2 with TRUST_POLICY_INVALID for a policy with an unknown member, and for a missing file', async () => {
    const s = await stack({}, (p) => ({ ...p, allowSampleTees: true }));
    const r = await cli(['verify', s.server.url, '--policy', s.policyFile, '--ca', s.caFile]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/TRUST_POLICY_INVALID/);
    expect(r.err).toMatch(/allowSampleTees/);
    const missing = await cli(['verify', s.server.url, '--policy', join(s.dir, 'nope.json')]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/INPUT_UNREADABLE/);
  });

  it('exits 1 with GATEWAY_UNREACHABLE when the TLS certificate is not trusted (no --ca)', async () => {
    const s = await stack();
    const r = await cli(['verify', s.server.url, '--policy', s.policyFile]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/GATEWAY_UNREACHABLE/);
  });
});

describe('tresor chat', () => {
  it('streams a one-shot answer to stdout', async () => {
    const s = await stack();
    const r = await cli(
      ['chat', s.server.url, '--model', MODEL_ID, '--policy', s.policyFile, '--ca', s.caFile, 'hello'],
      { TRESOR_API_KEY: 'tr-key' },
    );
    expect(r.code).toBe(0);
    expect(r.out).toBe('Grüezi from the enclave\n');
    expect(r.err).toMatch(/INSECURE/);
    expect(s.gateway.innerAuthorizations).toEqual(['Bearer tr-key']);
  });

  it('refuses without an API key, and sends nothing when verification fails', async () => {
    const s = await stack({ machineJurisdiction: 'US' });
    const noKey = await cli([
      'chat',
      s.server.url,
      '--model',
      MODEL_ID,
      '--policy',
      s.policyFile,
      '--ca',
      s.caFile,
      'hi',
    ]);
    expect(noKey.err).toMatch(/API_KEY_MISSING/);
    const r = await cli([
      'chat',
      s.server.url,
      '--model',
      MODEL_ID,
      '--api-key',
      'k',
      '--policy',
      s.policyFile,
      '--ca',
      s.caFile,
      'hi',
    ]);
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/RESIDENCY_VIOLATION/);
    expect(r.err).toMatch(/residency/);
    expect(s.gateway.calls).not.toContain('/v1/ohttp');
  });
});

describe('tresor proxy', () => {
  async function proxied(
    options: SampleGatewayOptions = {},
  ): Promise<{ proxy: RunningProxy; s: Awaited<ReturnType<typeof stack>> }> {
    const s = await stack(options);
    const { readFile } = await import('node:fs/promises');
    const proxy = await startProxy({
      upstream: s.server.url,
      listen: '127.0.0.1:0',
      reverifySeconds: 3600,
      policy: JSON.parse(await readFile(s.policyFile, 'utf8')) as unknown,
      ...createNodeTransport({ ca: await readFile(s.caFile, 'utf8') }),
    });
    cleanups.push(() => proxy.close());
    return { proxy, s };
  }

  it('serves the unmodified openai client, streaming and not, forwarding its Authorization inside the encryption', async () => {
    const { proxy, s } = await proxied();
    const openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'tr-proxy-key', maxRetries: 0 });
    const completion = await openai.chat.completions.create({
      model: MODEL_ID,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(completion.choices[0]?.message.content).toBe('Grüezi from the enclave');
    const stream = await openai.chat.completions.create({
      model: MODEL_ID,
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('Grüezi from the enclave');
    expect(s.gateway.innerAuthorizations).toEqual(['Bearer tr-proxy-key', 'Bearer tr-proxy-key']);
  });

  it('answers an OpenAI-shaped error and forwards nothing once re-verification fails', async () => {
    let replay = false;
    const { proxy, s } = await proxied({
      runtimeData: (rd) => {
        if (replay) rd.nonce = '00'.repeat(32);
      },
    });
    replay = true;
    await proxy.reverify();
    const before = s.gateway.calls.filter((c) => c === '/v1/ohttp').length;
    const response = await fetch(`${proxy.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer k' },
      body: JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user', content: 'secret' }] }),
    });
    expect(response.status).toBe(502);
    const body = (await response.json()) as { error: { code: string; message: string; type: string } };
    expect(body.error.code).toBe('EVIDENCE_STALE');
    expect(body.error.message).toMatch(/nonce/);
    expect(s.gateway.calls.filter((c) => c === '/v1/ohttp').length).toBe(before);
    // The OpenAI client sees an API error, not a hang.
    const openai = new OpenAI({ baseURL: `${proxy.url}/v1`, apiKey: 'k', maxRetries: 0 });
    await expect(openai.models.list()).rejects.toMatchObject({ status: 502 });
  });

  it('refuses a non-loopback listen address without --allow-remote (exit 2)', async () => {
    const r = await cli(['proxy', '--upstream', 'https://gateway.example', '--listen', '0.0.0.0:8080']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/PROXY_BIND_REFUSED/);
  });
});

describe('tresor verify-receipt', () => {
  it('re-checks a saved receipt against the bundle, and refuses a tampered one', async () => {
    const s = await stack();
    const transport = createNodeTransport({ ca: s.caPem });
    const { readFile } = await import('node:fs/promises');
    const client = await connect(s.server.url, {
      policy: JSON.parse(await readFile(s.policyFile, 'utf8')) as unknown,
      ...transport,
    });
    await client.fetch(`${client.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      body: JSON.stringify({ model: MODEL_ID, messages: [] }),
    });
    const receipt = client.lastReceipt;
    expect(receipt).toBeDefined();
    const receiptFile = join(s.dir, 'receipt.json');
    const bundleFile = join(s.dir, 'bundle.json');
    await writeFile(receiptFile, JSON.stringify(receipt));
    await writeFile(bundleFile, JSON.stringify(s.gateway.lastBundle()));
    const ok = await cli(['verify-receipt', receiptFile, '--bundle', bundleFile]);
    expect(ok.code).toBe(0);
    expect(ok.out).toMatch(/receipt verified against the bundle/);
    const [h, p, sig] = receipt!.jws.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString()) as Record<string, unknown>;
    claims.responseSha256 = '00'.repeat(32);
    await writeFile(receiptFile, `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}`);
    const bad = await cli(['verify-receipt', receiptFile, '--bundle', bundleFile]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/RECEIPT_INVALID/);
  });
});
