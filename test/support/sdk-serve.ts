/** Serves a fetch-style handler (Request → Response) over node:http or node:https, on loopback. */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createHash, X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';

export interface ServedHandler {
  readonly url: string;
  close(): Promise<void>;
}

/** SHA-256 (hex) of a PEM certificate's SubjectPublicKeyInfo, as runtimeData.tlsSpkiSha256 states it. */
export function spkiSha256OfPem(pem: string): string {
  const der = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('hex');
}

export async function serveHandler(
  handle: (request: Request) => Promise<Response>,
  tls?: { cert: string; key: string },
): Promise<ServedHandler> {
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    void (async () => {
      const origin = `${tls === undefined ? 'http' : 'https'}://${req.headers.host ?? 'localhost'}`;
      const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
      const request = new Request(new URL(req.url ?? '/', origin), {
        method: req.method ?? 'GET',
        headers: Object.entries(req.headers).flatMap(([n, v]) => (typeof v === 'string' ? [[n, v]] : [])),
        ...(hasBody ? { body: Readable.toWeb(req) as ReadableStream, duplex: 'half' } : {}),
      } as RequestInit & { duplex?: string });
      const response = await handle(request);
      res.writeHead(response.status, Object.fromEntries(response.headers));
      if (response.body === null) {
        res.end();
        return;
      }
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk);
      res.end();
    })().catch(() => {
      res.destroy();
    });
  };
  const server: Server = tls === undefined ? createHttpServer(listener) : createHttpsServer(tls, listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls === undefined ? 'http' : 'https'}://localhost:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}
