import { request as httpsRequest } from 'node:https';
import type { TresorError } from '@tresor/protocol';

/** What a Tresor service answered: status, media type and body text. */
export interface HttpsAnswer {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
}

export interface HttpsExchangeOptions {
  readonly method: 'GET' | 'POST';
  /** Extra CA certificate (PEM) the service's TLS certificate chains to; system roots otherwise. */
  readonly ca: string | undefined;
  readonly accept: string;
  readonly body?: { readonly contentType: string; readonly text: string };
  /** Answers larger than this are refused as unreachable. */
  readonly maxAnswerBytes: number;
  readonly timeoutMs: number;
  /** The catalogue error for "no usable answer" (names the service). */
  readonly unreachable: (cause: unknown) => TresorError;
}

/**
 * One HTTPS exchange with a Tresor service from the CLI (TLS 1.3 only, like every Tresor listener):
 * the body is read up to a bound, and every network failure, timeout or oversized answer becomes
 * the caller's "unreachable" error.
 */
export function httpsExchange(target: URL, options: HttpsExchangeOptions): Promise<HttpsAnswer> {
  const { body } = options;
  return new Promise((resolvePromise, reject) => {
    const unreachable = (cause: unknown): void => {
      reject(options.unreachable(cause));
    };
    const request = httpsRequest(
      target,
      {
        method: options.method,
        minVersion: 'TLSv1.3',
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        timeout: options.timeoutMs,
        headers: {
          accept: options.accept,
          ...(body === undefined
            ? {}
            : { 'content-type': body.contentType, 'content-length': Buffer.byteLength(body.text) }),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxAnswerBytes) {
            response.destroy();
            unreachable(new Error(`the answer is larger than ${options.maxAnswerBytes} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        response.on('end', () => {
          resolvePromise({
            status: response.statusCode ?? 0,
            contentType: response.headers['content-type'] ?? '',
            text: Buffer.concat(chunks).toString('utf8'),
          });
        });
        response.on('error', unreachable);
      },
    );
    request.on('timeout', () => {
      request.destroy(new Error(`no answer within ${options.timeoutMs / 1000} s`));
    });
    request.on('error', unreachable);
    request.end(body?.text);
  });
}
