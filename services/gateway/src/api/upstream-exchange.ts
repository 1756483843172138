import type { IncomingMessage } from 'node:http';
import { TresorError, isErrorCode, isTresorError } from '@tresor/protocol';
import {
  encapsulateRequest,
  encodeBhttpRequest,
  OHTTP_CHUNKED_REQUEST_MEDIA_TYPE,
  OHTTP_REQUEST_MEDIA_TYPE,
  type BhttpRequest,
  type OhttpKeyConfig,
} from '@tresor/crypto';
import { nodeOhttpAead } from '@tresor/crypto/node';
import { readBody, systemCodeOf, transportFailureOf } from '../replicas/mesh-client.js';
import type { Replica, ReplicaPool } from '../replicas/replica-pool.js';
import type { VerifiedReplica } from '../replicas/replica-verifier.js';
import { BhttpResponseReader, type BhttpResponseEvent } from './bhttp-stream.js';
import { sealChunkedRequest } from './chunked-relay.js';

/** Codes a replica may refuse with that say nothing bad about the replica itself. */
const CLIENT_SIDE = new Set([
  'MODEL_NOT_FOUND',
  'API_REQUEST_INVALID',
  'SERVING_BUSY',
  'REQUEST_BODY_TOO_LARGE',
]);

/** Seconds of a `Retry-After: <seconds>` header, if it has that form. */
function retryAfterSecondsOf(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined || !/^\d{1,6}$/.test(text.trim())) return undefined;
  return Number(text.trim());
}

/** Largest sealed single-shot answer read from a replica (the Binary HTTP reader's own limit). */
const MAX_SINGLE_ANSWER_BYTES = 64 * 1024 * 1024;

/** One request sealed to the replica's key, and how to open its answer's body into plaintext pieces. */
interface SealedExchange {
  readonly contentType: string;
  readonly bytes: Uint8Array;
  open(body: IncomingMessage): AsyncIterable<Uint8Array>;
}

/**
 * Chunked OHTTP (streams: each sealed event is opened as it arrives), or — for answers the gateway
 * buffers anyway — one `message/ohttp-req`, which spares both sides a web-stream pipeline per request.
 */
async function sealFor(
  keyConfig: OhttpKeyConfig,
  request: BhttpRequest,
  framing: ReplicaFraming,
): Promise<SealedExchange> {
  if (framing === 'single') {
    const bhttp = encodeBhttpRequest(request);
    const { encapsulatedRequest, context } = await encapsulateRequest(keyConfig, bhttp, {
      aead: nodeOhttpAead,
    });
    return {
      contentType: OHTTP_REQUEST_MEDIA_TYPE,
      bytes: encapsulatedRequest,
      async *open(body) {
        yield await context.decapsulateResponse(await readBody(body, MAX_SINGLE_ANSWER_BYTES));
      },
    };
  }
  // Synchronous AES-GCM for the replica's response chunks: one open per SSE event (bench/streaming.ts).
  const sealed = await sealChunkedRequest(keyConfig, encodeBhttpRequest(request), { aead: nodeOhttpAead });
  return {
    contentType: OHTTP_CHUNKED_REQUEST_MEDIA_TYPE,
    bytes: sealed.bytes,
    // Read as it is relayed: the replica's socket is read no faster than the client takes events.
    open: (body) => sealed.open(body),
  };
}

/** How a request travels to a replica: `chunked` OHTTP, or `single` (one sealed message each way). */
export type ReplicaFraming = 'chunked' | 'single';

/**
 * Sends one inner request to an attested replica: re-encapsulated (chunked OHTTP, or single-shot
 * OHTTP with `framing: 'single'`) to the HPKE key its evidence binds, over mTLS to the certificate
 * its evidence binds, and yields its Binary HTTP response as events, each content chunk as soon as it authenticated. Any HTTP answer shows the
 * replica is there (a busy replica's 503 reaches the client as SERVING_BUSY with Retry-After). A
 * replica that answers something it should not (another TLS key, a sealed stream that does not
 * authenticate or parse) is taken out of rotation at once; transport failures go to
 * {@link ReplicaPool.transportFailed}, which decides. The caller gets UPSTREAM_FAILED, with
 * `details.unanswered` when the request never reached the replica (so it may go elsewhere).
 */
export async function* exchangeWithReplica(
  pool: ReplicaPool,
  replica: Replica & { verified: VerifiedReplica },
  request: BhttpRequest,
  framing: ReplicaFraming = 'chunked',
): AsyncGenerator<BhttpResponseEvent> {
  const attested = replica.verified;
  const sealed = await sealFor(attested.hpkeKeyConfig, request, framing);

  replica.outstanding++;
  try {
    let answer;
    try {
      answer = await replica.client.send('POST', '/v1/ohttp', {
        contentType: sealed.contentType,
        bytes: sealed.bytes,
      });
    } catch (err) {
      // Gone or untrusted: out at once; slow: out after a few in a row. Only a request that cannot
      // have reached the replica (refused, failed handshake, stale kept-alive connection) is marked
      // unanswered for the caller to send again; a timed-out one may be running there.
      const transport = transportFailureOf(err) ?? 'broken';
      pool.transportFailed(replica, transport);
      const system = systemCodeOf((err as { cause?: unknown }).cause);
      throw new TresorError('UPSTREAM_FAILED', 'the serving replica did not answer', {
        cause: err,
        details: {
          unanswered: transport === 'gone' || transport === 'untrusted' || transport === 'stale',
          transport,
          ...(system === undefined ? {} : { system }),
        },
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
    pool.answered(replica);
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
      const retryAfterSeconds = retryAfterSecondsOf(answer.body.headers['retry-after']);
      if (code === 'ENGINE_UNAVAILABLE') {
        // Its engine is restarting (docs/serving.md): refused before anything was decrypted, so
        // another replica may take the request (`unanswered`); the replica stays in rotation. With
        // none left, the client is told to come back after the replica's own estimate.
        throw new TresorError(
          'REPLICA_UNAVAILABLE',
          'the serving replica is restarting its inference engine; retry shortly',
          {
            details: {
              unanswered: true,
              ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
            },
          },
        );
      }
      if (isErrorCode(code) && CLIENT_SIDE.has(code)) {
        throw new TresorError(code, undefined, {
          ...(retryAfterSeconds === undefined ? {} : { details: { retryAfterSeconds } }),
        });
      }
      // Answered, so still there: a 503 (not ready, draining) is "try again shortly", other
      // statuses reach the client as UPSTREAM_FAILED; none of them takes the replica out.
      if (answer.status === 503) {
        throw new TresorError(
          'REPLICA_UNAVAILABLE',
          `the serving replica cannot take requests right now (HTTP 503); retry shortly`,
        );
      }
      throw new TresorError(
        'UPSTREAM_FAILED',
        `the serving replica refused the request (HTTP ${answer.status})`,
      );
    }
    // A connection that breaks while the answer streams is a transport failure; anything else
    // that goes wrong (a chunk that does not authenticate, malformed Binary HTTP) is the replica's.
    const transport = { broken: false };
    answer.body.once('aborted', () => {
      transport.broken = true;
    });
    answer.body.once('error', () => {
      transport.broken = true;
    });
    const reader = new BhttpResponseReader();
    try {
      for await (const piece of sealed.open(answer.body)) {
        for (const event of reader.push(piece)) yield event;
      }
      for (const event of reader.finish()) yield event;
    } catch (err) {
      if (transport.broken || answer.body.errored !== null) pool.transportFailed(replica, 'broken');
      else pool.fail(replica, isTresorError(err) ? err.code : 'UPSTREAM_FAILED');
      answer.body.destroy();
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
