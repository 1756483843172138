import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { createSampleGateway, MODEL_ID } from '../../../../test/support/sdk-sample-gateway.js';
import { serveHandler, spkiSha256OfPem, type ServedHandler } from '../../../../test/support/sdk-serve.js';
import { createTestCa, issueTestCertificate } from '../../../../test/support/test-pki.js';
import { connect } from '../index.js';
import { createNodeTransport } from './index.js';

const servers: ServedHandler[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function tlsGateway(attestedCertOf: 'served' | 'other') {
  const ca = await createTestCa('tresor-sdk-test-ca');
  const served = await issueTestCertificate(ca, 'localhost', 'server', '02');
  const other = await issueTestCertificate(ca, 'localhost', 'server', '03');
  const attested = attestedCertOf === 'served' ? served : other;
  const gateway = await createSampleGateway({ tlsSpkiSha256: spkiSha256OfPem(attested.cert) });
  const server = await serveHandler(gateway.handle, served);
  servers.push(server);
  return { gateway, server, ca: ca.cert.toString('pem') };
}

describe('Node transport: TLS key binding over a real TLS connection', () => {
  it('binds the gateway TLS key to the attested one and completes a chat through openai', async () => {
    const { gateway, server, ca } = await tlsGateway('served');
    const transport = createNodeTransport({ ca });
    const client = await connect(server.url, { policy: gateway.policy, ...transport });
    const tls = client.document.entries.find((e) => e.component === 'gateway' && e.check === 'tls_key');
    expect(tls?.status).toBe('pass');
    const openai = new OpenAI({
      baseURL: `${server.url}/v1`,
      apiKey: 'k',
      fetch: client.fetch,
      maxRetries: 0,
    });
    const stream = await openai.chat.completions.create({
      model: MODEL_ID,
      messages: [{ role: 'user', content: 'hi' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('Grüezi from the enclave');
  });

  it('refuses a man in the middle whose certificate is not the attested one, sending nothing', async () => {
    const { gateway, server, ca } = await tlsGateway('other');
    const err = await connect(server.url, { policy: gateway.policy, ...createNodeTransport({ ca }) }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as TresorError).code).toBe('TLS_KEY_MISMATCH');
    expect((err as TresorError).message).toContain('tls_key');
    expect(gateway.calls).not.toContain('/v1/ohttp');
  });

  it('refuses an untrusted certificate (no --ca) with GATEWAY_UNREACHABLE', async () => {
    const { gateway, server } = await tlsGateway('served');
    const err = await connect(server.url, { policy: gateway.policy, ...createNodeTransport() }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as TresorError).code).toBe('GATEWAY_UNREACHABLE');
  });

  it('refuses, before writing the body, a later connection presenting another key than the pinned one', async () => {
    const { gateway, server, ca } = await tlsGateway('served');
    const transport = createNodeTransport({ ca });
    await connect(server.url, { policy: gateway.policy, ...transport });
    transport.tls.pin(new URL(server.url).origin, 'ab'.repeat(32));
    const err = await transport.fetch(`${server.url}/v1/ohttp`, { method: 'POST', body: 'secret' }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((err as TresorError).code).toBe('TLS_KEY_MISMATCH');
    expect(gateway.calls).not.toContain('/v1/ohttp');
  });
});
