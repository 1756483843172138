import type { ErrorCode } from '@tresor/protocol';
import type { Checks, TeeKind } from '../types.js';

/**
 * The shape of appraisal results: an EAT Attestation Result (EAR, draft-fv-rats-ear) with the
 * AR4SI trustworthiness vector (draft-ietf-rats-ar4si §2.3), as Veraison and Trustee issue it, so a
 * relying party that reads Trustee's tokens reads ours. Tresor-specific members use the
 * `ear.tresor.` prefix (EAR §3 allows profile-specific extensions).
 */

export const EAR_PROFILE = 'tag:github.com,2023:veraison/ear';

/** AR4SI trust tiers (draft-ietf-rats-ar4si §2.3.1). `none` means no claim was made. */
export type EarStatus = 'none' | 'affirming' | 'warning' | 'contraindicated';

/** The eight AR4SI trustworthiness claims (draft-ietf-rats-ar4si §2.3.4). */
export const TRUST_CLAIMS = [
  'instance-identity',
  'configuration',
  'executables',
  'file-system',
  'hardware',
  'runtime-opaque',
  'storage-opaque',
  'sourced-data',
] as const;
export type TrustClaimName = (typeof TRUST_CLAIMS)[number];
export type TrustVector = Readonly<Record<TrustClaimName, number>>;

/**
 * The AR4SI claim values Tresor issues (values as in the AR4SI registry and veraison/ear
 * trustclaim.go). 0 is "no claim", 99 "cryptographic validation failed" for any claim.
 */
export const TRUST = {
  noClaim: 0,
  cryptoFailed: 99,
  instance: { trustworthy: 2, untrustworthy: 96, unrecognized: 97 },
  configuration: { approved: 2, unsafe: 32, unsupportable: 96 },
  executables: { approvedRuntime: 2, approvedBoot: 3, unrecognized: 33, contraindicated: 96 },
  hardware: { genuine: 2, unsafe: 32, contraindicated: 96, unrecognized: 97 },
  runtimeOpaque: { encrypted: 2, isolated: 32, visible: 96 },
  sourcedData: { trusted: 2, untrusted: 32, contraindicated: 96 },
} as const;

/** The tier of one claim value (AR4SI §2.3.1: -1..1 none, 2..31 affirming, 32..95 warning, 96.. contraindicated). */
export function trustTier(value: number): EarStatus {
  const magnitude = Math.abs(value);
  if (value >= -1 && value <= 1) return 'none';
  if (magnitude <= 31 || (value < 0 && magnitude <= 32)) return 'affirming';
  if (magnitude <= 95 || (value < 0 && magnitude <= 96)) return 'warning';
  return 'contraindicated';
}

const TIER_ORDER: readonly EarStatus[] = ['none', 'affirming', 'warning', 'contraindicated'];

/** The worse of two tiers. */
export function worseStatus(a: EarStatus, b: EarStatus): EarStatus {
  return TIER_ORDER.indexOf(a) >= TIER_ORDER.indexOf(b) ? a : b;
}

/** One appraised piece of evidence (an EAR submodule). */
export interface EarSubmodule {
  readonly 'ear.status': EarStatus;
  readonly 'ear.trustworthiness-vector': TrustVector;
  readonly 'ear.appraisal-policy-id': string;
  readonly 'ear.tresor.tee': TeeKind;
  /** True for the sample TEE: no hardware protects it. */
  readonly 'ear.tresor.insecure': boolean;
  /** Codes of every failed check (hardware and policy), in order, without repeats. */
  readonly 'ear.tresor.errors': readonly ErrorCode[];
  /** Every check, hardware first (the verifier's names), then the policy's. */
  readonly 'ear.tresor.checks': Checks;
}

/** An EAR claims-set, ready to be signed as a JWT by the trust service. */
export interface EarClaims {
  readonly eat_profile: typeof EAR_PROFILE;
  /** Appraisal time, seconds since the epoch. */
  readonly iat: number;
  readonly 'ear.verifier-id': { readonly developer: string; readonly build: string };
  readonly submods: Readonly<Record<string, EarSubmodule>>;
}
