import { toArrayBuffer } from '@tresor/crypto';
import type { Certificate } from '../certs.js';
import { failed, PASSED, type CheckOutcome } from './check-outcome.js';
import type { GpuAttestationReport } from './attestation-report.js';

/**
 * SPDM 1.1 MEASUREMENTS signature: ECDSA P-384 with SHA-384 over the exchange (request || response
 * up to the signature), r || s as WebCrypto expects it (IEEE P1363), by the key of the device
 * chain's first certificate (the GH100 FMC leaf). WebCrypto does the hashing, natively.
 */
export async function checkSpdmSignature(
  report: GpuAttestationReport,
  leaf: Certificate | undefined,
): Promise<CheckOutcome> {
  if (leaf === undefined) {
    return failed('ATTESTATION_CERT_CHAIN_INVALID', 'no device certificate to verify with');
  }
  let key: CryptoKey;
  try {
    key = await crypto.subtle.importKey(
      'spki',
      leaf.publicKey.rawData,
      { name: 'ECDSA', namedCurve: 'P-384' },
      false,
      ['verify'],
    );
  } catch {
    return failed(
      'ATTESTATION_SIGNATURE_INVALID',
      'the leaf certificate key is not an ECDSA P-384 key, which SPDM evidence from Hopper needs',
    );
  }
  const ok = await crypto.subtle
    .verify(
      { name: 'ECDSA', hash: 'SHA-384' },
      key,
      toArrayBuffer(report.response.signature),
      toArrayBuffer(report.signedBytes),
    )
    .catch(() => false);
  return ok
    ? PASSED
    : failed(
        'ATTESTATION_SIGNATURE_INVALID',
        'the SPDM measurement signature does not verify with the leaf certificate key',
      );
}
