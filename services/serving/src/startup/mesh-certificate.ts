/**
 * The replica's mesh certificate: the handshake (KBS RCAR over the TLS key, then a CSR with the
 * attestation token) lives in @tresor/trust, shared with the gateway's mesh client identity.
 */
export { requestMeshCertificate, type MeshCertificate } from '@tresor/trust';
