import { Agent, request as httpsRequest } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { checkServerIdentity, TLSSocket, type PeerCertificate } from 'node:tls';
import { TresorError } from '@tresor/protocol';
import { spkiSha256OfCertificate } from '../attestation/tls-spki.js';

/** The gateway's mesh identity: mTLS client certificate and key, and the CA the replicas' certificates chain to. */
export interface MeshTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * How a request to a replica failed below HTTP (TresorError `details.transport`):
 * - `gone`: nothing answers at its address (connection refused, host unreachable, a new connection
 *   reset or closed before any answer);
 * - `untrusted`: the mutual TLS handshake failed, or the connection presented no certificate;
 * - `stale`: a kept-alive connection the replica had already closed (the request never reached it);
 * - `timeout`: no answer within the upstream timeout (slow, perhaps overloaded);
 * - `broken`: the connection broke after the request was sent.
 */
export type TransportFailure = 'gone' | 'untrusted' | 'stale' | 'timeout' | 'broken';

const GONE_CODES = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EADDRNOTAVAIL',
]);

/** Node's system or OpenSSL error code of `err`, if it has one. */
export function systemCodeOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

function isTlsFailure(code: string | undefined): boolean {
  if (code === undefined) return false;
  return (
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_TLS_') ||
    code.includes('CERT_') ||
    code.endsWith('_CERT') ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'
  );
}

/**
 * Classifies a failed request: `connected` says whether its TLS handshake had completed (always
 * true on a reused keep-alive connection), `reused` whether the connection carried requests before.
 */
export function classifyTransportFailure(
  err: unknown,
  state: { readonly connected: boolean; readonly reused: boolean; readonly timedOut: boolean },
): TransportFailure {
  if (state.timedOut) return 'timeout';
  const code = systemCodeOf(err);
  if (code !== undefined && GONE_CODES.has(code)) return 'gone';
  if (isTlsFailure(code)) return 'untrusted';
  if (state.reused) return 'stale';
  // A new connection closed before any answer: reset while connecting (or right after it).
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'gone';
  return state.connected ? 'broken' : 'untrusted';
}

/** The transport failure a TresorError from {@link MeshClient.send} carries, if any. */
export function transportFailureOf(err: unknown): TransportFailure | undefined {
  if (!(err instanceof TresorError)) return undefined;
  const kind = err.details?.transport;
  return kind === 'gone' ||
    kind === 'untrusted' ||
    kind === 'stale' ||
    kind === 'timeout' ||
    kind === 'broken'
    ? kind
    : undefined;
}

/** An answer from a replica, with the SPKI hash of the certificate the TLS connection presented. */
export interface MeshResponse {
  readonly status: number;
  readonly contentType: string;
  readonly peerSpkiSha256: string;
  readonly body: IncomingMessage;
}

/**
 * HTTPS over mutual TLS 1.3 to one serving replica. The replica's certificate must chain to the
 * mesh CA; its public key is reported with every answer so callers can compare it with the key the
 * replica's evidence binds (RuntimeData.tlsSpkiSha256).
 */
export class MeshClient {
  readonly url: URL;
  /** The peer key of each connection, read at its handshake (a kept-alive socket is reused later). */
  readonly #peers = new WeakMap<TLSSocket, string>();
  #agent: Agent;
  readonly #timeoutMs: number;
  readonly #origin: ReplicaOrigin;

  constructor(url: string, tls: MeshTls, timeoutMs: number) {
    this.url = new URL(url);
    this.#timeoutMs = timeoutMs;
    this.#agent = MeshClient.#agentFor(tls, this.#timeoutMs);
    this.#origin = replicaOrigin(this.url);
  }

