import { bytesToHex } from '@tresor/crypto';
import { CheckLog } from '../check-log.js';
import type { AppraisalInput, VerificationResult, Verifier, VerifyOptions } from '../types.js';
import { parseSampleEvidence, type SampleEvidence } from './evidence.js';
import type { SampleVerifyKey } from './keys.js';

export interface SampleEndorsements {
  /** The installation's sample public key the trust service is configured with. */
  readonly verifyKey?: SampleVerifyKey;
  /**
   * Accept evidence without a signature (Trustee's sample attester signs nothing). Only for
   * interoperability tests: anyone can forge such evidence.
   */
  readonly acceptUnsigned?: boolean;
}

/** Claims of sample evidence, encoded like the hardware TEEs' claims (lowercase hex, numbers). */
export interface SampleClaims {
  readonly svn: number;
  readonly report_data: string;
  readonly measurement: string | null;
  readonly init_data: string | null;
  readonly signed: boolean;
  /** Always true: no hardware protects the sample TEE. */
  readonly insecure: true;
}

/**
 * The sample TEE verifier. Its one check is the installation key's signature; its result is always
 * marked insecure, and appraisal refuses it unless the policy allows the sample TEE.
 */
export const sampleVerifier: Verifier<SampleEvidence, SampleEndorsements> = {
  tee: 'sample',
  parse: parseSampleEvidence,
  async verify(
    evidence: SampleEvidence,
    endorsements: SampleEndorsements,
    // The sample TEE has no certificates, so the verification time plays no part.
    _options: VerifyOptions,
  ): Promise<VerificationResult<SampleClaims>> {
    const log = new CheckLog();
    await checkSignature(log, evidence, endorsements);
    const claims: SampleClaims = {
      svn: evidence.svn,
      report_data: bytesToHex(evidence.reportData),
      measurement: evidence.measurement === null ? null : bytesToHex(evidence.measurement),
      init_data: evidence.initData,
      signed: evidence.signature !== null,
      insecure: true,
    };
    const appraisal: AppraisalInput = {
      tee: 'sample',
      insecure: true,
      debug: false,
      measurements: claims.measurement === null ? {} : { measurement: claims.measurement },
      reportData: claims.report_data,
      hardwareIds: [],
      tcb: { svn: evidence.svn },
      vmpl: null,
      nonce: null,
      flags: {},
    };
    return {
      tee: 'sample',
      valid: log.valid,
      error: log.error,
      checks: log.checks,
      claims,
      appraisal,
    };
  },
};

async function checkSignature(
  log: CheckLog,
  evidence: SampleEvidence,
  endorsements: SampleEndorsements,
): Promise<void> {
  const name = 'evidence_signature';
  if (evidence.signature === null) {
    if (endorsements.acceptUnsigned === true) {
      log.pass(name, 'unsigned Trustee-style evidence, accepted because acceptUnsigned is set');
    } else {
      log.fail(
        name,
        'ATTESTATION_SIGNATURE_INVALID',
        'the sample evidence is unsigned; sign it with the installation key (unsigned evidence is for interop tests only)',
      );
    }
    return;
  }
  if (endorsements.verifyKey === undefined) {
    log.fail(
      name,
      'ATTESTATION_SIGNATURE_INVALID',
      'no sample TEE public key was supplied to verify the signature',
    );
    return;
  }
  log.check(
    name,
    await endorsements.verifyKey.verify(evidence.signature, evidence.signedMessage),
    'ATTESTATION_SIGNATURE_INVALID',
    `Ed25519 signature by key ${endorsements.verifyKey.hex.slice(0, 16)}…`,
  );
}
