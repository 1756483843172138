import type { Certificate } from '../certs.js';
import type { SignatureVerifier } from '../signatures/index.js';
import { failed, PASSED, type CheckOutcome } from './check-outcome.js';
import type { GpuAttestationReport } from './attestation-report.js';

/**
 * SPDM 1.1 MEASUREMENTS signature: ECDSA P-384 with SHA-384 over the exchange (request || response
 * up to the signature), r || s (IEEE P1363), by the key of the device chain's first certificate
 * (the GH100 FMC leaf).
 */
export async function checkSpdmSignature(
  report: GpuAttestationReport,
  leaf: Certificate | undefined,
  signatures: SignatureVerifier,
): Promise<CheckOutcome> {
  if (leaf === undefined) {
    return failed('ATTESTATION_CERT_CHAIN_INVALID', 'no device certificate to verify with');
  }
  let spki: Uint8Array;
  try {
    spki = new Uint8Array(leaf.publicKey.rawData);
  } catch {
    return failed('ATTESTATION_SIGNATURE_INVALID', 'the leaf certificate key is unreadable');
  }
  const key = await signatures.importPublicKey(spki, { name: 'ECDSA', namedCurve: 'P-384' });
  if (key === undefined) {
    return failed(
      'ATTESTATION_SIGNATURE_INVALID',
      'the leaf certificate key is not an ECDSA P-384 key, which SPDM evidence from Hopper needs',
    );
  }
  const ok = await signatures.verify(
    key,
    { name: 'ECDSA', hash: 'SHA-384', encoding: 'ieee-p1363' },
    report.response.signature,
    report.signedBytes,
  );
  return ok
    ? PASSED
    : failed(
        'ATTESTATION_SIGNATURE_INVALID',
        'the SPDM measurement signature does not verify with the leaf certificate key',
      );
}
