import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createTestCa, issueTestCertificate } from '../../../../test/support/test-pki.js';
import { MeshClient, transportFailureOf } from './mesh-client.js';

/**
 * The mesh client's timeout on kept-alive connections. A replica answers with
 * `Keep-Alive: timeout=N`; Node's agent then gives the idle socket a timeout of N − 1 s and, in
 * Node 20, keeps it when the socket is reused for a request whose timeout equals the agent's. A
 * queued request whose answer starts later than that used to fail as a `timeout` and eject a
 * healthy replica.
 */

let server: Server | undefined;
let client: MeshClient | undefined;

afterEach(async () => {
  client?.close();
  client = undefined;
  const s = server;
  server = undefined;
  if (s !== undefined) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

async function replica(
  delays: number[],
  seen: { url: string | undefined; host: string | undefined }[] = [],
): Promise<{ url: string; tls: { ca: string; cert: string; key: string } }> {
  const ca = await createTestCa('mesh');
  const serverTls = await issueTestCertificate(ca, 'localhost', 'server', '10');
  const clientTls = await issueTestCertificate(ca, 'gateway', 'client', '11');
  const caPem = ca.cert.toString('pem');
  let n = 0;
  server = createServer(
    { cert: serverTls.cert, key: serverTls.key, ca: caPem, requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      seen.push({ url: req.url, host: req.headers.host });
      const delay = delays[n++] ?? 0;
      setTimeout(() => res.end('ok'), delay);
    },
  );
  server.keepAliveTimeout = 2_000; // the hint: Keep-Alive: timeout=2, so the agent's idle timeout is 1 s
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `https://127.0.0.1:${String(port)}/`,
    tls: { ca: caPem, cert: clientTls.cert, key: clientTls.key },
  };
}

async function text(response: Awaited<ReturnType<MeshClient['send']>>): Promise<string> {
  let body = '';
  for await (const chunk of response.body) body += String(chunk);
  return body;
}

describe('MeshClient on a kept-alive connection', () => {
  it('waits for an answer slower than the keep-alive hint on a reused connection', async () => {
    const { url, tls } = await replica([0, 1_500]);
    client = new MeshClient(url, tls, 30_000);
    const first = await client.send('GET', '/first');
    expect(await text(first)).toBe('ok');
    // Same connection, an answer that starts 1.5 s later: longer than the 1 s idle timeout the
    // hint gave the socket, far shorter than the client's 30 s.
    const second = await client.send('GET', '/second');
    expect(await text(second)).toBe('ok');
    expect(second.peerSpkiSha256).toBe(first.peerSpkiSha256);
  });

  it('still times out an answer slower than its own timeout, as `timeout`', async () => {
    const { url, tls } = await replica([0, 5_000]);
    client = new MeshClient(url, tls, 400);
    await text(await client.send('GET', '/first'));
    const failure = await client.send('GET', '/second').then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(transportFailureOf(failure)).toBe('timeout');
  });
});

describe('MeshClient request targets', () => {
  it('sends absolute paths as they are, and keeps any other target on the replica', async () => {
    const seen: { url: string | undefined; host: string | undefined }[] = [];
    const { url, tls } = await replica([], seen);
    client = new MeshClient(url, tls, 5_000);
    for (const path of [
      '/v1/ohttp',
      '/attestation?nonce=abc_-1',
      'relative/path?q=1',
      '//elsewhere.example/x',
      'https://elsewhere.example/y?z=2',
    ]) {
      expect(await text(await client.send('GET', path))).toBe('ok');
    }
    const host = new URL(url).host;
    expect(seen).toEqual([
      { url: '/v1/ohttp', host },
      { url: '/attestation?nonce=abc_-1', host },
      { url: '/relative/path?q=1', host },
      { url: '/x', host },
      { url: '/y?z=2', host },
    ]);
  });
});
