import {
  createLocalJWKSet,
  createRemoteJWKSet,
  errors,
  jwtVerify,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { TresorError } from '@tresor/protocol';

/**
 * The attestation token a workload presents to the KYOK key server: an EAR (Entity Attestation
 * Result, draft-fv-rats-ear) JWT issued by Tresor's trust service after it appraised the workload's
 * evidence, signed ES256 or EdDSA with a key from the trust service's JWKS.
 *
 * EAR carries one appraisal per submodule (`submods`, §3). Besides the EAR claims (`ear.status`, …),
 * each Tresor submodule carries, in the `<vendor>.<name>` style EAR uses for extensions
 * (`ear.veraison.*`):
 *
 *   "tresor.tee":          "snp" | "tdx" | "nvidia" | "sample"   the TEE kind that was verified
 *   "tresor.measurements": { "<name>": "<lowercase hex>" }        AppraisalInput.measurements
 *   "tresor.residency":    "CH"                                    ISO 3166-1 country of the hardware,
 *                                                                  from the signed residency inventory
 *   "tresor.tenant":       "acme"   (optional)                     the tenant the workload serves
 */
export const EAR_TRUST_STATUS = 'ear.status';
export const TRESOR_TEE_CLAIM = 'tresor.tee';
export const TRESOR_MEASUREMENTS_CLAIM = 'tresor.measurements';
export const TRESOR_RESIDENCY_CLAIM = 'tresor.residency';
export const TRESOR_TENANT_CLAIM = 'tresor.tenant';

/** The EAR trust tiers (draft-fv-rats-ear §3.2): only `affirming` releases keys. */
export type EarStatus = 'affirming' | 'warning' | 'contraindicated' | 'none';

export interface AttestedSubmodule {
  readonly name: string;
  readonly status: EarStatus;
  readonly tee: string | null;
  readonly measurements: Readonly<Record<string, string>>;
  readonly residency: string | null;
  /** The tenant the workload was attested for, when the trust service bound one. */
  readonly tenant: string | null;
}

/** A verified token, parsed into what the key release policy needs. */
export interface AttestationResult {
  /** Empty when the token has no `iss`. */
  readonly issuer: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  readonly submodules: readonly AttestedSubmodule[];
}

export interface TokenVerifierOptions {
  /** The trust service's JWKS: the key set itself, or an https URL to fetch it from. */
  readonly jwks: JSONWebKeySet | URL;
  /**
   * The trust service's `iss`. The key server always sets it; it is optional here because tokens
   * from Trustee's attestation service carry no `iss` (see testdata/protocol/ear).
   */
  readonly issuer?: string;
  /** Tokens older than this (by `iat`) are refused even before `exp`. */
  readonly maxAgeSeconds: number;
  readonly now: () => Date;
}

/** Signature algorithms the trust service uses; anything else (`none`, HS256, RS256) is refused. */
const ALGORITHMS = ['ES256', 'EdDSA'];
const CLOCK_TOLERANCE_SECONDS = 5;
const MAX_TOKEN_LENGTH = 16 * 1024;

export type AttestationTokenVerifier = (token: string) => Promise<AttestationResult>;

export function attestationTokenVerifier(options: TokenVerifierOptions): AttestationTokenVerifier {
  const keys: JWTVerifyGetKey =
    options.jwks instanceof URL ? createRemoteJWKSet(options.jwks) : createLocalJWKSet(options.jwks);
  return async (token) => {
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) {
      throw new TresorError(
        'ATTESTATION_TOKEN_INVALID',
        'no attestation token (or one of implausible size) was presented',
      );
    }
    let payload: Record<string, unknown>;
    try {
      ({ payload } = await jwtVerify(token, keys, {
        algorithms: ALGORITHMS,
        ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
        requiredClaims: ['iat', 'exp'],
        maxTokenAge: options.maxAgeSeconds,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: options.now(),
      }));
    } catch (cause) {
      throw tokenFailure(cause);
    }
    return parseEarClaims(payload);
  };
}

function tokenFailure(cause: unknown): TresorError {
  // jose reports both a past `exp` and an `iat` older than maxTokenAge as JWTExpired.
  if (cause instanceof errors.JWTExpired) {
    return new TresorError('ATTESTATION_TOKEN_EXPIRED', `the attestation token is too old (${cause.claim})`, {
      cause,
    });
  }
  if (cause instanceof errors.JOSEError) {
    return new TresorError('ATTESTATION_TOKEN_INVALID', `the attestation token was refused (${cause.code})`, {
      cause,
    });
  }
  return new TresorError('ATTESTATION_TOKEN_INVALID', 'the attestation token could not be verified', {
    cause,
  });
}

const STATUSES: readonly EarStatus[] = ['affirming', 'warning', 'contraindicated', 'none'];

/** Parses the EAR claims of a token whose signature already verified (still untrusted in shape). */
export function parseEarClaims(payload: Record<string, unknown>): AttestationResult {
  const bad = (detail: string): TresorError =>
    new TresorError('ATTESTATION_TOKEN_INVALID', `the attestation token is not an EAR: ${detail}`);
  const { iss, iat, exp, submods } = payload;
  if (typeof iat !== 'number' || typeof exp !== 'number') throw bad('iat or exp missing');
  if (iss !== undefined && typeof iss !== 'string') throw bad('iss is not a string');
  if (typeof submods !== 'object' || submods === null || Array.isArray(submods)) throw bad('submods missing');
  const submodules = Object.entries(submods as Record<string, unknown>).map(
    ([name, value]): AttestedSubmodule => {
      if (typeof value !== 'object' || value === null) throw bad(`submod ${name} is not an object`);
      const claims = value as Record<string, unknown>;
      const status = claims[EAR_TRUST_STATUS];
      if (!STATUSES.includes(status as EarStatus)) throw bad(`submod ${name} has no valid ear.status`);
      const tee = claims[TRESOR_TEE_CLAIM];
      const residency = claims[TRESOR_RESIDENCY_CLAIM];
      const tenant = claims[TRESOR_TENANT_CLAIM];
      return {
        name,
        status: status as EarStatus,
        tee: typeof tee === 'string' ? tee : null,
        measurements: parseMeasurements(claims[TRESOR_MEASUREMENTS_CLAIM], name, bad),
        residency: typeof residency === 'string' ? residency : null,
        tenant: typeof tenant === 'string' ? tenant : null,
      };
    },
  );
  if (submodules.length === 0) throw bad('submods is empty');
  return { issuer: iss ?? '', issuedAt: new Date(iat * 1000), expiresAt: new Date(exp * 1000), submodules };
}

function parseMeasurements(
  value: unknown,
  submod: string,
  bad: (detail: string) => TresorError,
): Readonly<Record<string, string>> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw bad(`submod ${submod}: ${TRESOR_MEASUREMENTS_CLAIM} is not an object`);
  }
  const out: Record<string, string> = {};
  for (const [name, digest] of Object.entries(value as Record<string, unknown>)) {
    if (typeof digest !== 'string' || !/^[0-9a-fA-F]*$/.test(digest)) {
      throw bad(`submod ${submod}: measurement ${name} is not hex`);
    }
    out[name] = digest.toLowerCase();
  }
  return out;
}
