/**
 * Constants of the Trustee KBS attestation protocol (testdata/protocol/kbs/KBS.md, read from
 * confidential-containers/trustee kbs/src at 78962cd4 and guest-components kbs_protocol).
 */

/** Every route lives under this prefix (api_server.rs `KBS_PREFIX`). */
export const KBS_PREFIX = '/kbs/v0';

/**
 * The one protocol version the server accepts: Trustee requires semver `=0.4.0` (backend.rs
 * KBS_MAJOR/MINOR/PATCH_VERSION) and guest-components sends "0.4.0" (KBS_PROTOCOL_VERSION). The
 * prose protocol document still shows "0.1.1"; it is stale.
 */
export const KBS_PROTOCOL_VERSION = '0.4.0';

/** Session cookie name (session.rs `KBS_SESSION_ID`). */
export const KBS_SESSION_COOKIE = 'kbs-session-id';

/** Error `type` prefix (error.rs `ERROR_TYPE_PREFIX`); the Rust enum variant name follows. */
export const KBS_ERROR_TYPE_PREFIX = 'https://github.com/confidential-containers/kbs/errors';

/** Bytes of challenge nonce (backend.rs `NONCE_SIZE_BYTES`), sent as standard base64 with padding. */
export const KBS_NONCE_BYTES = 32;

/** Default session lifetime: Trustee's attestation `timeout`, 5 minutes from /auth, not extended by /attest. */
export const DEFAULT_SESSION_TTL_SECONDS = 300;

/** TEE names as the Request `tee` member spells them (kbs-types `Tee`, lower case). */
export const KBS_TEE_NAMES = [
  'az-snp-vtpm',
  'az-tdx-vtpm',
  'nvidia',
  'sgx',
  'snp',
  'tdx',
  'cca',
  'csv',
  'se',
  'hygondcu',
  'tpm',
  'sample',
  'sampledevice',
] as const;
export type KbsTeeName = (typeof KBS_TEE_NAMES)[number];

/** TEEs this trust service verifies as primary (CPU) evidence. */
export const PRIMARY_TEES = ['sample', 'snp', 'tdx'] as const;
export type PrimaryTee = (typeof PRIMARY_TEES)[number];

/** Devices this trust service verifies as additional evidence (composite CPU + GPU). */
export const ADDITIONAL_TEES = ['nvidia'] as const;
export type AdditionalTee = (typeof ADDITIONAL_TEES)[number];
