export {
  SAMPLE_REPORT_DATA_LENGTH,
  SAMPLE_SIGNATURE_CONTEXT,
  parseSampleEvidence,
  type SampleEvidence,
} from './evidence.js';
export { createSampleEvidence, createSampleEvidenceAsync, type SampleEvidenceRequest } from './attester.js';
export { SampleSigningKey, SampleVerifyKey } from './keys.js';
export { sampleVerifier, type SampleClaims, type SampleEndorsements } from './verifier.js';
