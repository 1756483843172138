import 'reflect-metadata';
import { createPublicKey } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { TresorError } from '@tresor/protocol';

x509.cryptoProvider.set(globalThis.crypto);

/** A PEM CSR for one P-384 key is well under 1 KiB; an RSA-4096 one about 2 KiB. */
export const MAX_CSR_LENGTH = 16 * 1024;

/** A PKCS#10 request (RFC 2986) whose self-signature verified: its key is held by the caller. */
export interface CertificationRequest {
  /** The DER SubjectPublicKeyInfo of the requested key, copied into the certificate as is. */
  readonly subjectPublicKeyInfo: Uint8Array;
  readonly publicJwk: JWK;
  /** RFC 7638 SHA-256 thumbprint of the key, to compare keys whatever their encoding. */
  readonly thumbprint: string;
}

/**
 * Parses a PEM (or base64 DER) PKCS#10 request, checks the proof of possession (its self-signature,
 * RFC 2986 §3) and that its key is one a TLS peer can use: EC P-256 / P-384, or RSA of 2048 to 4096
 * bits. The subject and extensions asked for are ignored: the mesh CA names the certificate from the
 * attestation alone.
 *
 * @throws TresorError MESH_CSR_INVALID
 */
export async function parseCertificationRequest(text: string): Promise<CertificationRequest> {
  if (text.length === 0 || text.length > MAX_CSR_LENGTH) {
    throw invalid(`the request is empty or longer than ${MAX_CSR_LENGTH} characters`);
  }
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(text.trim());
  } catch (cause) {
    throw invalid('it is not a PEM PKCS#10 certificate request', cause);
  }
  let verified: boolean;
  try {
    verified = await csr.verify();
  } catch (cause) {
    throw invalid('its signature algorithm or key is not supported', cause);
  }
  if (!verified) throw invalid('its self-signature does not verify (no proof that the caller holds the key)');
  const spki = new Uint8Array(csr.publicKey.rawData);
  let publicJwk: JWK;
  try {
    publicJwk = createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }).export({
      format: 'jwk',
    });
  } catch (cause) {
    throw invalid('its public key cannot be read', cause);
  }
  checkKeyStrength(publicJwk);
  return { subjectPublicKeyInfo: spki, publicJwk, thumbprint: await thumbprintOf(publicJwk) };
}

function checkKeyStrength(jwk: JWK): void {
  if (jwk.kty === 'EC' && (jwk.crv === 'P-256' || jwk.crv === 'P-384')) return;
  if (jwk.kty === 'RSA' && typeof jwk.n === 'string') {
    const bits = Math.floor((jwk.n.length * 6) / 8) * 8;
    if (bits >= 2048 && bits <= 4096) return;
    throw invalid(`its RSA key has about ${bits} bits; 2048 to 4096 are accepted`);
  }
  throw invalid(
    `its key is ${jwk.kty ?? 'unknown'}${jwk.crv === undefined ? '' : ` ${jwk.crv}`}; EC P-256/P-384 or RSA is accepted`,
  );
}

/**
 * The RFC 7638 thumbprint of a public JWK: only the required members count, so `alg`, `use` and
 * `kid` (which differ between the runtime data's ECDH JWK and the CSR's key) do not.
 *
 * @throws TresorError MESH_KEY_NOT_ATTESTED when the attested key is not a usable public JWK.
 */
export async function thumbprintOf(jwk: JWK): Promise<string> {
  try {
    return await calculateJwkThumbprint(jwk, 'sha256');
  } catch (cause) {
    throw new TresorError('MESH_KEY_NOT_ATTESTED', 'the attested TEE public key is not a usable JWK', {
      cause,
    });
  }
}

function invalid(why: string, cause?: unknown): TresorError {
  return new TresorError(
    'MESH_CSR_INVALID',
    `the certificate signing request is refused: ${why}`,
    cause === undefined ? {} : { cause },
  );
}
