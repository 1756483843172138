import {
  beginChunkedOhttpClientExchange,
  concatBytes,
  decodeKeyConfigList,
  encodeBhttpRequest,
  OHTTP_CHUNKED_REQUEST_MEDIA_TYPE,
} from '@tresor/crypto';
import type { Attack, Control, Expected } from './attack.js';
import type { MatrixEnv } from './env.js';
import { chat, codeOf, INNER_BODY_BYTES, OHTTP_BODY_BYTES, type PlatformEnv } from './platform-env.js';
import { encapsulate, encodeKnownLengthRequest } from '../../support/rfc9458-client.js';
import { handshakeWith, rawExchange, type RawOutcome } from './raw-tls.js';

/**
 * The gateway over the wire (TLS 1.3 to a real gateway in front of a real serving replica): API
 * keys, Cedar policy, rate limits and quotas inside OHTTP; malformed, replayed, reordered,
 * extended and oversized OHTTP at the endpoint; TLS downgrade, request smuggling and slow
 * requests below HTTP.
 */

const gateway = 'gateway' as const;

const platform = (env: MatrixEnv): Promise<PlatformEnv> => env.platform();

/** A sealed chat completion with `key`. */
const chatWith = async (env: MatrixEnv, key: string | null): Promise<Expected | null> =>
  (await platform(env)).sealed('/v1/chat/completions', { body: chat('matrix row'), key });

/** A chat completion's Binary HTTP request, split into three chunks and a final one, sealed chunk by chunk. */
async function chunked(
  p: PlatformEnv,
): Promise<{ header: Uint8Array; chunks: Uint8Array[]; final: Uint8Array }> {
  const [config] = decodeKeyConfigList(p.keyList);
  const bhttp = encodeBhttpRequest({
    method: 'POST',
    scheme: 'https',
    authority: 'gateway',
    path: '/v1/chat/completions',
    headers: [
      ['authorization', `Bearer ${p.apiKey}`],
      ['content-type', 'application/json'],
    ],
    content: new TextEncoder().encode(JSON.stringify(chat('chunked matrix row'))),
    trailers: [],
  });
  const client = await beginChunkedOhttpClientExchange(config!);
  const third = Math.ceil(bhttp.length / 4);
  const chunks = [];
  for (let i = 0; i < 3; i++) {
    chunks.push(await client.requestSealer.sealChunk(bhttp.slice(i * third, (i + 1) * third)));
  }
  return {
    header: client.header,
    chunks,
    final: await client.requestSealer.sealFinalChunk(bhttp.slice(3 * third)),
  };
}

const sendChunked = async (p: PlatformEnv, parts: readonly Uint8Array[]): Promise<Expected | null> =>
  codeOf(await p.outer(OHTTP_CHUNKED_REQUEST_MEDIA_TYPE, concatBytes(...parts)));

type ChunkedRequest = Awaited<ReturnType<typeof chunked>>;

/** A fresh chunked request, sent as `parts` arranges its pieces (reordered, dropped, extended…). */
const chunkedAs = async (
  env: MatrixEnv,
  parts: (r: ChunkedRequest) => readonly Uint8Array[],
): Promise<Expected | null> => {
  const p = await platform(env);
  return sendChunked(p, parts(await chunked(p)));
};

/** A sealed known-length request (GET /v1/models), ready to send or to edit. */
async function sealedModels(p: PlatformEnv, headers: [string, string][] = []): Promise<Uint8Array> {
  const exchange = await encapsulate(
    p.keyList,
    encodeKnownLengthRequest({
      method: 'GET',
      authority: 'gateway',
      path: '/v1/models',
      headers: [['authorization', `Bearer ${p.apiKey}`], ...headers],
      body: new Uint8Array(0),
    }),
  );
  return exchange.request;
}

function edited(bytes: Uint8Array, f: (copy: Uint8Array) => void): Uint8Array {
  const copy = Uint8Array.from(bytes);
  f(copy);
  return copy;
}

