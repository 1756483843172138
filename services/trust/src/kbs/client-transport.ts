import { Agent, request as httpsRequest } from 'node:https';
import { TresorError } from '@tresor/protocol';

export interface TransportResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  readonly body: Uint8Array;
}

/** How the KBS client reaches the trust service; injectable for tests and other stacks. */
export interface KbsTransport {
  request(
    method: 'GET' | 'POST',
    path: string,
    headers: Readonly<Record<string, string>>,
    body?: Uint8Array,
  ): Promise<TransportResponse>;
  close(): void;
}

export interface HttpsTransportOptions {
  /** CA certificates (PEM) the trust service's certificate chains to; the system store when omitted. */
  readonly ca?: string;
  /** A client certificate and key (PEM) for mutual TLS. */
  readonly cert?: string;
  readonly key?: string;
  readonly timeoutMs?: number;
}

/** KBS answers are a challenge, a token or a JWE of a small secret: a few KiB. */
const MAX_RESPONSE_BYTES = 1024 * 1024;

/** HTTPS with TLS 1.3 only, keep-alive. */
export function httpsTransport(baseUrl: string, options: HttpsTransportOptions = {}): KbsTransport {
  const base = new URL(baseUrl);
  if (base.protocol !== 'https:') throw new TresorError('USAGE_INVALID', 'the KBS URL must be https://');
  const agent = new Agent({
    keepAlive: true,
    minVersion: 'TLSv1.3',
    ...(options.ca === undefined ? {} : { ca: options.ca }),
    ...(options.cert === undefined ? {} : { cert: options.cert }),
    ...(options.key === undefined ? {} : { key: options.key }),
  });
  return {
    request(method, path, headers, body) {
      return new Promise<TransportResponse>((resolve, reject) => {
        const url = new URL(path, base);
        const req = httpsRequest(
          url,
          {
            method,
            agent,
            timeout: options.timeoutMs ?? 30_000,
            headers: { ...headers, ...(body === undefined ? {} : { 'content-length': String(body.length) }) },
          },
          (res) => {
            const chunks: Buffer[] = [];
            let size = 0;
            res.on('data', (chunk: Buffer) => {
              size += chunk.length;
              if (size > MAX_RESPONSE_BYTES) {
                res.destroy(new Error('response too large'));
                return;
              }
              chunks.push(chunk);
            });
            res.on('error', (cause) => {
              reject(
                new TresorError('TRUST_SERVICE_UNREACHABLE', 'the KBS answer could not be read', { cause }),
              );
            });
            res.on('end', () => {
              resolve({
                status: res.statusCode ?? 0,
                headers: res.headers,
                body: new Uint8Array(Buffer.concat(chunks)),
              });
            });
          },
        );
        req.on('timeout', () => req.destroy(new Error('timed out')));
        req.on('error', (cause) => {
          reject(
            new TresorError('TRUST_SERVICE_UNREACHABLE', `the KBS at ${base.origin} could not be reached`, {
              cause,
            }),
          );
        });
        req.end(body);
      });
    },
    close() {
      agent.destroy();
    },
  };
}
