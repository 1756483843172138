import { describe, expect, it } from 'vitest';
import { TresorError, type ErrorCode } from '@tresor/protocol';
import { kbsErrorVariant } from './kbs-errors.js';

const AUTH = '/kbs/v0/auth';
const RESOURCE = '/kbs/v0/resource/a/b/c';

describe('Trustee error variants and statuses', () => {
  it.each<[ErrorCode, string, string, number]>([
    ['KBS_PROTOCOL_VERSION_UNSUPPORTED', AUTH, 'AttestationError', 401],
    ['INPUT_MALFORMED', AUTH, 'AttestationError', 401],
    ['REPORT_DATA_MISMATCH', '/kbs/v0/attest', 'AttestationError', 401],
    ['ROUTE_NOT_FOUND', '/kbs/v0/nothing', 'InvalidRequestPath', 404],
    ['RESOURCE_PATH_INVALID', RESOURCE, 'InvalidRequestPath', 404],
    ['POLICY_DENIED', RESOURCE, 'PolicyDeny', 401],
    ['ATTESTATION_TOKEN_EXPIRED', RESOURCE, 'TokenVerifierError', 401],
    ['RESOURCE_NOT_FOUND', RESOURCE, 'PluginInternalError', 401],
    ['KEY_DISABLED', RESOURCE, 'PluginInternalError', 401],
    ['TEE_PUBLIC_KEY_INVALID', RESOURCE, 'JweError', 401],
    ['TEE_PUBLIC_KEY_INVALID', '/kbs/v0/attest', 'AttestationError', 401],
    ['RESIDENCY_VIOLATION', RESOURCE, 'AttestationError', 401],
    ['KBS_SESSION_EXPIRED', RESOURCE, 'TokenNotFound', 401],
    ['REQUEST_BODY_TOO_LARGE', AUTH, 'PayloadTooLarge', 413],
    ['RATE_LIMITED', AUTH, 'AttestationError', 429],
    ['KEYSTORE_UNAVAILABLE', RESOURCE, 'PluginInternalError', 503],
    ['KEYSTORE_UNAVAILABLE', '/kbs/v0/attest', 'AttestationError', 503],
    ['STORAGE_UNAVAILABLE', RESOURCE, 'PluginInternalError', 503],
    ['STORAGE_BUSY', '/kbs/v0/attest', 'AttestationError', 503],
    ['INTERNAL_ERROR', RESOURCE, 'PluginInternalError', 401],
  ])('%s on %s → %s %d', (code, url, variant, status) => {
    expect(kbsErrorVariant(new TresorError(code), url)).toEqual({ variant, status });
  });

  it('names a missing token TokenNotFound', () => {
    const missing = new TresorError('ATTESTATION_TOKEN_INVALID', 'none', { details: { missing: true } });
    expect(kbsErrorVariant(missing, RESOURCE).variant).toBe('TokenNotFound');
  });
});
