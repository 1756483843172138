import { randomUUID } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { TLSSocket } from 'node:tls';
import type { FastifyRequest } from 'fastify';

/** Request ids are generated here, never taken from the client (a client-chosen id could collide or carry data). */
export function newRequestId(): string {
  return randomUUID();
}

/** Response header that echoes the request id, so a user can quote it when reporting a failure. */
export const REQUEST_ID_HEADER = 'x-request-id';

/**
 * The client certificate of a mutual-TLS connection, or null when the client presented none or one
 * the configured client CA did not issue. Only meaningful on a server configured with `tls.clientCa`.
 */
export function verifiedClientCertificate(request: FastifyRequest): PeerCertificate | null {
  const socket: unknown = request.raw.socket;
  if (!(socket instanceof TLSSocket) || !socket.authorized) return null;
  // A connection's peer certificate is fixed at its handshake (TLS 1.3 has no renegotiation), so
  // it is rendered once per connection rather than once per kept-alive request.
  let certificate = peerCertificates.get(socket);
  if (certificate === undefined) {
    certificate = socket.getPeerCertificate();
    peerCertificates.set(socket, certificate);
  }
  return Object.keys(certificate).length === 0 ? null : certificate;
}

const peerCertificates = new WeakMap<TLSSocket, PeerCertificate>();
