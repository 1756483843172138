/**
 * Node entry of @tresor/sdk: a transport over node:https that exposes the peer certificate of
 * every connection, so the client can compare the TLS key with the attested one (browsers cannot)
 * and refuse — before writing a byte of the body — a connection whose key differs from the pinned one.
 */
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { finished } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { TresorError } from '@tresor/protocol';
import type { OhttpAeadBackend } from '@tresor/crypto';
import { nodeOhttpAead } from '@tresor/crypto/node';
import type { Ed25519Verify, FetchFunction, TlsBinding } from '../index.js';
import { readFetchCall } from '../fetch-call.js';
import { incompleteAnswer, mapTransportError, noAnswer } from '../transport-errors.js';

export interface NodeTransportOptions {
  /** Extra trusted CA certificates (PEM), e.g. a local stack's CA (`--ca`). */
  readonly ca?: string | Buffer;
}

export interface NodeTransport {
  readonly fetch: FetchFunction;
  readonly tls: TlsBinding;
  /** node:crypto OHTTP sealing (byte-identical to WebCrypto, several times faster); spread into `connect`. */
  readonly ohttpAead: OhttpAeadBackend;
  /** node:crypto SHA-256 of the bodies receipts cover (synchronous: no thread-pool job per body). */
  readonly sha256Hex: (bytes: Uint8Array) => string;
  /** node:crypto Ed25519 for receipt signatures (synchronous: no thread-pool job per response). */
  readonly ed25519Verify: Ed25519Verify;
}

function nodeSha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Receipt keys as node:crypto key objects, by the attested JWK object (one per verified replica):
 * imported once per verification, not per response.
 */
const ed25519Keys = new WeakMap<Parameters<Ed25519Verify>[0], KeyObject>();

/** RFC 8032 Ed25519 with the attested JWK; a key that does not import, or a bad signature, is `false`. */
export const nodeEd25519Verify: Ed25519Verify = (jwk, data, signature) => {
  try {
    let key = ed25519Keys.get(jwk);
    if (key === undefined) {
      key = createPublicKey({ key: { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, format: 'jwk' });
      if (key.asymmetricKeyType !== 'ed25519') return false;
      ed25519Keys.set(jwk, key);
    }
    return cryptoVerify(null, data, key, signature);
  } catch {
    return false;
  }
};

/**
 * The body of `res` as a web stream, in one layer (what `Readable.toWeb` and `mapBodyErrors`
 * give in two): a connection that breaks mid-answer (`aborted`, ECONNRESET, a premature close)
 * errors it with `mapTransportError(failure, signal, map)`; reading slower than it arrives pauses
 * `res`; cancelling destroys it. Each piece is copied, as `Readable.toWeb` does: a Buffer may
 * share its memory with others (the pool), which a consumer must not be able to detach.
 */
function incomingBody(
  res: IncomingMessage,
  signal: AbortSignal | null,
  map: (cause: unknown) => TresorError,
): ReadableStream<Uint8Array> {
  let settled = false;
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        res.on('data', (chunk: Buffer) => {
          if (settled) return;
          controller.enqueue(new Uint8Array(chunk));
          if ((controller.desiredSize ?? 0) <= 0) res.pause();
        });
        finished(res, (error) => {
          if (settled) return;
          settled = true;
          if (error === undefined || error === null) controller.close();
          else controller.error(mapTransportError(error, signal, map));
        });
      },
      pull() {
        res.resume();
      },
      cancel() {
        settled = true;
        res.destroy();
      },
    },
    { highWaterMark: 64 * 1024, size: (chunk) => chunk.byteLength },
  );
}

/** SHA-256 (hex) of the DER SubjectPublicKeyInfo of the socket's peer certificate. */
export function peerSpkiSha256(socket: TLSSocket): string | undefined {
  const cert = socket.getPeerX509Certificate();
  if (cert === undefined) return undefined;
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('hex');
}

/**
 * A fetch on node:https with the TLS binding the client pins after verification. Connections are
 * kept alive (a TLS handshake per request cost more than the request itself); each connection's
 * peer key is read once, at its handshake, and every request on it — new or reused — is checked
 * against the pin before a byte of its body is written. http:// URLs are served too (loopback
 * tests), and report no TLS key, which the verification records as "not-observable".
 */