/** A fresh sealed request, changed by `tamper` before it is sent to /v1/ohttp. */
const sealedAs = async (
  env: MatrixEnv,
  tamper: (sealed: Uint8Array) => Uint8Array,
): Promise<Expected | null> => {
  const p = await platform(env);
  return codeOf(await p.outer('message/ohttp-req', tamper(await sealedModels(p))));
};

/** Sends `request` twice: the first must be answered (else the row's set-up failed), the second is the row. */
async function twice(request: () => Promise<Expected | null>): Promise<Expected | null> {
  const first = await request();
  if (first !== null) throw new Error(`matrix setup: first request refused with ${first}`);
  return request();
}

/** A handshake capped at `version`: refused is what the row expects. */
const tlsVersion = async (env: MatrixEnv, version: 'TLSv1.2' | 'TLSv1.1'): Promise<Expected | null> => {
  const p = await platform(env);
  return (await handshakeWith({ url: p.gateway.url, ca: p.cluster.gatewayCa }, version))
    ? null
    : 'TLS_HANDSHAKE_REFUSED';
};

/** Smuggling: exactly one response, a 400, and the connection closed — never a second request served. */
async function smuggle(env: MatrixEnv, request: string): Promise<Expected | null> {
  const p = await platform(env);
  const outcome = await rawExchange({ url: p.gateway.url, ca: p.cluster.gatewayCa }, [request], {
    giveUpMs: 30_000,
  });
  return outcome.closedByServer && outcome.statuses.length === 1 && outcome.statuses[0] === 400
    ? 'HTTP_400_AND_CLOSED'
    : null;
}

/** A slow request: cut off by the server with 408 before the client finished sending. */
function slow(outcome: RawOutcome): Expected | null {
  return outcome.closedByServer && outcome.statuses.length === 1 && outcome.statuses[0] === 408
    ? 'HTTP_408_AND_CLOSED'
    : null;
}

const SMUGGLED = 'GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n';

export const gatewayControls: readonly Control[] = [
  {
    component: gateway,
    what: 'a sealed chat completion with a valid key is answered',
    run: async (env) => chatWith(env, (await platform(env)).apiKey),
  },
  {
    component: gateway,
    what: 'a chunked OHTTP chat completion is answered',
    run: (env) => chunkedAs(env, (r) => [r.header, ...r.chunks, r.final]),
  },
  {
    component: gateway,
    what: 'a raw HTTP/1.1 request over TLS 1.3 is answered once',
    run: async (env) => {
      const p = await platform(env);
      const outcome = await rawExchange(
        { url: p.gateway.url, ca: p.cluster.gatewayCa },
        ['GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n'],
        { giveUpMs: 30_000 },
      );
      return outcome.statuses.length === 1 && outcome.statuses[0] === 200 ? null : 'HTTP_400_AND_CLOSED';
    },
  },
  {
    component: gateway,
    what: 'a TLS 1.3 handshake succeeds',
    run: async (env) => {
      const p = await platform(env);
      // handshakeWith caps the version; a 1.3 client is the normal fetch path used by every other row.
      const answer = await p.outer('message/ohttp-req', await sealedModels(p));
      return codeOf(answer);
    },
  },
];

