import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
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

describe('Node transport: broken connections are GATEWAY_UNREACHABLE', () => {
  const opened: Server[] = [];
  afterEach(async () => {
    await Promise.all(
      opened.splice(0).map(
        (s) =>
          new Promise<void>((resolve) => {
            s.closeAllConnections();
            s.close(() => {
              resolve();
            });
          }),
      ),
    );
  });

  /** A plain HTTP server on loopback answering with `handler`; resolves with its URL. */
  async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
    const server = createServer(handler);
    opened.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  const failure = (promise: Promise<unknown>): Promise<unknown> =>
    promise.then(
      () => null,
      (e: unknown) => e,
    );

  /** Sends the head and part of a chunked body, then drops the connection (the gateway killed mid-answer). */
  const diesMidAnswer = (req: IncomingMessage, res: ServerResponse): void => {
    req.resume();
    res.writeHead(200, { 'content-type': 'message/ohttp-chunked-res' });
    res.write('first part of the answer', () => {
      setImmediate(() => res.socket?.destroy());
    });
  };

  it.each(['POST', 'GET'])(
    '%s: a connection dropped mid-answer errors the body: the answer is incomplete',
    async (method) => {
      const url = await serve(diesMidAnswer);
      const response = await createNodeTransport().fetch(`${url}/v1/ohttp`, {
        method,
        ...(method === 'POST' ? { body: 'sealed' } : {}),
      });
      expect(response.status).toBe(200);
      const err = await failure(response.text());
      expect(err).toBeInstanceOf(TresorError);
      expect((err as TresorError).code).toBe('GATEWAY_UNREACHABLE');
      expect((err as TresorError).message).toMatch(/the answer is incomplete/);
      expect((err as TresorError).message).toMatch(/aborted|ECONNRESET/);
    },
  );

  it('a connection dropped before any answer (socket hang up) says there is no answer', async () => {
    const url = await serve((req) => {
      req.socket.destroy();
    });
    const err = await failure(createNodeTransport().fetch(`${url}/v1/ohttp`, { method: 'POST', body: 'x' }));
    expect((err as TresorError).code).toBe('GATEWAY_UNREACHABLE');
    expect((err as TresorError).message).toMatch(/before an answer arrived \((ECONNRESET|socket hang up)/);
    expect((err as TresorError).message).toMatch(/there is no answer/);
  });

  it('a refused connection (ECONNREFUSED) says there is no answer', async () => {
    const url = await serve(() => undefined);
    const server = opened.pop()!;
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
    const err = await failure(createNodeTransport().fetch(`${url}/v1/ohttp`, { method: 'POST', body: 'x' }));
    expect((err as TresorError).code).toBe('GATEWAY_UNREACHABLE');
    expect((err as TresorError).message).toContain('ECONNREFUSED');
  });

  it('a complete answer reads as usual, and the caller’s own abort stays an AbortError', async () => {
    const url = await serve((req, res) => {
      req.resume();
      res.end('whole answer');
    });
    const transport = createNodeTransport();
    expect(await (await transport.fetch(`${url}/x`)).text()).toBe('whole answer');
    const abort = new AbortController();
    abort.abort();
    const err = await failure(transport.fetch(`${url}/x`, { signal: abort.signal }));
    expect(err).not.toBeInstanceOf(TresorError);
    expect((err as Error).name).toBe('AbortError');
  });

  it('the caller’s abort mid-answer stays an AbortError', async () => {
    let release: (() => void) | undefined;
    const url = await serve((req, res) => {
      req.resume();
      res.writeHead(200);
      res.write('part');
      release = () => res.end();
    });
    const abort = new AbortController();
    const response = await createNodeTransport().fetch(`${url}/x`, { signal: abort.signal });
    const reader = response.body!.getReader();
    await reader.read();
    abort.abort();
    const err = await failure(reader.read());
    expect(err).not.toBeInstanceOf(TresorError);
    expect((err as Error).name).toBe('AbortError');
    release?.();
  });
});

describe('Node transport: SHA-256 of the bodies receipts cover', () => {
  const webCryptoHex = async (bytes: Uint8Array): Promise<string> =>
    Buffer.from(await crypto.subtle.digest('SHA-256', new Uint8Array(bytes))).toString('hex');

  it('gives the FIPS 180-2 digests', () => {
    const { sha256Hex } = createNodeTransport();
    expect(sha256Hex(new Uint8Array(0))).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
    expect(sha256Hex(new TextEncoder().encode('abc'))).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('equals the WebCrypto digest the client uses by default, on any bytes', async () => {
    const { sha256Hex } = createNodeTransport();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 2048 }), async (bytes) => {
        expect(sha256Hex(bytes)).toBe(await webCryptoHex(bytes));
      }),
      { numRuns: 50 },
    );
  });

  it('tells apart inputs that differ in one bit, or in length by a zero byte', () => {
    const { sha256Hex } = createNodeTransport();
    const a = new TextEncoder().encode('{"model":"m"}');
    const b = a.slice();
    b[0] = b[0]! ^ 1;
    expect(sha256Hex(a)).not.toBe(sha256Hex(b));
    expect(sha256Hex(a)).not.toBe(sha256Hex(new Uint8Array([...a, 0])));
  });
});
