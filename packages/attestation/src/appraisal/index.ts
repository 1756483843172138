export {
  appraise,
  ATTESTATION_VERIFIER_ID,
  type AppraisalContext,
  type AppraisalResult,
} from './appraise.js';
export {
  EAR_PROFILE,
  TRUST,
  TRUST_CLAIMS,
  trustTier,
  worseStatus,
  type EarClaims,
  type EarStatus,
  type EarSubmodule,
  type TrustClaimName,
  type TrustVector,
} from './ear.js';
export { GPU_EVIDENCE_MEMBER } from './gpu-binding.js';
export {
  appraisalPolicySchema,
  defaultAppraisalPolicy,
  loadAppraisalPolicy,
  parseAppraisalPolicy,
  type AppraisalPolicy,
  type AppraisalPolicyInput,
} from './policy.js';
