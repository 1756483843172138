import { TresorError } from '@tresor/protocol';
import { toArrayBuffer } from '@tresor/crypto';
import type { EcPublicJwk } from '@tresor/keystore';
import type { DocumentSigner } from './document-signer.js';

/**
 * A signer whose P-256 key lives only in this process, as a non-extractable WebCrypto key: for
 * tests and throw-away local runs. Documents it signed cannot be verified after a restart, so a
 * service started with it also keeps its documents in memory only.
 */
export async function ephemeralDocumentSigner(keyId: string): Promise<DocumentSigner> {
  const pair = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
    'sign',
    'verify',
  ]);
  const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
  if (jwk.x === undefined || jwk.y === undefined) {
    throw new TresorError('INTERNAL_ERROR', 'WebCrypto exported a P-256 public key without coordinates');
  }
  const publicJwk: EcPublicJwk = {
    kty: 'EC',
    crv: 'P-256',
    x: jwk.x,
    y: jwk.y,
    kid: keyId,
    alg: 'ES256',
    use: 'sig',
  };
  return {
    keyId,
    publicJwk,
    // WebCrypto's ECDSA output is already the raw r||s that JWS wants (RFC 7518 §3.4).
    sign: async (message) =>
      new Uint8Array(
        await crypto.subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, pair.privateKey, toArrayBuffer(message)),
      ),
  };
}
