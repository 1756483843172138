import type { ErrorCode } from '@tresor/protocol';
import type { VerificationResult } from '../types.js';
import { TRUST, trustTier, type EarStatus, type TrustClaimName, type TrustVector } from './ear.js';

/**
 * Builds the AR4SI vector: starts from what the hardware verdict establishes, then each policy rule
 * may only make a claim worse (a later affirmation never hides an earlier refusal).
 */
export class TrustVectorBuilder {
  readonly #claims: Record<TrustClaimName, number> = {
    'instance-identity': TRUST.noClaim,
    configuration: TRUST.noClaim,
    executables: TRUST.noClaim,
    'file-system': TRUST.noClaim,
    hardware: TRUST.noClaim,
    'runtime-opaque': TRUST.noClaim,
    'storage-opaque': TRUST.noClaim,
    'sourced-data': TRUST.noClaim,
  };

  fromHardware(result: VerificationResult): void {
    const hardwareTee = !result.appraisal.insecure;
    if (result.valid) {
      this.set('instance-identity', TRUST.instance.trustworthy);
      if (hardwareTee) {
        this.set('hardware', TRUST.hardware.genuine);
        this.set('runtime-opaque', TRUST.runtimeOpaque.encrypted);
      }
    }
    for (const check of Object.values(result.checks)) {
      if (!check.ok && check.code !== undefined) this.degradeFor(check.code);
    }
  }

  /** The claim a failed check with `code` speaks against. */
  degradeFor(code: ErrorCode): void {
    switch (code) {
      case 'ATTESTATION_DEBUG_ENABLED':
        this.degrade('configuration', TRUST.configuration.unsupportable);
        this.degrade('runtime-opaque', TRUST.runtimeOpaque.visible);
        return;
      case 'ATTESTATION_POLICY_VIOLATION':
      case 'ATTESTATION_VMPL_NOT_ALLOWED':
        this.degrade('configuration', TRUST.configuration.unsupportable);
        return;
      case 'TCB_OUT_OF_DATE':
      case 'TCB_REVOKED':
      case 'TCB_UNRECOGNISED':
      case 'ATTESTATION_COLLATERAL_MISSING':
        this.degrade('hardware', TRUST.hardware.contraindicated);
        return;
      case 'MEASUREMENT_NOT_ALLOWED':
      case 'GPU_MEASUREMENT_MISMATCH':
        this.degrade('executables', TRUST.executables.contraindicated);
        return;
      case 'REPORT_DATA_MISMATCH':
      case 'EVIDENCE_STALE':
      case 'GPU_NONCE_MISMATCH':
      case 'JCS_VALUE_INVALID':
        this.degrade('instance-identity', TRUST.instance.untrustworthy);
        return;
      case 'RESIDENCY_VIOLATION':
        this.degrade('instance-identity', TRUST.instance.unrecognized);
        return;
      case 'SAMPLE_TEE_NOT_ALLOWED':
        this.degrade('hardware', TRUST.hardware.unrecognized);
        return;
      case 'GPU_EVIDENCE_NOT_BOUND':
        this.degrade('sourced-data', TRUST.sourcedData.contraindicated);
        return;
      default:
        // Signatures, chains, validity, revocation, collateral: the evidence itself is not genuine.
        this.degrade('instance-identity', TRUST.cryptoFailed);
        this.degrade('hardware', TRUST.cryptoFailed);
    }
  }

  /** Sets a claim unless it already carries a worse verdict. */
  set(claim: TrustClaimName, value: number): void {
    const current = this.#claims[claim];
    if (current === TRUST.noClaim || rank(value) >= rank(current)) this.#claims[claim] = value;
  }

  /** Makes a claim worse, never better. */
  degrade(claim: TrustClaimName, value: number): void {
    if (rank(value) >= rank(this.#claims[claim])) this.#claims[claim] = value;
  }

  /** Withdraws an affirmation (back to "no claim"); a refusal stays. */
  withdraw(claim: TrustClaimName): void {
    if (rank(this.#claims[claim]) <= rank(TRUST.instance.trustworthy)) this.#claims[claim] = TRUST.noClaim;
  }

  /** Affirms a claim only when nothing has spoken against it yet. */
  affirm(claim: TrustClaimName, value: number): void {
    if (rank(this.#claims[claim]) <= rank(TRUST.instance.trustworthy)) this.#claims[claim] = value;
  }

  build(): TrustVector {
    return { ...this.#claims };
  }
}

const TIER_RANK: Readonly<Record<EarStatus, number>> = {
  none: 0,
  affirming: 1,
  warning: 2,
  contraindicated: 3,
};
function rank(value: number): number {
  return TIER_RANK[trustTier(value)];
}
