import { TresorError, type ErrorCode } from '@tresor/protocol';
import { bytesToHex, toArrayBuffer, utf8Encode } from '@tresor/crypto';
import {
  appraise,
  type AppraisalInput,
  type AppraisalPolicy,
  type AppraisalResult,
  type SampleVerifyKey,
  type TeeKind,
  type VerifierSet,
} from '@tresor/attestation';
import type { KbsAttestation } from '../kbs/messages.js';
import type { PrimaryTee } from '../kbs/protocol.js';
import { additionalDeviceNonce, primaryRuntimeData } from '../kbs/runtime-data.js';
import { parseTeePublicKey, type TeePublicKey } from '../kbs/tee-public-key.js';
import type { AttestedIdentity } from './attested-identity.js';
import { earTokenClaims } from './ear-token-claims.js';
import { verifyInitData } from './init-data.js';
import { verifyAdditionalEvidence, verifyPrimaryEvidence, type EndorsementProvider } from './tee-evidence.js';
import type { AttestationTokenService } from './token-service.js';

/** Which released workload evidence is (part of the reference values store). */
export interface ReferenceValueLookup {
  /**
   * The component and release whose reference values the workload matches.
   * @throws TresorError MEASUREMENT_NOT_ALLOWED when it matches none.
   */
  requireReleased(workload: {
    readonly tee: TeeKind;
    readonly measurements: Readonly<Record<string, string>>;
    readonly initDataHash: string | null;
    readonly imageDigest: string | null;
  }): { readonly component: string; readonly release: string };
}

/** Where hardware stands (part of the residency inventory). */
export interface ResidencyLookup {
  /**
   * The jurisdiction every id is listed under.
   * @throws TresorError RESIDENCY_VIOLATION when an id is missing, listed elsewhere, or none is given.
   */
  requireResident(hardwareIds: readonly string[]): { readonly jurisdiction: string };
}

export interface AttestationServiceOptions {
  /** The appraisal policy from the configuration (debug, TCB, sample TEE, static measurements). */
  readonly policy: AppraisalPolicy;
  readonly tokens: AttestationTokenService;
  readonly referenceValues?: ReferenceValueLookup;
  readonly residency?: ResidencyLookup;
  readonly endorsements?: EndorsementProvider;
  readonly verifiers?: VerifierSet;
  /** The installation's sample TEE key (local mode); sample evidence is refused without it unless unsigned evidence is accepted. */
  readonly sampleVerifyKey?: SampleVerifyKey;
  readonly acceptUnsignedSample?: boolean;
}

export interface AttestationRequest {
  readonly tee: PrimaryTee;
  /** The session's challenge nonce. */
  readonly nonce: string;
  /** When the challenge was issued: the evidence cannot be older (policy maxEvidenceAgeSeconds). */
  readonly challengeIssuedAt: Date;
  readonly attestation: KbsAttestation;
  readonly now: Date;
}

export interface AttestationOutcome {
  readonly token: string;
  readonly identity: AttestedIdentity;
  readonly teePublicKey: TeePublicKey;
  readonly appraisal: AppraisalResult;
}

/** The first failed check's detail for `code`, so the refusal says what was wrong. */
function failureDetail(appraisal: AppraisalResult, code: ErrorCode): string | undefined {
  for (const submod of Object.values(appraisal.ear.submods)) {
    for (const [name, check] of Object.entries(submod['ear.tresor.checks'])) {
      if (!check.ok && check.code === code) return `${name}: ${check.detail ?? 'failed'}`;
    }
  }
  return undefined;
}

async function sha256Hex(text: string): Promise<string> {
  if (text === '') return '';
  return bytesToHex(new Uint8Array(await crypto.subtle.digest('SHA-256', toArrayBuffer(utf8Encode(text)))));
}

/**
 * The attestation service: verifies KBS evidence with packages/attestation, checks that it binds the
 * session's challenge and the TEE's key, appraises it against the policy, the reference values and
 * the residency inventory, and issues an EAR attestation token. Every refusal is a TresorError with
 * the code of the first failed check.
 */
export class AttestationService {
  readonly #options: AttestationServiceOptions;
  #configured: AppraisalPolicy;
  #policy: AppraisalPolicy;

  constructor(options: AttestationServiceOptions) {
    this.#options = options;
    this.#configured = options.policy;
    this.#policy = this.#effective(options.policy);
  }

  /** The appraisal policy in force, as configured or last set through the admin API. */
  get policy(): AppraisalPolicy {
    return this.#configured;
  }

  /**
   * Replaces the appraisal policy for every attestation from now on (the admin API validates,
   * audits and stores it first). Tokens already issued keep their short lifetime.
   */
  replacePolicy(policy: AppraisalPolicy): void {
    this.#policy = this.#effective(policy);
    this.#configured = policy;
  }