export function createNodeTransport(options: NodeTransportOptions = {}): NodeTransport {
  const observed = new WeakMap<Response, string>();
  const pins = new Map<string, string>();
  /** The peer key of each connection, set at its handshake. */
  const socketKeys = new WeakMap<TLSSocket, string | undefined>();
  // Idle kept-alive sockets are unref'd by the agent, so they never hold the process open.
  // No TLS session resumption: a resumed TLS 1.3 session carries no certificate, so every new
  // connection must do a full handshake for its key to be checked.
  const httpsAgent = new HttpsAgent({
    keepAlive: true,
    maxCachedSessions: 0,
    ...(options.ca === undefined ? {} : { ca: options.ca }),
  });
  const httpAgent = new HttpAgent({ keepAlive: true });
  const fetch: FetchFunction = async (input, init) => {
    const request = readFetchCall(input, init);
    const url = request.url;
    const body = await request.body();
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => (headers[name] = value));
    if (body !== null) headers['content-length'] = String(body.length);
    const secure = url.protocol === 'https:';
    const send = secure ? httpsRequest : httpRequest;
    return new Promise<Response>((resolve, reject) => {
      let spki: string | undefined;
      const req = send(
        url,
        {
          method: request.method,
          headers,
          agent: secure ? httpsAgent : httpAgent,
          ...(request.signal === null ? {} : { signal: request.signal }),
        },
        (res: IncomingMessage) => {
          const responseHeaders = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (Array.isArray(value)) for (const v of value) responseHeaders.append(name, v);
            else if (value !== undefined) responseHeaders.set(name, value);
          }
          const status = res.statusCode ?? 502;
          const nullBody = status === 204 || status === 304 || request.method === 'HEAD';
          // A connection that breaks mid-answer (`aborted`, ECONNRESET) errors the body with
          // GATEWAY_UNREACHABLE saying the answer is incomplete, not a bare `Error: aborted`.
          const response = new Response(
            nullBody ? null : incomingBody(res, request.signal, (c) => incompleteAnswer(url.origin, c)),
            { status, headers: responseHeaders },
          );
          if (spki !== undefined) observed.set(response, spki);
          resolve(response);
        },
      );
      // No Nagle: tls.connect ignores the agent's noDelay, and a small write held back for the
      // delayed ACK of the previous one costs 40 ms (node:http's own sockets set it already).
      req.setNoDelay(true);
      // Before an answer: ECONNREFUSED, ECONNRESET, `socket hang up`, a TLS failure.
      req.on('error', (error) => {
        const mapped = mapTransportError(error, request.signal, (c) => noAnswer(url.origin, c));
        reject(mapped instanceof Error ? mapped : error);
      });
      const write = (): void => {
        if (body !== null) req.write(body);
        req.end();
      };
      if (!secure) {
        write();
        return;
      }
      req.on('socket', (socket) => {
        if (!(socket instanceof TLSSocket)) {
          req.destroy();
          reject(new TresorError('GATEWAY_UNREACHABLE', `no TLS connection to ${url.origin}`));
          return;
        }
        const check = (): void => {
          spki = socketKeys.get(socket);
          const pinned = pins.get(url.origin);
          if (pinned !== undefined && spki !== pinned) {
            const err = new TresorError(
              'TLS_KEY_MISMATCH',
              `the TLS key of ${url.origin} is not the attested one (a man in the middle, or a new certificate): nothing was sent; verify the gateway again`,
            );
            req.destroy(err);
            reject(err);
            return;
          }
          write();
        };
        if (socketKeys.has(socket)) {
          check(); // a kept-alive connection: its key was read at its handshake
          return;
        }
        socket.once('secureConnect', () => {
          socketKeys.set(socket, peerSpkiSha256(socket));
          check();
        });
      });
    });
  };
  return {
    fetch,
    ohttpAead: nodeOhttpAead,
    sha256Hex: nodeSha256Hex,
    ed25519Verify: nodeEd25519Verify,
    tls: {
      observed: (response) => observed.get(response),
      pin: (origin, key) => void pins.set(origin, key.toLowerCase()),
    },
  };
}