export const gatewayAttacks: readonly Attack[] = [
  // ── API keys ──
  {
    component: gateway,
    attack: 'no API key',
    expect: 'API_KEY_MISSING',
    run: (env) => chatWith(env, null),
  },
  {
    component: gateway,
    attack: 'API key with its secret changed',
    expect: 'API_KEY_INVALID',
    run: async (env) => {
      const key = (await platform(env)).apiKey;
      return chatWith(env, `${key.slice(0, -3)}${key.endsWith('AAA') ? 'BBB' : 'AAA'}`);
    },
  },
  {
    component: gateway,
    attack: 'a foreign (OpenAI-style) key',
    expect: 'API_KEY_INVALID',
    run: (env) => chatWith(env, 'sk-proj-0123456789abcdef0123456789abcdef'),
  },
  {
    component: gateway,
    attack: 'well-formed key under an id that does not exist',
    expect: 'API_KEY_INVALID',
    run: async (env) => {
      const key = (await platform(env)).apiKey;
      const [prefix, , secret] = key.split('_');
      return chatWith(env, `${prefix}_zzzzzzzzzzzzzzzz_${secret}`);
    },
  },
  {
    component: gateway,
    attack: 'expired API key',
    expect: 'API_KEY_EXPIRED',
    run: async (env) => {
      const p = await platform(env);
      const key = await p.newKey({ expiresAt: new Date(Date.now() + 60_000).toISOString() });
      p.advance(3_600_000);
      try {
        return await chatWith(env, key);
      } finally {
        p.advance(-3_600_000);
      }
    },
  },
  {
    component: gateway,
    attack: 'revoked API key',
    expect: 'API_KEY_REVOKED',
    run: async (env) => {
      const p = await platform(env);
      const key = await p.newKey();
      await p.admin('api-keys/revoke', { id: key.split('_')[1] });
      return chatWith(env, key);
    },
  },
  // ── authorization ──
  {
    component: gateway,
    attack: 'key without the chat scope asks for a chat completion',
    expect: 'POLICY_DENIED',
    run: async (env) => chatWith(env, await (await platform(env)).newKey({ scopes: ['models'] })),
  },
  {
    component: gateway,
    attack: 'tenant policy forbids the model for chat (Cedar forbid)',
    expect: 'POLICY_DENIED',
    run: async (env) =>
      chatWith(
        env,
        (await (await platform(env)).admin('api-keys/create', { tenant: 'globex' })).key as string,
      ),
  },
  {
    component: gateway,
    attack: 'tenant without a policy (default deny)',
    expect: 'POLICY_DENIED',
    run: async (env) =>
      chatWith(
        env,
        (await (await platform(env)).admin('api-keys/create', { tenant: 'initech' })).key as string,
      ),
  },
  // ── rate limits and quotas ──
  {
    component: gateway,
    attack: 'second request in a minute on a key limited to 1 per minute',
    expect: 'RATE_LIMITED',
    run: async (env) => {
      const key = await (await platform(env)).newKey({ requestsPerMinute: 1 });
      return twice(() => chatWith(env, key));
    },
  },
  {
    component: gateway,
    attack: 'request after the key’s daily token quota is used up',
    expect: 'QUOTA_EXHAUSTED',
    run: async (env) => {
      const key = await (await platform(env)).newKey({ tokensPerDay: 5 });
      return twice(() => chatWith(env, key));
    },
  },
  {
    component: gateway,
    attack: 'inner request body over limits.innerBodyBytes',
    expect: 'REQUEST_BODY_TOO_LARGE',
    run: async (env) =>
      (await platform(env)).sealed('/v1/chat/completions', {
        body: chat('x', { user: 'y'.repeat(INNER_BODY_BYTES) }),
      }),
  },
  {
    component: gateway,
    attack: 'plaintext API request (no OHTTP) to /v1/chat/completions',
    expect: 'ROUTE_NOT_FOUND',
    run: async (env) =>
      codeOf(
        await (
          await platform(env)
        ).outer(
          'application/json',
          new TextEncoder().encode(JSON.stringify(chat('x'))),
          '/v1/chat/completions',
        ),
      ),
  },
  {
    component: gateway,
    attack: 'plaintext JSON posted to /v1/ohttp (wrong media type)',
    expect: 'REQUEST_MEDIA_TYPE_UNSUPPORTED',
    run: async (env) =>
      codeOf(
        await (await platform(env)).outer('application/json', new TextEncoder().encode('{"model":"x"}')),
      ),
  },
  // ── OHTTP at the endpoint ──
  {
    component: gateway,
    attack: 'malformed OHTTP (5 bytes)',
    expect: 'OHTTP_MESSAGE_MALFORMED',
    run: async (env) => codeOf(await (await platform(env)).outer('message/ohttp-req', new Uint8Array(5))),
  },
  {
    component: gateway,
    attack: 'OHTTP request under an unknown key id',
    expect: 'OHTTP_KEY_ID_UNKNOWN',
    run: (env) => sealedAs(env, (b) => edited(b, (c) => (c[0] = (c[0]! + 1) & 0xff))),
  },
  {
    component: gateway,
    attack: 'OHTTP request with an unoffered AEAD (ChaCha20-Poly1305)',
    expect: 'HPKE_SUITE_UNSUPPORTED',
    run: (env) => sealedAs(env, (b) => edited(b, (c) => (c[6] = 0x03))),
  },
  {
    component: gateway,
    attack: 'OHTTP ciphertext with one bit flipped',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: (env) => sealedAs(env, (b) => edited(b, (c) => (c[c.length - 20]! ^= 1))),
  },
  {
    component: gateway,
    attack: 'length extension: bytes appended to a sealed request',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: (env) => sealedAs(env, (b) => concatBytes(b, new TextEncoder().encode('&admin=1'))),
  },
  {
    component: gateway,
    attack: 'sealed request truncated by one byte',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: (env) => sealedAs(env, (b) => b.slice(0, -1)),
  },
  {
    component: gateway,
    attack: 'replayed encapsulated request (same enc)',
    expect: 'OHTTP_REQUEST_REPLAYED',
    run: async (env) => {
      const p = await platform(env);
      const request = await sealedModels(p);
      return twice(async () => codeOf(await p.outer('message/ohttp-req', request)));
    },
  },
  {
    component: gateway,
    attack: 'replayed chunked request (same enc)',
    expect: 'OHTTP_REQUEST_REPLAYED',
    run: async (env) => {
      const p = await platform(env);
      const r = await chunked(p);
      return twice(() => sendChunked(p, [r.header, ...r.chunks, r.final]));
    },
  },
  {
    component: gateway,
    attack: 'inner date header an hour old (replay from outside the window)',
    expect: 'OHTTP_REQUEST_REPLAYED',
    run: async (env) =>
      (await platform(env)).sealed('/v1/models', {
        headers: [['date', new Date(Date.now() - 3_600_000).toUTCString()]],
      }),
  },
  {
    component: gateway,
    attack: 'chunked request with two chunks reordered',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: (env) => chunkedAs(env, (r) => [r.header, r.chunks[1]!, r.chunks[0]!, r.chunks[2]!, r.final]),
  },
  {
    component: gateway,
    attack: 'chunked request with a chunk duplicated',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: (env) =>
      chunkedAs(env, (r) => [r.header, r.chunks[0]!, r.chunks[0]!, r.chunks[1]!, r.chunks[2]!, r.final]),
  },
  {
    component: gateway,
    attack: 'chunked request with a chunk dropped',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: (env) => chunkedAs(env, (r) => [r.header, r.chunks[0]!, r.chunks[2]!, r.final]),
  },
  {
    component: gateway,
    attack: 'chunked request cut before its final chunk',
    expect: 'OHTTP_STREAM_TRUNCATED',
    run: (env) => chunkedAs(env, (r) => [r.header, ...r.chunks]),
  },
  {
    component: gateway,
    attack: 'length extension: a chunk appended after the final chunk',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: (env) => chunkedAs(env, (r) => [r.header, ...r.chunks, r.final, r.chunks[0]!]),
  },
  {
    component: gateway,
    attack: 'oversized frame: a chunk declaring 2^30 bytes',
    expect: 'OHTTP_CHUNK_TOO_LARGE',
    run: (env) =>
      chunkedAs(env, (r) => [r.header, Uint8Array.from([0xc0, 0, 0, 0, 0x40, 0, 0, 0]), new Uint8Array(64)]),
  },
  {
    component: gateway,
    attack: 'encapsulated body over limits.ohttpBodyBytes',
    expect: 'REQUEST_BODY_TOO_LARGE',
    run: async (env) =>
      codeOf(await (await platform(env)).outer('message/ohttp-req', new Uint8Array(OHTTP_BODY_BYTES + 1))),
  },
  // ── below HTTP ──
  {
    component: gateway,
    attack: 'TLS 1.2 client',
    expect: 'TLS_HANDSHAKE_REFUSED',
    run: (env) => tlsVersion(env, 'TLSv1.2'),
  },
  {
    component: gateway,
    attack: 'TLS 1.1 client',
    expect: 'TLS_HANDSHAKE_REFUSED',
    run: (env) => tlsVersion(env, 'TLSv1.1'),
  },
  {
    component: gateway,
    attack: 'smuggling CL.TE: Content-Length and Transfer-Encoding: chunked',
    expect: 'HTTP_400_AND_CLOSED',
    run: (env) =>
      smuggle(
        env,
        `POST /v1/ohttp HTTP/1.1\r\nhost: localhost\r\ncontent-type: message/ohttp-req\r\ncontent-length: 6\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`,
      ),
  },
  {
    component: gateway,
    attack: 'smuggling TE.CL: Transfer-Encoding: chunked then Content-Length',
    expect: 'HTTP_400_AND_CLOSED',
    run: (env) =>
      smuggle(
        env,
        `POST /v1/ohttp HTTP/1.1\r\nhost: localhost\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\ncontent-type: message/ohttp-req\r\n\r\n${(SMUGGLED.length + 1).toString(16)}\r\n\n${SMUGGLED}\r\n0\r\n\r\n`,
      ),
  },
  {
    component: gateway,
    attack: 'smuggling: two different Content-Length headers',
    expect: 'HTTP_400_AND_CLOSED',
    run: (env) =>
      smuggle(
        env,
        `POST /v1/ohttp HTTP/1.1\r\nhost: localhost\r\ncontent-type: message/ohttp-req\r\ncontent-length: 0\r\ncontent-length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
      ),
  },
  {
    component: gateway,
    attack: 'smuggling: obfuscated Transfer-Encoding (chunked, identity)',
    expect: 'HTTP_400_AND_CLOSED',
    run: (env) =>
      smuggle(
        env,
        `POST /v1/ohttp HTTP/1.1\r\nhost: localhost\r\ncontent-type: message/ohttp-req\r\ntransfer-encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`,
      ),
  },
  {
    component: gateway,
    attack: 'smuggling: space before the colon of Content-Length',
    expect: 'HTTP_400_AND_CLOSED',
    run: (env) =>
      smuggle(
        env,
        `POST /v1/ohttp HTTP/1.1\r\nhost: localhost\r\ncontent-type: message/ohttp-req\r\ncontent-length : ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`,
      ),
  },
  {
    component: gateway,
    attack: 'smuggling: header line folded (obs-fold) into Transfer-Encoding',
    expect: 'HTTP_400_AND_CLOSED',
    run: (env) =>
      smuggle(
        env,
        `POST /v1/ohttp HTTP/1.1\r\nhost: localhost\r\ncontent-type: message/ohttp-req\r\ntransfer-encoding:\r\n chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`,
      ),
  },
  {
    component: gateway,
    attack: 'slowloris: headers sent one line every 500 ms',
    expect: 'HTTP_408_AND_CLOSED',
    run: async (env) => slow(await (await platform(env)).slowHeaders),
  },
  {
    component: gateway,
    attack: 'slow body: one byte every 500 ms',
    expect: 'HTTP_408_AND_CLOSED',
    run: async (env) => slow(await (await platform(env)).slowBody),
  },
  {
    component: gateway,
    attack: 'slow body over HTTP/2: one byte every 500 ms',
    expect: 'HTTP2_STREAM_RESET',
    run: async (env) => ((await (await platform(env)).slowHttp2Body) ? 'HTTP2_STREAM_RESET' : null),
  },
];
