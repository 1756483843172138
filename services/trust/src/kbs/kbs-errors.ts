import type { ErrorCode, TresorError } from '@tresor/protocol';
import type { ErrorShaper } from '@tresor/server-kit';
import { KBS_ERROR_TYPE_PREFIX, KBS_PREFIX } from './protocol.js';

/**
 * Refusals in Trustee's shape (kbs/src/error.rs): body `{"type": "<prefix>/<Variant>", "detail": "…"}`
 * with no `title` or `status`, and status 404 for InvalidRequestPath and PluginNotFound, 401 for
 * everything else — including a policy denial, which the protocol document says is 403 but the code
 * answers 401 (guest-components re-attests on 401). The Tresor catalogue code leads the detail and
 * is in the `tresor-error-code` header.
 *
 * Three answers Trustee's error type never produces: an oversized body is 413 (actix's payload limit
 * answers 413 before the KBS sees the request), a full session table 429, and an outage of a
 * dependency (the keystore, the resource storage: catalogue status 503) 503 — a 401 would tell the
 * workload to throw its session away and re-attest, which cannot help while the HSM is down.
 */
export type KbsErrorVariant =
  | 'AttestationError'
  | 'InvalidRequestPath'
  | 'JweError'
  | 'PluginInternalError'
  | 'PolicyDeny'
  | 'TokenNotFound'
  | 'TokenVerifierError'
  | 'PayloadTooLarge';

const PATH_CODES: readonly ErrorCode[] = ['ROUTE_NOT_FOUND', 'RESOURCE_PATH_INVALID'];
const TOKEN_CODES: readonly ErrorCode[] = [
  'ATTESTATION_TOKEN_INVALID',
  'ATTESTATION_TOKEN_EXPIRED',
  'ATTESTATION_TOKEN_NOT_AFFIRMING',
];

/** Dependency outages: retryable as they are, on the same session. */
const OUTAGE_CODES: readonly ErrorCode[] = ['KEYSTORE_UNAVAILABLE', 'STORAGE_UNAVAILABLE', 'STORAGE_BUSY'];

function isResourceRoute(url: string): boolean {
  return url.startsWith(`${KBS_PREFIX}/resource/`);
}

/** The Trustee error variant and status for a catalogue error on a KBS route. */
export function kbsErrorVariant(
  error: TresorError,
  url: string,
): { variant: KbsErrorVariant; status: number } {
  const code = error.code;
  if (PATH_CODES.includes(code)) return { variant: 'InvalidRequestPath', status: 404 };
  if (code === 'REQUEST_BODY_TOO_LARGE') return { variant: 'PayloadTooLarge', status: 413 };
  if (code === 'RATE_LIMITED') return { variant: 'AttestationError', status: 429 };
  if (OUTAGE_CODES.includes(code)) {
    return { variant: isResourceRoute(url) ? 'PluginInternalError' : 'AttestationError', status: 503 };
  }
  if (code === 'POLICY_DENIED') return { variant: 'PolicyDeny', status: 401 };
  if (TOKEN_CODES.includes(code)) {
    return { variant: error.details?.missing === true ? 'TokenNotFound' : 'TokenVerifierError', status: 401 };
  }
  if (isResourceRoute(url)) {
    if (code === 'TEE_PUBLIC_KEY_INVALID') return { variant: 'JweError', status: 401 };
    if (code.startsWith('KBS_SESSION')) return { variant: 'TokenNotFound', status: 401 };
    // Trustee's resource plugin reports a missing resource and storage failures this way.
    if (code !== 'RESIDENCY_VIOLATION') return { variant: 'PluginInternalError', status: 401 };
  }
  return { variant: 'AttestationError', status: 401 };
}

export const kbsErrorShaper: ErrorShaper = (error, request) => {
  const { variant, status } = kbsErrorVariant(error, request.url);
  return {
    status,
    body: { type: `${KBS_ERROR_TYPE_PREFIX}/${variant}`, detail: `${error.code}: ${error.message}` },
  };
};
