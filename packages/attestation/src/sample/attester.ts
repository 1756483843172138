import { TresorError } from '@tresor/protocol';
import { bytesToBase64, bytesToHex, utf8Encode } from '@tresor/crypto';
import { SAMPLE_MEASUREMENT_LENGTH, SAMPLE_REPORT_DATA_LENGTH, sampleSignedMessage } from './evidence.js';
import type { SampleSigningKey } from './keys.js';

export interface SampleEvidenceRequest {
  /** Report data to bind (e.g. SHA-384 of the JCS runtime data); at most 64 bytes, zero-padded. */
  readonly reportData: Uint8Array;
  /** Security version number of the local stack. */
  readonly svn: number;
  /** The installation's signing key. */
  readonly signingKey: SampleSigningKey;
  /** Optional 48-byte measurement of what runs (e.g. SHA-384 of the serving build). */
  readonly measurement?: Uint8Array;
}

/**
 * The attester side of the sample TEE: produces signed evidence JSON, as `tresor up` and the local
 * serving service send it to the trust service. It protects nothing; verifiers mark it insecure.
 */
export function createSampleEvidence(request: SampleEvidenceRequest): Uint8Array {
  const members = evidenceMembers(request);
  return encodeEvidence(members, request.signingKey.sign(sampleSignedMessage(members)));
}

/**
 * The same evidence as {@link createSampleEvidence} (the signature is deterministic), signed by
 * WebCrypto's native Ed25519 where the platform has it: what a client attesting often should use.
 */
export async function createSampleEvidenceAsync(request: SampleEvidenceRequest): Promise<Uint8Array> {
  const members = evidenceMembers(request);
  return encodeEvidence(members, await request.signingKey.signAsync(sampleSignedMessage(members)));
}

type EvidenceMembers = Readonly<Record<string, string>>;

function evidenceMembers(request: SampleEvidenceRequest): EvidenceMembers {
  const { reportData, svn, measurement } = request;
  if (reportData.length > SAMPLE_REPORT_DATA_LENGTH) {
    throw new TresorError(
      'INPUT_MALFORMED',
      `report data is ${reportData.length} bytes; the sample TEE binds at most ${SAMPLE_REPORT_DATA_LENGTH}`,
    );
  }
  if (!Number.isSafeInteger(svn) || svn < 0) {
    throw new TresorError('INPUT_MALFORMED', 'svn must be a non-negative integer');
  }
  if (measurement !== undefined && measurement.length !== SAMPLE_MEASUREMENT_LENGTH) {
    throw new TresorError(
      'INPUT_MALFORMED',
      `a sample measurement is ${SAMPLE_MEASUREMENT_LENGTH} bytes, got ${measurement.length}`,
    );
  }
  const padded = new Uint8Array(SAMPLE_REPORT_DATA_LENGTH);
  padded.set(reportData);
  // svn as a decimal string, as Trustee's sample attester sends it.
  return {
    svn: String(svn),
    report_data: bytesToBase64(padded),
    ...(measurement === undefined ? {} : { measurement: bytesToHex(measurement) }),
  };
}

function encodeEvidence(members: EvidenceMembers, signature: Uint8Array): Uint8Array {
  return utf8Encode(JSON.stringify({ ...members, signature: bytesToBase64(signature) }));
}