  static #agentFor(tls: MeshTls, timeoutMs: number): Agent {
    return new Agent({
      keepAlive: true,
      maxSockets: 256,
      // An agent-wide timeout makes Node honour the replica's `Keep-Alive: timeout=N` hint: an idle
      // connection is closed here a second before the replica closes it, instead of being reused
      // just as the replica's close is on its way (a reset that used to eject the replica).
      timeout: timeoutMs,
      // No TLS session resumption: a resumed session carries no peer certificate to compare with
      // the key the replica's evidence binds.
      maxCachedSessions: 0,
      minVersion: 'TLSv1.3',
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      checkServerIdentity: meshServerIdentity,
    });
  }

  /**
   * Switches to a renewed mesh identity: new connections use it at once; connections of the old
   * one are closed once requests in flight had time to finish.
   */
  setTls(tls: MeshTls, drainMs = this.#timeoutMs): void {
    const old = this.#agent;
    this.#agent = MeshClient.#agentFor(tls, this.#timeoutMs);
    setTimeout(() => {
      old.destroy();
    }, drainMs).unref();
  }

  /** Sends one request; the body of the answer is left to the caller to read (or destroy). */
  send(
    method: 'GET' | 'POST',
    path: string,
    body?: { readonly contentType: string; readonly bytes: Uint8Array },
    signal?: AbortSignal,
  ): Promise<MeshResponse> {
    const target = requestPath(path, this.url);
    return new Promise((resolve, reject) => {
      let timedOut = false;
      let connected = false;
      const unreachable = (cause: unknown, kind?: TransportFailure): void => {
        if (cause instanceof TresorError) {
          reject(cause);
          return;
        }
        const transport =
          kind ?? classifyTransportFailure(cause, { connected, reused: req.reusedSocket, timedOut });
        const system = systemCodeOf(cause);
        reject(
          new TresorError('UPSTREAM_FAILED', `serving replica ${this.url.host} did not answer`, {
            cause,
            details: { transport, ...(system === undefined ? {} : { system }) },
          }),
        );
      };
      const req = httpsRequest(
        {
          ...this.#origin,
          path: target,
          method,
          agent: this.#agent,
          timeout: this.#timeoutMs,
          ...(signal === undefined ? {} : { signal }),
          headers: {
            accept: '*/*',
            ...(body === undefined
              ? {}
              : { 'content-type': body.contentType, 'content-length': body.bytes.length }),
          },
        },
        (res) => {
          const socket = res.socket;
          if (!(socket instanceof TLSSocket)) {
            res.destroy();
            unreachable(new Error('not a TLS connection'), 'untrusted');
            return;
          }
          const peerSpkiSha256 = this.#peerOf(socket);
          if (peerSpkiSha256 === undefined) {
            res.destroy();
            unreachable(new Error('the replica presented no certificate'), 'untrusted');
            return;
          }
          resolve({
            status: res.statusCode ?? 0,
            contentType: res.headers['content-type'] ?? '',
            peerSpkiSha256,
            body: res,
          });
        },
      );
      req.on('socket', (socket) => {
        if (socket instanceof TLSSocket && !this.#peers.has(socket)) {
          // No Nagle (tls.connect ignores the agent's noDelay): small writes held back for a
          // delayed ACK stall a request by 40 ms. A no-op on a socket that has it already.
          socket.setNoDelay(true);
          socket.once('secureConnect', () => {
            connected = true;
            this.#peerOf(socket);
          });
        } else {
          connected = true;
        }
      });
      // Again, explicitly: Node 20 leaves a reused keep-alive socket at the idle timeout it set from
      // the replica's `Keep-Alive: timeout=N` hint (N − 1 s) when the request's timeout equals the
      // agent's, so an answer that took longer than that to start (a queued llama request) timed
      // out and ejected a healthy replica.
      req.setTimeout(this.#timeoutMs);
      req.on('timeout', () => {
        timedOut = true;
        req.destroy(new Error(`no answer within ${this.#timeoutMs} ms`));
      });
      req.on('error', unreachable);
      req.end(
        body === undefined
          ? undefined
          : Buffer.from(body.bytes.buffer, body.bytes.byteOffset, body.bytes.length),
      );
    });
  }

  close(): void {
    this.#agent.destroy();
  }

  #peerOf(socket: TLSSocket): string | undefined {
    const known = this.#peers.get(socket);
    if (known !== undefined) return known;
    const peer = socket.getPeerX509Certificate();
    if (peer === undefined) return undefined;
    const spki = spkiSha256OfCertificate(peer);
    this.#peers.set(socket, spki);
    return spki;
  }
}

/** Where every request of one client goes: the replica's address, parsed once. */
interface ReplicaOrigin {
  /** https: (node:https refuses any other when a request is made, as it did with the URL). */
  readonly protocol: string;
  readonly hostname: string;
  readonly port: number;
  /**
   * The TLS server name, as Node's agent would work it out for every request (its host name, or
   * none for an IP address, RFC 6066 §3); given here so the agent skips that per request.
   */
  readonly servername: string;
}

function replicaOrigin(url: URL): ReplicaOrigin {
  // An IPv6 literal comes in brackets in a URL, without them in a request's options.
  const hostname = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return {
    protocol: url.protocol,
    hostname,
    port: url.port === '' ? 443 : Number(url.port),
    servername: isIP(hostname) === 0 ? hostname : '',
  };
}

/**
 * The path and query of a request to the replica. Mesh paths are absolute ('/v1/ohttp'): taken
 * as they are, without parsing a URL per request; anything else is resolved against the
 * replica's URL, and only its path and query are kept, so a request never leaves the replica.
 */
function requestPath(path: string, base: URL): string {
  if (path.startsWith('/') && !path.startsWith('//')) return path;
  const url = new URL(path, base);
  return `${url.pathname}${url.search}`;
}

/**
 * Mesh CA certificates name a workload by SPIFFE ID only (`spiffe://<domain>/serving/<tenant>`):
 * such a certificate must name a serving workload. Certificates without a SPIFFE ID (a local CA in
 * local mode) are checked by host name as usual. Either way the key must be the one the replica's
 * evidence binds, checked on every answer.
 */
export function meshServerIdentity(host: string, certificate: PeerCertificate): Error | undefined {
  const uris = (certificate.subjectaltname ?? '')
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('URI:spiffe://'))
    .map((entry) => entry.slice(4));
  if (uris.length === 0) return checkServerIdentity(host, certificate);
  return uris.some((uri) => /^spiffe:\/\/[^/]+\/serving\/[^/]+$/.test(uri))
    ? undefined
    : new Error(`the replica's certificate names ${uris.join(', ')}, not a serving workload`);
}

/** Reads a whole (small) answer body, at most `maxBytes`. */
export async function readBody(body: IncomingMessage, maxBytes: number): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      body.destroy();
      throw new TresorError('UPSTREAM_FAILED', `the replica's answer is larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk);
  }
  return new Uint8Array(Buffer.concat(chunks));
}
