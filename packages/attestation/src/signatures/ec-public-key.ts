import { concatBytes } from '@tresor/crypto';
import type { EcdsaCurve } from './signature-verifier.js';
import { ecdsaComponentSize } from './signature-verifier.js';

/**
 * A raw EC public key x || y (as a TDX quote carries its attestation key) wrapped as a DER
 * SubjectPublicKeyInfo (RFC 5480 §2: id-ecPublicKey with the named curve, uncompressed point 04 ||
 * x || y per SEC 1 §2.3.3), so every key enters a SignatureVerifier the same way.
 */
const SPKI_PREFIX: Readonly<Record<EcdsaCurve, Uint8Array>> = {
  // SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING (66 octets: 0 unused bits, 04) }
  'P-256': Uint8Array.from([
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86,
    0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
  ]),
  // SEQUENCE { SEQUENCE { id-ecPublicKey, secp384r1 }, BIT STRING (98 octets: 0 unused bits, 04) }
  'P-384': Uint8Array.from([
    0x30, 0x76, 0x30, 0x10, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x05, 0x2b, 0x81,
    0x04, 0x00, 0x22, 0x03, 0x62, 0x00, 0x04,
  ]),
};

/** The SPKI of the point x || y on `curve`; undefined when `xy` is not two coordinates of that curve's size. */
export function ecPublicKeySpki(curve: EcdsaCurve, xy: Uint8Array): Uint8Array | undefined {
  if (xy.length !== 2 * ecdsaComponentSize(curve)) return undefined;
  return concatBytes(SPKI_PREFIX[curve], xy);
}
