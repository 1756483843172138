import { Readable } from 'node:stream';
import { TresorError, isErrorCode, isTresorError } from '@tresor/protocol';
import {
  createChunkedOhttpClient,
  encodeBhttpRequest,
  OHTTP_CHUNKED_REQUEST_MEDIA_TYPE,
  type BhttpRequest,
} from '@tresor/crypto';
import { nodeOhttpAead } from '@tresor/crypto/node';
import { readBody } from '../replicas/mesh-client.js';
import type { Replica, ReplicaPool } from '../replicas/replica-pool.js';
import type { VerifiedReplica } from '../replicas/replica-verifier.js';
import { BhttpResponseReader, type BhttpResponseEvent } from './bhttp-stream.js';

/** Codes a replica may refuse with that say nothing bad about the replica itself. */
const CLIENT_SIDE = new Set([
  'MODEL_NOT_FOUND',
  'API_REQUEST_INVALID',
  'SERVING_BUSY',
  'REQUEST_BODY_TOO_LARGE',
]);

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of stream as unknown as AsyncIterable<Uint8Array>) parts.push(part);
  return new Uint8Array(Buffer.concat(parts));
}

/**
 * Sends one inner request to an attested replica: re-encapsulated (chunked OHTTP) to the HPKE key
 * its evidence binds, over mTLS to the certificate its evidence binds, and yields its Binary HTTP
 * response as events, each content chunk as soon as it authenticated. A replica that answers
 * something it should not (another TLS key, a broken stream) is taken out of rotation and the
 * caller gets UPSTREAM_FAILED.
 */
export async function* exchangeWithReplica(
  pool: ReplicaPool,
  replica: Replica & { verified: VerifiedReplica },
  request: BhttpRequest,
): AsyncGenerator<BhttpResponseEvent> {
  const attested = replica.verified;
  // Synchronous AES-GCM for the replica's response chunks: one open per SSE event (bench/streaming.ts).
  const client = await createChunkedOhttpClient(attested.hpkeKeyConfig, { aead: nodeOhttpAead });
  const writer = client.requestEncapsulator.writable.getWriter();
  const sealedPromise = collect(client.requestEncapsulator.readable);
  await writer.write(encodeBhttpRequest(request));
  await writer.close();
  const sealed = await sealedPromise;

  replica.outstanding++;
  try {
    let answer;
    try {
      answer = await replica.client.send('POST', '/v1/ohttp', {
        contentType: OHTTP_CHUNKED_REQUEST_MEDIA_TYPE,
        bytes: sealed,
      });
    } catch (err) {
      // Unreachable (gone, refused, no answer): out of rotation until it attests again. Nothing
      // was answered, so the caller may send the request to another replica.
      pool.fail(replica, 'UPSTREAM_FAILED');
      throw new TresorError('UPSTREAM_FAILED', 'the serving replica did not answer', {
        cause: err,
        details: { unanswered: true },
      });
    }
    if (answer.peerSpkiSha256 !== attested.tlsSpkiSha256) {
      answer.body.destroy();
      pool.fail(replica, 'TLS_KEY_MISMATCH');
      throw new TresorError(
        'UPSTREAM_FAILED',
        'the serving replica answered with a TLS key its evidence does not bind',
      );
    }
    if (answer.status !== 200) {
      const text = Buffer.from(await readBody(answer.body, 64 * 1024)).toString('utf8');
      // Serving refuses outside the sealed channel in OpenAI's shape, {"error": {"code"}} (a bare
      // {"code"} is read too).
      let code: unknown;
      try {
        const json = JSON.parse(text) as { code?: unknown; error?: { code?: unknown } };
        code = json.error?.code ?? json.code;
      } catch {
        code = undefined;
      }
      if (isErrorCode(code) && CLIENT_SIDE.has(code)) throw new TresorError(code);
      if (answer.status >= 500 && answer.status !== 503) pool.fail(replica, 'UPSTREAM_FAILED');
      throw new TresorError(
        'UPSTREAM_FAILED',
        `the serving replica refused the request (HTTP ${answer.status})`,
      );
    }
    const body = Readable.toWeb(answer.body) as unknown as ReadableStream<Uint8Array>;
    const plaintext = body.pipeThrough(client.responseDecapsulator);
    const reader = new BhttpResponseReader();
    try {
      for await (const piece of plaintext as unknown as AsyncIterable<Uint8Array>) {
        for (const event of reader.push(piece)) yield event;
      }
      for (const event of reader.finish()) yield event;
    } catch (err) {
      answer.body.destroy();
      pool.fail(replica, isTresorError(err) ? err.code : 'UPSTREAM_FAILED');
      throw new TresorError(
        'UPSTREAM_FAILED',
        'the serving replica failed while answering; the answer is incomplete',
        {
          cause: err,
        },
      );
    }
  } finally {
    replica.outstanding--;
  }
}
