import { createHash, X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import { SampleSigningKey, createSampleEvidenceAsync } from '@tresor/attestation';
import {
  acceptChunkedOhttpRequest,
  bytesToBase64,
  decapsulateRequest,
  bytesToBase64Url,
  createGatewayKey,
  decodeBhttpRequest,
  encodeKeyConfig,
  encodeVarint,
  gatewayKeysById,
  HpkeKeyPair,
  runtimeDataHash,
  utf8Decode,
  utf8Encode,
} from '@tresor/crypto';
import {
  ATTESTATION_BUNDLE_VERSION,
  USAGE_REQUEST_HEADER,
  USAGE_SSE_PREFIX,
  type ComponentEvidence,
  type RuntimeData,
} from '@tresor/protocol';

/**
 * TEST-ONLY: a serving replica that speaks exactly the replica protocol the gateway uses, with the
 * sample TEE: `GET /attestation?nonce=` answers ComponentEvidence whose runtime data binds its HPKE
 * key configuration, its TLS key, the nonce and its models; `POST /v1/ohttp` over mTLS takes a
 * chunked OHTTP request sealed to that key and answers a chunked OHTTP response (indeterminate
 * Binary HTTP inside, one sealed chunk per server-sent event, ending with `: tresor-receipt` and,
 * when the gateway asks by header, `: tresor-usage`), or a `message/ohttp-req` and answers one
 * `message/ohttp-res` holding the same Binary HTTP.
 * The "engine" answers a fixed text so tests can count tokens.
 */
export interface FakeReplicaOptions {
  readonly cert: string;
  readonly key: string;
  /** CA of the gateway's mesh client certificates. */
  readonly clientCa: string;
  readonly sampleKey: SampleSigningKey;
  /** 96 hex digits. */
  readonly measurement: string;
  readonly models?: readonly string[];
  readonly id?: string;
}

export interface FakeReplica {
  readonly url: string;
  readonly id: string;
  /** Requests answered (POST /v1/ohttp). */
  readonly served: () => number;
  /** Prompts seen, to prove content reached the replica. */
  readonly prompts: string[];
  /** SHA-256 (hex) of every inner request body received, to prove the gateway forwards it unchanged. */
  readonly bodySha256: string[];
  /** The outer media type each inner request body (by its SHA-256) arrived in. */
  readonly mediaTypes: Map<string, string>;
  /** After this many SSE events of the next streaming answer, the replica drops every connection. */
  dieAfterEvents: number | undefined;
  /** While set, every connection is closed right after its TLS handshake (a replica that never answers). */
  hangUp: boolean;
  /** While set, POST /v1/ohttp is refused before decapsulation as serving does when full (429 SERVING_BUSY). */
  busy: boolean;
  /** While set, POST /v1/ohttp is refused before decapsulation as serving does while its engine restarts (502 ENGINE_UNAVAILABLE, Retry-After 2). */
  engineRestarting: boolean;
  close(): Promise<void>;
}

export const FAKE_COMPLETION_WORDS = ['Hello', ' from', ' the', ' sample', ' replica'];

function contentChunk(text: string): Uint8Array {
  const bytes = utf8Encode(text);
  const out = new Uint8Array(encodeVarint(bytes.length).length + bytes.length);
  out.set(encodeVarint(bytes.length));
  out.set(bytes, out.length - bytes.length);
  return out;
}

function responseHead(status: number, headers: readonly [string, string][]): Uint8Array {
  const parts: Uint8Array[] = [encodeVarint(3), encodeVarint(status)];
  for (const [n, v] of headers)
    parts.push(encodeVarint(n.length), utf8Encode(n), encodeVarint(v.length), utf8Encode(v));
  parts.push(encodeVarint(0));
  return new Uint8Array(Buffer.concat(parts));
}

export async function startFakeReplica(options: FakeReplicaOptions): Promise<FakeReplica> {
  const models = options.models ?? ['tiny'];
  const hpke = createGatewayKey(1, await HpkeKeyPair.generate());
  const keys = gatewayKeysById([hpke]);
  const hpkeKeyConfig = bytesToBase64Url(encodeKeyConfig(hpke.config));
  const spki = new X509Certificate(options.cert).publicKey.export({ type: 'spki', format: 'der' });
  const tlsSpkiSha256 = createHash('sha256').update(spki).digest('hex');
  const id = options.id ?? `serving-${Math.random().toString(16).slice(2, 8)}`;
  // Bound like a real replica's: the SDK verifier requires a receipt key in serving evidence.
  const receiptPair = await crypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const receiptJwk = await crypto.subtle.exportKey('jwk', receiptPair.publicKey);
  const sockets = new Set<Socket>();
  let served = 0;
  const prompts: string[] = [];
  const bodySha256: string[] = [];
  const mediaTypes = new Map<string, string>();
  const state: {
    dieAfterEvents: number | undefined;
    hangUp: boolean;
    busy: boolean;
    engineRestarting: boolean;
  } = {
    dieAfterEvents: undefined,
    hangUp: false,
    busy: false,
    engineRestarting: false,
  };

  const server: Server = createServer(
    {
      cert: options.cert,
      key: options.key,
      ca: options.clientCa,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    },
    (req, res) => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'https://replica');
        if (req.method === 'GET' && url.pathname === '/attestation') {
          const nonce = url.searchParams.get('nonce') ?? '';
          const runtimeData: RuntimeData = {
            version: ATTESTATION_BUNDLE_VERSION,
            component: 'serving',
            nonce,
            hpkeKeyConfig,
            tlsSpkiSha256,
            models: models.map((m) => ({ id: m, sha256: createHash('sha256').update(m).digest('hex') })),
            receiptKey: { kty: 'OKP', crv: 'Ed25519', x: receiptJwk.x ?? '' },
          };
          const evidence = await createSampleEvidenceAsync({
            reportData: await runtimeDataHash(runtimeData),
            svn: 1,
            signingKey: options.sampleKey,
            measurement: Buffer.from(options.measurement, 'hex'),
          });
          const body: ComponentEvidence = {
            component: 'serving',
            id,
            tee: 'sample',
            evidence: bytesToBase64(evidence),
            runtimeData,
            producedAt: new Date().toISOString(),
          };
          res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
          return;
        }
        if (req.method === 'POST' && url.pathname === '/v1/ohttp' && state.busy) {
          req.resume();
          res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' }).end(
            JSON.stringify({
              error: { message: 'busy', type: 'rate_limit_error', param: null, code: 'SERVING_BUSY' },
            }),
          );
          return;
        }
        if (req.method === 'POST' && url.pathname === '/v1/ohttp' && state.engineRestarting) {
          req.resume();
          res.writeHead(502, { 'content-type': 'application/json', 'retry-after': '2' }).end(
            JSON.stringify({
              error: {
                message: 'the engine is restarting',
                type: 'server_error',
                param: null,
                code: 'ENGINE_UNAVAILABLE',
              },
            }),
          );
          return;
        }
        if (req.method === 'POST' && url.pathname === '/v1/ohttp') {
          // Like serving: `message/ohttp-req` (one sealed answer, written when complete) or chunked.
          const single = (req.headers['content-type'] ?? '').startsWith('message/ohttp-req');
          let inner: Uint8Array;
          let writer: { write(bytes: Uint8Array): Promise<void>; close(): Promise<void> };
          let begin = (): void => undefined;
          if (single) {
            const sealed: Uint8Array[] = [];
            for await (const p of req as AsyncIterable<Buffer>) sealed.push(p);
            const opened = await decapsulateRequest(keys, new Uint8Array(Buffer.concat(sealed)));
            inner = opened.request;
            const answer: Uint8Array[] = [];
            writer = {
              write: (bytes) => {
                answer.push(bytes);
                return Promise.resolve();
              },
              close: async () => {
                const bytes = await opened.responder.encapsulateResponse(
                  new Uint8Array(Buffer.concat(answer)),
                );
                res.writeHead(200, { 'content-type': 'message/ohttp-res' }).end(Buffer.from(bytes));
              },
            };
          } else {
            const accepted = await acceptChunkedOhttpRequest(
              keys,
              Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>,
            );
            const parts: Uint8Array[] = [];
            for await (const p of accepted.request as unknown as AsyncIterable<Uint8Array>) parts.push(p);
            inner = new Uint8Array(Buffer.concat(parts));
            const encapsulator = accepted.createResponseEncapsulator();
            begin = () => {
              res.writeHead(200, { 'content-type': 'message/ohttp-chunked-res' });
              Readable.fromWeb(
                encapsulator.readable as unknown as import('node:stream/web').ReadableStream,
              ).pipe(res);
            };
            writer = encapsulator.writable.getWriter();
          }
          const { message } = decodeBhttpRequest(inner);
          const body = JSON.parse(utf8Decode(message.content)) as {
            model: string;
            stream?: boolean;
            stream_options?: { include_usage?: boolean };
            messages?: { content?: string }[];
            input?: unknown;
          };
          served++;
          const digest = createHash('sha256').update(message.content).digest('hex');
          bodySha256.push(digest);
          mediaTypes.set(digest, single ? 'message/ohttp-req' : 'message/ohttp-chunked-req');
          for (const m of body.messages ?? []) if (typeof m.content === 'string') prompts.push(m.content);
          begin();
          const usage = {
            prompt_tokens: 7,
            completion_tokens: FAKE_COMPLETION_WORDS.length,
            total_tokens: 7 + FAKE_COMPLETION_WORDS.length,
          };
          if (message.path === '/v1/embeddings') {
            await writer.write(responseHead(200, [['content-type', 'application/json']]));
            await writer.write(
              contentChunk(
                JSON.stringify({
                  object: 'list',
                  data: [{ object: 'embedding', index: 0, embedding: [0.1, 0.2] }],
                  model: body.model,
                  usage: { prompt_tokens: 3, total_tokens: 3 },
                }),
              ),
            );
            await writer.write(new Uint8Array([0, 0]));
            await writer.close();
            return;
          }
          if (body.stream !== true) {
            await writer.write(
              responseHead(200, [
                ['content-type', 'application/json'],
                ['tresor-receipt', 'fake.receipt.jws'],
              ]),
            );
            await writer.write(
              contentChunk(
                JSON.stringify({
                  id: 'chatcmpl-fake',
                  object: 'chat.completion',
                  created: 0,
                  model: body.model,
                  choices: [
                    {
                      index: 0,
                      message: { role: 'assistant', content: FAKE_COMPLETION_WORDS.join('') },
                      finish_reason: 'stop',
                    },
                  ],
                  usage,
                }),
              ),
            );
            await writer.write(new Uint8Array([0, 0]));
            await writer.close();
            return;
          }
          await writer.write(responseHead(200, [['content-type', 'text/event-stream']]));
          const events: string[] = FAKE_COMPLETION_WORDS.map(
            (w) =>
              `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 0, model: body.model, choices: [{ index: 0, delta: { content: w }, finish_reason: null }], ...(body.stream_options?.include_usage === true ? { usage: null } : {}) })}\n\n`,
          );
          if (body.stream_options?.include_usage === true) {
            events.push(
              `data: ${JSON.stringify({ id: 'chatcmpl-fake', object: 'chat.completion.chunk', created: 0, model: body.model, choices: [], usage })}\n\n`,
            );
          }
          events.push('data: [DONE]\n\n', ': tresor-receipt fake.receipt.jws\n\n');
          // Like serving (USAGE_REQUEST_HEADER): usage after the receipt, for the gateway only.
          if (message.headers.some(([n]) => n.toLowerCase() === USAGE_REQUEST_HEADER)) {
            events.push(
              `${USAGE_SSE_PREFIX}${JSON.stringify({ prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens })}\n\n`,
            );
          }
          let sent = 0;
          for (const event of events) {
            if (state.dieAfterEvents !== undefined && sent >= state.dieAfterEvents) {
              state.dieAfterEvents = undefined;
              for (const s of sockets) s.destroy();
              return;
            }
            await writer.write(contentChunk(event));
            sent++;
          }
          await writer.write(new Uint8Array([0, 0]));
          await writer.close();
          return;
        }
        res.writeHead(404, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            error: {
              message: 'no route',
              type: 'invalid_request_error',
              param: null,
              code: 'ROUTE_NOT_FOUND',
            },
          }),
        );
      })().catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    },
  );
  server.on('secureConnection', (socket: Socket) => {
    if (state.hangUp) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `https://localhost:${port}`,
    id,
    served: () => served,
    prompts,
    bodySha256,
    mediaTypes,
    get dieAfterEvents() {
      return state.dieAfterEvents;
    },
    set dieAfterEvents(n: number | undefined) {
      state.dieAfterEvents = n;
    },
    get busy() {
      return state.busy;
    },
    set busy(value: boolean) {
      state.busy = value;
    },
    get engineRestarting() {
      return state.engineRestarting;
    },
    set engineRestarting(value: boolean) {
      state.engineRestarting = value;
    },
    get hangUp() {
      return state.hangUp;
    },
    set hangUp(value: boolean) {
      state.hangUp = value;
      if (value) for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}
