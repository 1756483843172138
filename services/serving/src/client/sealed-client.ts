import { request as httpsRequest } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { checkServerIdentity, type PeerCertificate } from 'node:tls';
import {
  base64ToBytes,
  concatBytes,
  createChunkedOhttpClient,
  decodeBhttpResponse,
  decodeKeyConfig,
  encapsulateRequest,
  encodeBhttpRequest,
  OHTTP_CHUNKED_REQUEST_MEDIA_TYPE,
  OHTTP_REQUEST_MEDIA_TYPE,
  type BhttpField,
  type OhttpKeyConfig,
} from '@tresor/crypto';
import { nodeOhttpAead } from '@tresor/crypto/node';
import { TresorError } from '@tresor/protocol';
import { OHTTP_PATH } from '../request/ohttp-route.js';
import { StreamingBhttpResponseReader } from '../request/streaming-bhttp.js';

/**
 * The caller's side of the sealed request path (what the gateway does for every request, and
 * what tests and bench/serving.ts use): seal one OpenAI-style request to a replica's attested
 * HPKE key, POST it over mutual TLS, open the answer chunk by chunk.
 */
export interface SealedExchangeOptions {
  /** The replica's base URL (https). */
  readonly url: string;
  /** The replica's key configuration (runtimeData.hpkeKeyConfig, base64url) or decoded. */
  readonly keyConfig: OhttpKeyConfig | string;
  readonly method: 'GET' | 'POST';
  /** Inner path, e.g. `/v1/chat/completions`. */
  readonly path: string;
  /** Inner JSON body. */
  readonly body?: unknown;
  /** CA of the replica's certificate, and the client certificate and key (mutual TLS). */
  readonly tls: { readonly ca: string; readonly cert?: string; readonly key?: string };
  /** The SPIFFE ID the replica's certificate must name; DNS name checking when omitted. */
  readonly serverSpiffeId?: string;
  /** `message/ohttp-chunked-req` (default) or single-shot `message/ohttp-req`. */
  readonly chunked?: boolean;
  readonly signal?: AbortSignal;
  /** Each content chunk of a streamed answer (one SSE event), as soon as it opened. */
  readonly onContent?: (bytes: Uint8Array) => void;
}

export interface SealedResponse {
  /** Status of the outer HTTP response (200 unless serving refused before decapsulating). */
  readonly outerStatus: number;
  readonly outerHeaders: Readonly<Record<string, string | string[] | undefined>>;
  /** Inner status, headers and content (for an outer refusal: the outer body). */
  readonly status: number;
  readonly headers: readonly BhttpField[];
  readonly body: Uint8Array;
  /** Content chunks of a streamed answer, in arrival order. */
  readonly chunks: readonly Uint8Array[];
}

function spiffeIdentityCheck(expected: string) {
  return (_host: string, certificate: PeerCertificate): Error | undefined => {
    const uris = (certificate.subjectaltname ?? '').split(/,\s*/).filter((e) => e.startsWith('URI:'));
    return uris.includes(`URI:${expected}`)
      ? undefined
      : new Error(`the server certificate does not name ${expected}`);
  };
}

function post(
  options: SealedExchangeOptions,
  contentType: string,
  body: Uint8Array,
): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      new URL(OHTTP_PATH, options.url),
      {
        method: 'POST',
        minVersion: 'TLSv1.3',
        ca: options.tls.ca,
        ...(options.tls.cert === undefined ? {} : { cert: options.tls.cert }),
        ...(options.tls.key === undefined ? {} : { key: options.tls.key }),
        checkServerIdentity:
          options.serverSpiffeId === undefined
            ? checkServerIdentity
            : spiffeIdentityCheck(options.serverSpiffeId),
        headers: { 'content-type': contentType, 'content-length': String(body.length) },
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        agent: false,
      },
      resolve,
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function readBody(response: IncomingMessage): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of response) parts.push(part as Uint8Array);
  return concatBytes(...parts);
}

export async function sendSealedRequest(options: SealedExchangeOptions): Promise<SealedResponse> {
  const config =
    typeof options.keyConfig === 'string'
      ? decodeKeyConfig(base64ToBytes(options.keyConfig))
      : options.keyConfig;
  const content =
    options.body === undefined ? new Uint8Array(0) : new TextEncoder().encode(JSON.stringify(options.body));
  const bhttp = encodeBhttpRequest({
    method: options.method,
    scheme: 'https',
    authority: 'serving.tresor.internal',
    path: options.path,
    headers: options.body === undefined ? [] : [['content-type', 'application/json']],
    content,
    trailers: [],
  });
  if (options.chunked === false) {
    const { encapsulatedRequest, context } = await encapsulateRequest(config, bhttp, { aead: nodeOhttpAead });
    const response = await post(options, OHTTP_REQUEST_MEDIA_TYPE, encapsulatedRequest);
    const body = await readBody(response);
    if (response.statusCode !== 200) return outerRefusal(response, body);
    const { message } = decodeBhttpResponse(await context.decapsulateResponse(body));
    return {
      outerStatus: 200,
      outerHeaders: response.headers,
      status: message.status,
      headers: message.headers,
      body: message.content,
      chunks: [],
    };
  }
  const client = await createChunkedOhttpClient(config, { aead: nodeOhttpAead });
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(bhttp);
      controller.close();
    },
  });
  const sealed = await readStream(source.pipeThrough(client.requestEncapsulator));
  const response = await post(options, OHTTP_CHUNKED_REQUEST_MEDIA_TYPE, sealed);
  if (response.statusCode !== 200) return outerRefusal(response, await readBody(response));
  const writer = client.responseDecapsulator.writable.getWriter();
  const reader = client.responseDecapsulator.readable.getReader();
  const pump = (async () => {
    try {
      for await (const part of response) await writer.write(part as Uint8Array);
      await writer.close();
    } catch (err) {
      await writer.abort(err).catch(() => undefined);
    }
  })();
  const plaintext: Uint8Array[] = [];
  const chunks: Uint8Array[] = [];
  let streaming: StreamingBhttpResponseReader | undefined;
  let head: { status: number; headers: readonly BhttpField[] } | undefined;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (streaming === undefined && plaintext.length === 0 && value[0] === 3)
      streaming = new StreamingBhttpResponseReader();
    if (streaming === undefined) {
      plaintext.push(value);
      continue;
    }
    for (const part of streaming.push(value)) {
      if (part.type === 'head') head = part;
      else if (part.type === 'content') {
        chunks.push(part.bytes);
        options.onContent?.(part.bytes);
      }
    }
  }
  await pump;
  if (streaming !== undefined) {
    if (head === undefined || !streaming.done) {
      throw new TresorError('OHTTP_STREAM_TRUNCATED', 'the streamed answer ended before its end');
    }
    return {
      outerStatus: 200,
      outerHeaders: response.headers,
      status: head.status,
      headers: head.headers,
      body: concatBytes(...chunks),
      chunks,
    };
  }
  const { message } = decodeBhttpResponse(concatBytes(...plaintext));
  return {
    outerStatus: 200,
    outerHeaders: response.headers,
    status: message.status,
    headers: message.headers,
    body: message.content,
    chunks: [],
  };
}

function outerRefusal(response: IncomingMessage, body: Uint8Array): SealedResponse {
  return {
    outerStatus: response.statusCode ?? 0,
    outerHeaders: response.headers,
    status: response.statusCode ?? 0,
    headers: [],
    body,
    chunks: [],
  };
}

async function readStream(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return concatBytes(...parts);
    parts.push(value);
  }
}