  #effective(policy: AppraisalPolicy): AppraisalPolicy {
    const options = this.#options;
    return {
      ...policy,
      // GPU evidence is bound structurally: the CPU report data hashes the additional-evidence string
      // the GPU evidence is read from (runtime-data.ts), so the "gpu-evidence-sha256" list is not needed.
      requireGpuBinding: false,
      // Where the reference values store and the residency inventory decide (after appraisal, with
      // releases and jurisdictions), the static policy need not list them; anything it does list
      // still applies on top.
      ...(policy.measurements === undefined && options.referenceValues !== undefined
        ? { measurements: 'any' as const }
        : {}),
      ...(policy.hardwareIds === undefined && options.residency !== undefined
        ? { hardwareIds: 'any' as const }
        : {}),
    };
  }

  async attest(request: AttestationRequest): Promise<AttestationOutcome> {
    const { attestation, nonce, now } = request;
    if (attestation.runtimeData.nonce !== nonce) {
      throw new TresorError(
        'EVIDENCE_STALE',
        "the runtime-data nonce is not this session's challenge; bind the nonce from POST /kbs/v0/auth",
      );
    }
    const teePublicKey = parseTeePublicKey(attestation.runtimeData.teePubkey);
    const runtimeData = primaryRuntimeData(teePublicKey.jwk, nonce, attestation.additionalEvidence);
    const verification = {
      ...(this.#options.verifiers === undefined ? {} : { verifiers: this.#options.verifiers }),
      ...(this.#options.endorsements === undefined ? {} : { endorsements: this.#options.endorsements }),
      ...(this.#options.sampleVerifyKey === undefined
        ? {}
        : { sampleVerifyKey: this.#options.sampleVerifyKey }),
      acceptUnsignedSample: this.#options.acceptUnsignedSample === true,
      now,
    };
    const primary = await verifyPrimaryEvidence(request.tee, attestation.primaryEvidence, verification);
    const gpus = await verifyAdditionalEvidence(
      attestation.additionalEvidence,
      additionalDeviceNonce(teePublicKey.jwk, nonce),
      verification,
    );

    const appraisal = await appraise([primary.result, ...gpus], this.#policy, {
      now,
      runtimeData,
      evidenceTime: request.challengeIssuedAt,
    });
    if (appraisal.error !== null) {
      throw new TresorError(appraisal.error, failureDetail(appraisal, appraisal.error), {
        details: { errors: appraisal.errors },
      });
    }

    const input = primary.result.appraisal;
    const initData = await verifyInitData(attestation.initData, input, primary.sampleInitData);
    const hardwareIds = this.#hardwareIds(
      input,
      gpus.map((g) => g.appraisal),
    );
    const release =
      this.#options.referenceValues?.requireReleased({
        tee: input.tee,
        measurements: input.measurements,
        initDataHash: initData?.digest ?? null,
        imageDigest: initData?.imageDigest ?? null,
      }) ?? null;
    const residency = this.#options.residency?.requireResident(hardwareIds).jurisdiction ?? null;

    const claims = earTokenClaims({
      appraisal,
      primary: input,
      gpus: gpus.map((g) => g.appraisal),
      teePublicKey: teePublicKey.jwk,
      nonce,
      additionalEvidenceSha256: await sha256Hex(attestation.additionalEvidence),
      initData:
        initData === null
          ? null
          : {
              digest: initData.digest,
              measured:
                input.tee === 'sample'
                  ? initData.digest
                  : (input.measurements.host_data ?? input.measurements.mrconfigid ?? ''),
              claims: Object.fromEntries(
                Object.entries(initData.document.data).filter(([name]) => name.startsWith('tresor-')),
              ),
            },
      hardwareIds,
      residency,
      tenant: initData?.tenant ?? null,
      imageDigest: initData?.imageDigest ?? null,
      release,
    });
    const issued = await this.#options.tokens.issue(claims);
    const identity: AttestedIdentity = {
      tokenId: issued.tokenId,
      issuedAt: issued.issuedAt,
      expiresAt: issued.expiresAt,
      status: appraisal.status,
      tee: input.tee,
      insecure: input.insecure,
      debug: input.debug,
      measurements: input.measurements,
      hardwareIds,
      residency,
      initDataHash: initData?.digest ?? null,
      tenant: initData?.tenant ?? null,
      imageDigest: initData?.imageDigest ?? null,
      component: release?.component ?? null,
      release: release?.release ?? null,
      gpus: gpus.map((g, i) => ({
        status: appraisal.ear.submods[`gpu${i}`]?.['ear.status'] ?? 'none',
        deviceId: g.appraisal.hardwareIds[0] ?? null,
      })),
      teePublicKey: teePublicKey.jwk,
    };
    return { token: issued.token, identity, teePublicKey, appraisal };
  }

  /**
   * The hardware ids residency is decided on: the CPU TEE's (for the sample TEE, its installation key,
   * the one thing that identifies a local stack) and every GPU's. All-zero ids (a masked SNP chip id, a
   * VLEK-signed report) identify no machine and are left out, as appraisal does.
   */
  #hardwareIds(primary: AppraisalInput, gpus: readonly AppraisalInput[]): string[] {
    const cpu =
      primary.tee === 'sample' && this.#options.sampleVerifyKey !== undefined
        ? [this.#options.sampleVerifyKey.hex]
        : primary.hardwareIds;
    return [...cpu, ...gpus.flatMap((g) => g.hardwareIds)]
      .map((id) => id.toLowerCase())
      .filter((id) => !/^0*$/.test(id));
  }
}
