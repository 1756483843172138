import { readFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { resolve } from 'node:path';
import { TresorError } from '@tresor/protocol';
import type { CliIo } from '../io.js';

/** A Tresor service the CLI talks to, and the CA its TLS certificate chains to (system roots when none). */
export interface HttpsEndpoint {
  readonly url: URL;
  readonly ca?: string;
}

/** Where a service's `--url` and `--ca` come from when the flags are not given. */
export interface EndpointSource {
  /** The service as the messages name it: `the gateway`, `the trust service`. */
  readonly name: string;
  readonly urlEnv: string;
  readonly caEnv: string;
}

/**
 * The endpoint from `--url`/`--ca`, else from the source's environment variables: an https URL
 * (USAGE_INVALID otherwise) and, when named, the CA file read relative to the working directory
 * (INPUT_UNREADABLE when it cannot be read).
 */
export async function httpsEndpoint(
  io: CliIo,
  flags: { readonly url?: string; readonly ca?: string },
  source: EndpointSource,
): Promise<HttpsEndpoint> {
  const text = flags.url ?? io.env[source.urlEnv];
  if (text === undefined || text === '') {
    throw new TresorError('USAGE_INVALID', `name ${source.name} with --url https://… or ${source.urlEnv}`);
  }
  let url: URL;
  try {
    url = new URL(text);
  } catch (cause) {
    throw new TresorError('USAGE_INVALID', `--url ${text} is not a URL`, { cause });
  }
  if (url.protocol !== 'https:')
    throw new TresorError('USAGE_INVALID', `${source.name} is reached over https only`);
  const caFile = flags.ca ?? io.env[source.caEnv];
  if (caFile === undefined || caFile === '') return { url };
  try {
    return { url, ca: await readFile(resolve(io.cwd, caFile), 'utf8') };
  } catch (cause) {
    throw new TresorError('INPUT_UNREADABLE', `cannot read the CA certificate ${caFile}`, { cause });
  }
}

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
