import type { FastifyRequest } from 'fastify';
import { TresorError } from '@tresor/protocol';
import { verifiedClientCertificate } from '@tresor/server-kit';

/** The URI SANs of a verified client certificate (Node renders them as `URI:<uri>` in `subjectaltname`). */
export function peerUris(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined) return [];
  return subjectAltName
    .split(/,\s*/)
    .filter((entry) => entry.startsWith('URI:'))
    .map((entry) => entry.slice('URI:'.length));
}

/**
 * Mesh peers are recognised by the SPIFFE ID in their certificate's URI SAN (docs/trust.md, "Mesh
 * CA"), never by DNS name: the handshake already proved the mesh CA issued the certificate, this
 * checks it names an allowed identity (the gateway by default). MESH_PEER_NOT_ALLOWED otherwise.
 */
export function requireMeshPeer(request: FastifyRequest, allowed: ReadonlySet<string>): string {
  const certificate = verifiedClientCertificate(request);
  if (certificate === null) {
    throw new TresorError(
      'MESH_PEER_NOT_ALLOWED',
      'this endpoint needs a mesh client certificate from the trust service (mutual TLS)',
    );
  }
  const uris = peerUris(certificate.subjectaltname);
  const match = uris.find((uri) => allowed.has(uri));
  if (match === undefined) {
    throw new TresorError(
      'MESH_PEER_NOT_ALLOWED',
      `the client certificate names ${uris.length === 0 ? 'no SPIFFE ID' : uris.join(', ')}, which may not call serving`,
    );
  }
  return match;
}
