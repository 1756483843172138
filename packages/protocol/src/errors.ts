/**
 * The closed catalogue of Tresor error codes (DESIGN.md §5).
 *
 * Rules:
 * - Append-only: a code, once released, is never renamed, removed or given another meaning,
 *   because customers and other tools script against it. `catalogue.lock` (beside this file)
 *   lists every released code in order and a test refuses any change that is not an append.
 * - Every code has the HTTP status a server answers with, the CLI exit code (1 = refused or
 *   failed verification, 2 = usage error or unreadable input), a one-line meaning and the
 *   action a user should take. `docs/errors.md` is generated from this table
 *   (`npm run docs:errors`) and a test keeps the two in sync.
 */

export interface ErrorSpec {
  /** HTTP status a server answers with. */
  readonly status: number;
  /** Exit code of a `tresor` command that fails with this code. */
  readonly exit: 1 | 2;
  /** One line: what happened. */
  readonly meaning: string;
  /** One line: what the user should do about it. */
  readonly action: string;
}

const spec = (status: number, exit: 1 | 2, meaning: string, action: string): ErrorSpec => ({
  status,
  exit,
  meaning,
  action,
});

export const ERROR_CATALOGUE = {
  // ── General ────────────────────────────────────────────────────────────────────────────
  USAGE_INVALID: spec(
    400,
    2,
    'The command line or request is not well formed.',
    'Check the arguments against `tresor <command> --help` or the API reference.',
  ),
  INPUT_UNREADABLE: spec(
    400,
    2,
    'An input file could not be read.',
    'Check that the path exists and is readable by this user.',
  ),
  INPUT_MALFORMED: spec(
    400,
    2,
    'An input is not in the expected format.',
    'Check that the file is the kind of input the command asks for (see its --help).',
  ),
  OUTPUT_UNWRITABLE: spec(
    500,
    2,
    'An output file could not be written.',
    'Check that the target directory exists, is writable and has free space.',
  ),
  CONFIG_INVALID: spec(
    500,
    2,
    'A configuration file is invalid.',
    'Fix the field named in the message; `docs/operations.md` lists every setting.',
  ),
  INTERNAL_ERROR: spec(
    500,
    1,
    'An unexpected internal error occurred; no data was released.',
    'Retry; if it persists, report it with the time and the request id (never the prompt).',
  ),

  // ── Cryptography: HPKE, OHTTP, BHTTP, JCS ──────────────────────────────────────────────
  HPKE_SUITE_UNSUPPORTED: spec(
    400,
    1,
    'The HPKE KEM, KDF or AEAD identifier is not one Tresor supports.',
    'Use DHKEM(X25519, HKDF-SHA256) or X-Wing with HKDF-SHA256 and AES-256-GCM.',
  ),
  HPKE_KEY_INVALID: spec(
    400,
    2,
    'An HPKE public or private key has the wrong length or encoding.',
    'Re-fetch the key configuration from /.well-known/ohttp-gateway.',
  ),
  OHTTP_KEY_CONFIG_MALFORMED: spec(
    400,
    2,
    'An OHTTP key configuration (RFC 9458 §3) could not be decoded.',
    'Re-fetch /.well-known/ohttp-gateway; the configuration list is corrupt or truncated.',
  ),
  OHTTP_KEY_ID_UNKNOWN: spec(
    400,
    1,
    'The OHTTP request names a key id the gateway does not hold.',
    'Re-fetch the key configuration from /.well-known/ohttp-gateway; the gateway key has rotated.',
  ),
  OHTTP_MESSAGE_MALFORMED: spec(
    400,
    1,
    'An encapsulated OHTTP request or response is malformed or truncated.',
    'Resend the request through an up-to-date Tresor client.',
  ),
  OHTTP_DECRYPT_FAILED: spec(
    400,
    1,
    'An encapsulated OHTTP message failed authentication; it was tampered with or sealed to another key.',
    'Re-fetch the key configuration and resend; if it persists, the path is being tampered with.',
  ),
  OHTTP_CHUNK_TOO_LARGE: spec(
    413,
    1,
    'A chunk of a chunked OHTTP message exceeds the configured maximum size.',
    'Send smaller chunks (the limit is in the gateway configuration).',
  ),
  OHTTP_STREAM_TRUNCATED: spec(
    400,
    1,
    'A chunked OHTTP stream ended without its authenticated final chunk.',
    'Resend the request; the connection was cut or the stream was truncated.',
  ),
  BHTTP_MALFORMED: spec(
    400,
    1,
    'A Binary HTTP message (RFC 9292) is malformed or truncated.',
    'Resend the request through an up-to-date Tresor client.',
  ),
  JCS_VALUE_INVALID: spec(
    400,
    2,
    'A value cannot be canonicalised as RFC 8785 JSON (NaN, Infinity or a non-JSON type).',
    'Pass only JSON values (strings, finite numbers, booleans, null, arrays, objects).',
  ),

  // ── Sealed models (.tresor) ────────────────────────────────────────────────────────────
  SEALED_MODEL_MALFORMED: spec(
    400,
    2,
    'The file is not a sealed Tresor model or its header is corrupt.',
    'Check that the file is a .tresor file written by `tresor model seal`.',
  ),
  SEALED_MODEL_VERSION_UNSUPPORTED: spec(
    400,
    2,
    'The sealed model uses a format version this build does not read.',
    'Upgrade Tresor, or re-seal the model with this version.',
  ),
  SEALED_MODEL_KEY_INVALID: spec(
    400,
    2,
    'The model key is not 32 raw bytes or 64 hex characters.',
    'Provide a 256-bit key: 32 raw bytes or 64 hex characters.',
  ),
  SEALED_MODEL_WRONG_KEY: spec(
    403,
    1,
    'The key does not match the key the model was sealed with.',
    'Use the key named by the key id in `tresor model inspect`.',
  ),
  SEALED_MODEL_TAMPERED: spec(
    400,
    1,
    'A chunk of the sealed model failed authentication: the file was modified, reordered or its header swapped.',
    'Restore the model from a trusted copy; do not load this file.',
  ),
  SEALED_MODEL_TRUNCATED: spec(
    400,
    1,
    'The sealed model ends before its final chunk.',
    'Restore the complete file from a trusted copy (the copy was cut short).',
  ),
  SEALED_MODEL_DIGEST_MISMATCH: spec(
    400,
    1,
    'The decrypted model does not match the SHA-256 or length recorded in its header.',
    'Restore the model from a trusted copy and re-seal it.',
  ),
  SEALED_MODEL_ALGORITHM_UNSUPPORTED: spec(
    400,
    2,
    'The sealed model names an encryption algorithm this build does not implement.',
    'Upgrade Tresor, or re-seal the model with this version.',
  ),
  SEALED_MODEL_INPUT_CHANGED: spec(
    409,
    1,
    'The model file changed while it was being sealed; no sealed output was written.',
    'Seal again once nothing else is writing to the model file.',
  ),

  // ── Attestation ────────────────────────────────────────────────────────────────────────
  ATTESTATION_EVIDENCE_MALFORMED: spec(
    400,
    2,
    'The attestation evidence could not be parsed.',
    'Check that the file is a raw or hex report/quote of the TEE kind named by --tee.',
  ),
  ATTESTATION_TEE_UNSUPPORTED: spec(
    400,
    2,
    'The TEE kind is not supported or could not be recognised from the evidence.',
    'Name the TEE kind with --tee (snp, tdx, nvidia, sample).',
  ),
  ATTESTATION_SIGNATURE_INVALID: spec(
    401,
    1,
    'The evidence signature does not verify with the signing key.',
    'The evidence was altered or signed by another key; collect fresh evidence from the TEE.',
  ),
  ATTESTATION_CERT_CHAIN_INVALID: spec(
    401,
    1,
    'The certificate chain does not verify up to the vendor root.',
    'Supply the signer certificate and CA chain issued for this chip (AMD KDS, Intel PCS, NVIDIA).',
  ),
  ATTESTATION_ROOT_UNTRUSTED: spec(
    401,
    1,
    'The chain ends in a root that is not the pinned vendor root for this product.',
    'Use the vendor CA chain for the processor product in the report (e.g. Milan vs Genoa).',
  ),
  ATTESTATION_CERT_NOT_YET_VALID: spec(
    401,
    1,
    'A certificate in the chain is not yet valid at the verification time.',
    'Check the verification time (--at) and the system clock.',
  ),
  ATTESTATION_CERT_EXPIRED: spec(
    401,
    1,
    'A certificate in the chain has expired at the verification time.',
    'Fetch a current certificate for this chip (VLEKs live about a year).',
  ),
  ATTESTATION_CERT_REVOKED: spec(
    401,
    1,
    'A certificate in the chain is listed in the supplied CRL.',
    'The key was revoked by the vendor; this hardware must not be trusted.',
  ),
  ATTESTATION_CRL_INVALID: spec(
    401,
    1,
    'A supplied certificate revocation list is not signed by its issuer or is out of date.',
    'Fetch a current CRL from the vendor.',
  ),
  ATTESTATION_TCB_MISMATCH: spec(
    401,
    1,
    "The signing certificate's TCB does not equal the TCB the report claims.",
    'Fetch the VCEK for the reported TCB of this report (AMD KDS).',
  ),
  ATTESTATION_CHIP_ID_MISMATCH: spec(
    401,
    1,
    "The signing certificate's hardware id does not equal the report's chip id.",
    'Fetch the VCEK issued for this chip; the certificate belongs to another processor.',
  ),
  ATTESTATION_DEBUG_ENABLED: spec(
    401,
    1,
    'The TEE allows debugging, so its memory is readable by the host.',
    'Launch the confidential VM or TD with debug disabled.',
  ),
  ATTESTATION_POLICY_VIOLATION: spec(
    401,
    1,
    'The TEE launch policy allows something the appraisal policy forbids (migration agent, SMT, ABI).',
    'Relaunch the guest with the policy bits the appraisal policy requires.',
  ),
  ATTESTATION_VMPL_NOT_ALLOWED: spec(
    401,
    1,
    'The report was produced at a VM privilege level the policy does not allow.',
    'Request the report from an allowed VMPL (usually 0).',
  ),
  ATTESTATION_QE_REPORT_INVALID: spec(
    401,
    1,
    'The TDX quoting enclave report is not signed by the PCK key or does not bind the attestation key.',
    'The quote is forged or corrupt; collect a fresh quote.',
  ),
  ATTESTATION_COLLATERAL_INVALID: spec(
    401,
    1,
    'Collateral (TCB info, QE identity, CRL) is not signed by the vendor or does not match the quote.',
    'Fetch fresh collateral from Intel PCS for this FMSPC.',
  ),
  ATTESTATION_COLLATERAL_EXPIRED: spec(
    401,
    1,
    'Collateral (TCB info, QE identity or CRL) is past its nextUpdate at the verification time.',
    'Fetch fresh collateral from Intel PCS.',
  ),
  TCB_OUT_OF_DATE: spec(
    401,
    1,
    'The platform TCB is older than the policy minimum or is rated OutOfDate.',
    'Update the platform firmware/microcode and collect fresh evidence.',
  ),
  TCB_REVOKED: spec(
    401,
    1,
    'The platform TCB level is revoked by the vendor.',
    'Update the platform; this TCB level must not be trusted.',
  ),
  TCB_UNRECOGNISED: spec(
    401,
    1,
    'No TCB level in the collateral matches the platform.',
    'Update the platform firmware, or fetch collateral that lists its TCB.',
  ),
  MEASUREMENT_NOT_ALLOWED: spec(
    403,
    1,
    'The launch measurement is not in the allowed reference values.',
    'Deploy a released image, or register its measurement as a signed reference value.',
  ),
  REPORT_DATA_MISMATCH: spec(
    401,
    1,
    'The report data does not bind the presented runtime data (keys, nonce).',
    'The evidence belongs to another key or session; collect evidence for this session.',
  ),
  EVIDENCE_STALE: spec(
    401,
    1,
    'The evidence is older than the policy allows, or its nonce is not the one requested.',
    'Collect fresh evidence with the current nonce.',
  ),
  RESIDENCY_VIOLATION: spec(
    403,
    1,
    'The hardware is not in the signed residency inventory for the required jurisdiction.',
    'Run the workload on hardware listed in the inventory (Switzerland only).',
  ),
  GPU_EVIDENCE_NOT_BOUND: spec(
    401,
    1,
    "The CPU report's runtime data does not contain the hash of the GPU evidence.",
    'Collect GPU evidence first and bind its hash into the CPU report data.',
  ),
  GPU_NONCE_MISMATCH: spec(
    401,
    1,
    'The GPU evidence does not carry the requested nonce.',
    'Collect GPU evidence with the current nonce.',
  ),
  GPU_MEASUREMENT_MISMATCH: spec(
    401,
    1,
    'A GPU measurement does not match the reference manifest.',
    'Update the GPU driver/VBIOS to a released version, or supply the right reference manifest.',
  ),
  SAMPLE_TEE_NOT_ALLOWED: spec(
    403,
    1,
    'The evidence comes from the sample (software) TEE, which protects nothing.',
    'Use real TEE hardware, or allow the sample TEE explicitly for local development only.',
  ),
  ATTESTATION_COLLATERAL_MISSING: spec(
    401,
    1,
    'The policy needs a TCB status from vendor collateral, but the evidence was verified without collateral.',
    'Supply the collateral (TDX: --collateral from Intel PCS), or set tcb.requireStatus to false in the policy.',
  ),
  COLLATERAL_FETCH_FAILED: spec(
    502,
    1,
    'A collateral service (AMD KDS, Intel PCS, NVIDIA RIM) could not be reached or kept failing after retries.',
    'Check the network, proxy and the service URL (--kds-url, --pcs-url, --rim-url), then retry later.',
  ),
  COLLATERAL_NOT_FOUND: spec(
    404,
    1,
    'The collateral service has no document for this request (chip ID and TCB, FMSPC, or RIM ID).',
    'Check that the evidence comes from genuine hardware of the product named, or that the RIM ID is right.',
  ),
  COLLATERAL_RESPONSE_INVALID: spec(
    502,
    1,
    'The collateral service answered with something that is not the document asked for.',
    'Check that the service URL points at AMD KDS, Intel PCS (or a PCCS) or the NVIDIA RIM service.',
  ),
  COLLATERAL_RESPONSE_TOO_LARGE: spec(
    502,
    1,
    'A collateral service response exceeded the size limit, so it was refused unread.',
    'Check the service URL; real certificates, CRLs, TCB info and RIMs are far smaller than the limit.',
  ),
  COLLATERAL_UNAVAILABLE: spec(
    422,
    1,
    'The evidence names no collateral a vendor service publishes (unsigned report, masked chip ID).',
    'Get the signing certificate from the cloud provider (extended guest request), or launch the guest without MASK_CHIP_ID.',
  ),

  // ── Keys, policy, gateway (used by later components) ──────────────────────────────────
  KEY_REVOKED: spec(
    403,
    1,
    "The tenant's key has been revoked by its owner.",
    'Ask the key owner to reinstate the key.',
  ),
  POLICY_DENIED: spec(
    403,
    1,
    'The authorization policy denies this request.',
    'Ask the tenant administrator to grant this model and operation.',
  ),
  RATE_LIMITED: spec(
    429,
    1,
    'Too many requests; the rate limit is exhausted.',
    'Wait for the time in Retry-After, then retry.',
  ),

  // ── Keys: keystores (file, PKCS#11 HSM, KYOK key server), BYOK import, envelope encryption ──
  KEY_NOT_FOUND: spec(
    404,
    1,
    'The keystore holds no key with this id.',
    'Check the key id against `tresor keys list`.',
  ),
  KEY_DISABLED: spec(
    403,
    1,
    'The key is disabled: it cannot wrap, unwrap or sign until it is enabled again.',
    'Enable the key with `tresor keys enable <id>` if its use is intended.',
  ),
  KEY_DESTROYED: spec(
    410,
    1,
    'The key was destroyed; everything protected by it is unreadable (crypto-shredding).',
    'Nothing can recover data under a destroyed key; create a new key for new data.',
  ),
  KEY_USAGE_INVALID: spec(
    400,
    1,
    'The key cannot be used for this operation (a KEK cannot sign, a signing key cannot wrap) or the data key is not 256-bit.',
    'Use a key of the kind the operation needs (see `tresor keys list`) and 32-byte data keys.',
  ),
  KEY_UNWRAP_FAILED: spec(
    400,
    1,
    'A wrapped key failed its integrity check: it was wrapped under another key or modified.',
    'Check that the wrapped key is stored with the key id it names; restore it from a trusted copy.',
  ),
  KEY_IMPORT_INVALID: spec(
    400,
    1,
    "Imported key material is not a 256-bit AES key wrapped for this keystore's import key (RSA-OAEP-SHA256 + AES-KWP).",
    'Fetch the import key with `tresor keys import-params` and wrap the key again as docs/keys.md shows.',
  ),
  KEYSTORE_UNAVAILABLE: spec(
    503,
    1,
    'The keystore (HSM module, token or key server) could not be reached or refused the session.',
    'Check the module path, slot or token label, or the key server URL and TLS certificates.',
  ),
  KEYSTORE_AUTH_FAILED: spec(
    401,
    1,
    'The keystore passphrase or PIN is wrong.',
    'Supply the passphrase or PIN the keystore was created with.',
  ),
  KEYSTORE_FILE_INSECURE: spec(
    500,
    1,
    'The keystore file is readable or writable by users other than its owner.',
    'Restrict it to its owner (chmod 600) and check that nobody else read it.',
  ),
  KEYSTORE_FILE_MALFORMED: spec(
    500,
    2,
    'The keystore file is not a Tresor keystore, or it is corrupt or was modified.',
    'Restore the keystore file from its backup.',
  ),
  KEYSTORE_PRODUCTION_REFUSED: spec(
    500,
    2,
    'The file keystore is for local use only and refuses to run in production mode.',
    'Use the pkcs11 (HSM) or kyok (customer key server) keystore in production.',
  ),
  KEYSTORE_OPERATION_UNSUPPORTED: spec(
    501,
    1,
    'The keystore backend or token does not support this operation or mechanism.',
    'Use a token that supports the mechanism named in the message (docs/keys.md lists them).',
  ),
  KEYSTORE_RESPONSE_INVALID: spec(
    502,
    1,
    "The key server's answer is not in the format of the KYOK protocol.",
    'Check that the URL points at a Tresor KYOK key server of a compatible version.',
  ),
  KYOK_CLIENT_FORBIDDEN: spec(
    403,
    1,
    'The client certificate is not allowed to perform this key server operation.',
    "Use an administrator certificate listed in the key server's configuration for key management.",
  ),
  ATTESTATION_TOKEN_INVALID: spec(
    401,
    1,
    "The attestation token is missing, malformed, or not signed by the trust service's keys.",
    "Obtain a fresh token from the trust service; check the key server's trust-service JWKS and issuer.",
  ),
  ATTESTATION_TOKEN_EXPIRED: spec(
    401,
    1,
    'The attestation token has expired or is older than the policy allows.',
    'Re-attest to obtain a fresh attestation token.',
  ),
  ATTESTATION_TOKEN_NOT_AFFIRMING: spec(
    401,
    1,
    'The attestation result in the token is not `affirming`.',
    'Fix what the trust service reported in its appraisal and re-attest.',
  ),
  ENCRYPTED_FIELD_INVALID: spec(
    400,
    1,
    "An encrypted field failed authentication: it was modified, moved to another record, or sealed under another tenant's key.",
    'Restore the record from a trusted backup; encrypted values cannot be copied between records.',
  ),

  // ── Storage: metadata repositories (SQLite, PostgreSQL) and the tamper-evident audit log ──
  STORAGE_UNAVAILABLE: spec(
    503,
    2,
    'The metadata database could not be opened or reached.',
    'Check the state directory (path, permissions) or the PostgreSQL URL, server and credentials.',
  ),
  STORAGE_BUSY: spec(
    503,
    1,
    'The metadata database stayed locked by another writer for longer than the lock timeout.',
    'Retry; if it persists, look for a process that holds a long transaction on the database.',
  ),
  STORAGE_CONFLICT: spec(
    409,
    1,
    'A record with this id already exists; nothing was written.',
    'Use a new id (request ids are unique per request), or read the existing record.',
  ),
  STORAGE_SCHEMA_UNSUPPORTED: spec(
    500,
    2,
    'The database is not a Tresor metadata database, or its schema is newer than this build.',
    'Point Tresor at its own database, or upgrade Tresor to the version that last migrated it.',
  ),
  STORAGE_RECORD_INVALID: spec(
    400,
    2,
    'A record is malformed (one to store, or one read back) or has a field that must never be stored (content, a secret).',
    'Store only the metadata fields docs/storage.md lists; a malformed stored record means the database was edited.',
  ),
  AUDIT_CHAIN_BROKEN: spec(
    500,
    1,
    'An audit record was deleted, edited or reordered: the hash chain does not link at the record named.',
    'Treat the log as tampered with: keep this copy as evidence, restore from a backup, investigate from that record.',
  ),
  AUDIT_LOG_TRUNCATED: spec(
    500,
    1,
    'Audit records covered by a signed checkpoint are missing from the end of the log.',
    'Treat the log as tampered with: keep this copy as evidence and restore the missing records from a backup.',
  ),
  AUDIT_CHECKPOINT_INVALID: spec(
    500,
    1,
    'An audit checkpoint is malformed, or its signature does not verify with the trusted checkpoint key.',
    'Check that the public key given is the audit checkpoint key; if it is, treat the checkpoint as forged.',
  ),

  // ── Admin: signed admin requests, signed trust documents, mesh CA ─────────────────────
  ADMIN_SIGNATURE_MISSING: spec(
    401,
    1,
    'The admin request is not a signed JWS (application/jose); every admin change must be signed.',
    'Send admin requests through `tresor trust admin`, which signs them with your admin key.',
  ),
  ADMIN_KEY_UNKNOWN: spec(
    401,
    1,
    "The admin request is signed by a key the trust service's config does not list.",
    "Sign with an admin key whose public JWK is in the service's admin.keys, or ask an operator to add it.",
  ),
  ADMIN_SIGNATURE_INVALID: spec(
    401,
    1,
    'The admin request signature does not verify: it was altered after signing or signed with another key.',
    'Sign the request again with the private key of the admin key id it names.',
  ),
  ADMIN_REQUEST_REPLAYED: spec(
    409,
    1,
    'This signed admin request (its jti) was already accepted; each signed request is accepted once.',
    'Sign a new request (`tresor trust admin` gives each one a fresh jti).',
  ),
  ADMIN_REQUEST_EXPIRED: spec(
    401,
    1,
    'The admin request was signed too long ago, in the future, or before the trust service started.',
    "Check this machine's clock and sign the request again.",
  ),
  SIGNED_DOCUMENT_INVALID: spec(
    401,
    1,
    'A signed trust document (reference values, residency inventory) is malformed or its signature does not verify with the pinned keys.',
    "Fetch the document again from the trust service and check that the pinned key set is the trust service's.",
  ),
  SIGNED_DOCUMENT_ROLLBACK: spec(
    401,
    1,
    'A signed trust document is older than one already seen, or differs from it under the same version.',
    'Refuse the service that served it; a current trust service never serves an older version.',
  ),
  MESH_CSR_INVALID: spec(
    400,
    2,
    'The certificate signing request is not a PKCS#10 request with a valid self-signature and a supported key.',
    'Send a PEM PKCS#10 CSR signed by the attested key (EC P-256/P-384 or RSA 2048-4096).',
  ),
  MESH_KEY_NOT_ATTESTED: spec(
    403,
    1,
    'The public key in the certificate request is not the key bound into the attestation.',
    'Request the certificate with the key pair whose public key was in the attested runtime data.',
  ),
  ADMIN_TARGET_NOT_FOUND: spec(
    404,
    1,
    'The admin request names a reference value, inventory entry or resource that does not exist.',
    'List what exists with `tresor trust admin list` and name an existing entry.',
  ),
  TRUST_SERVICE_UNREACHABLE: spec(
    503,
    1,
    'The trust service could not be reached, or its TLS certificate is not trusted.',
    'Check --url and that the service runs; name the CA of its certificate with --ca.',
  ),

  // ── Servers (server-kit): request limits, routing, readiness ──────────────────────────
  REQUEST_BODY_TOO_LARGE: spec(
    413,
    2,
    'The request body is larger than this endpoint accepts.',
    'Send a smaller body; the limit per endpoint is in the service configuration (docs/trust.md lists the defaults).',
  ),
  REQUEST_MEDIA_TYPE_UNSUPPORTED: spec(
    415,
    2,
    'The request body has a Content-Type this endpoint does not read.',
    'Send the body as application/json (or the media type the API reference names for this endpoint).',
  ),
  ROUTE_NOT_FOUND: spec(
    404,
    2,
    'No endpoint exists at this method and path.',
    'Check the method and path against the API reference (docs/trust.md for the trust service).',
  ),
  SERVICE_NOT_READY: spec(
    503,
    1,
    'The service is running but a dependency it needs (keystore, database) is not ready.',
    'Retry shortly; if it persists, check the readiness checks named in the /readyz answer.',
  ),

  // ── Trust service: key broker (Trustee KBS protocol), attestation tokens, resources ────
  KBS_PROTOCOL_VERSION_UNSUPPORTED: spec(
    401,
    1,
    'The KBS client asked for a protocol version other than 0.4.0.',
    'Use a KBS client (guest-components attestation agent, `tresor` KBS client) that speaks protocol version 0.4.0.',
  ),
  KBS_SESSION_UNKNOWN: spec(
    401,
    1,
    'The request carries no kbs-session-id cookie, or one naming no session this service holds.',
    'Start again with POST /kbs/v0/auth and send the kbs-session-id cookie it sets.',
  ),
  KBS_SESSION_EXPIRED: spec(
    401,
    1,
    'The KBS session expired before it was used; sessions live a few minutes from /auth.',
    'Start again with POST /kbs/v0/auth and attest within the session lifetime.',
  ),
  KBS_NONCE_REPLAYED: spec(
    401,
    1,
    "The session's challenge nonce was already answered; each nonce is accepted once.",
    'Start a new session with POST /kbs/v0/auth and bind its fresh nonce into new evidence.',
  ),
  TEE_PUBLIC_KEY_INVALID: spec(
    400,
    2,
    'The TEE public key (runtime-data tee-pubkey) is not a supported JWK: EC P-256/P-384/P-521 with ECDH-ES+A256KW, or RSA of at least 2048 bits with RSA-OAEP-256.',
    'Send the ephemeral key as such a JWK (base64url members, `alg` set), as guest-components does.',
  ),
  INIT_DATA_MALFORMED: spec(
    400,
    2,
    'The init-data is not an initdata TOML document (version, algorithm sha256/sha384/sha512, [data] of strings).',
    'Send the init-data document exactly as it was given to the TEE at launch.',
  ),
  INIT_DATA_MISMATCH: spec(
    401,
    1,
    "The init-data digest does not equal the TEE's launch-time value (SNP HOST_DATA, TDX MRCONFIGID), or the TEE bound init-data that was not sent.",
    'Send the init-data the TEE was launched with; a TEE launched with other init-data is another workload.',
  ),
  RESOURCE_PATH_INVALID: spec(
    404,
    2,
    'The resource path is not <repository>/<type>/<tag> of letters, digits, ".", "_" and "-".',
    'Request kbs:///<repository>/<type>/<tag> with three such segments, each 1 to 128 characters.',
  ),
  RESOURCE_NOT_FOUND: spec(
    404,
    1,
    'The trust service holds no resource at this repository/type/tag.',
    'Check the resource path; an administrator registers resources with `tresor trust admin`.',
  ),
  RESOURCE_POLICY_INVALID: spec(
    400,
    2,
    'The resource policy is not valid Cedar for the trust service schema (docs/trust.md).',
    'Fix the policy at the position named in the message and submit it again.',
  ),
  KBS_RESPONSE_INVALID: spec(
    502,
    1,
    'The trust service answered with something that is not a KBS protocol message (or a JWE that does not decrypt).',
    'Check that the URL points at a Tresor trust service or Trustee KBS speaking protocol 0.4.0.',
  ),

  // ── Serving enclave: attested start-up, sealed models, engines ────────────────────────────────
  MODEL_KEY_NOT_RELEASED: spec(
    503,
    1,
    'The serving enclave could not obtain a model key: the trust service refused its attestation or the key release.',
    "Check the trust service's audit log and the refusal code in /readyz; fix the reference values, resource policy or residency inventory, then restart serving.",
  ),
  EVIDENCE_UNAVAILABLE: spec(
    503,
    1,
    'No TEE evidence source is available (no configfs-tsm report interface, no attestation agent, sample TEE not enabled).',
    'Run inside an SNP or TDX guest with /sys/kernel/config/tsm/report, or enable the sample TEE for local development only.',
  ),
  GPU_CC_REQUIRED: spec(
    503,
    1,
    'The policy requires a GPU in confidential-computing mode and none is present or in CC mode.',
    'Enable CC mode on the H100/H200 (nvidia-smi conf-compute) or run with a policy that does not require a GPU.',
  ),
  MODEL_NOT_FOUND: spec(
    404,
    1,
    'No loaded model has this id.',
    'List the models with GET /v1/models and use one of their ids.',
  ),
  MODEL_LOAD_FAILED: spec(
    503,
    1,
    'The engine could not load a decrypted model (not a valid GGUF, too large for memory, unsupported architecture).',
    'Check the model file with `tresor model inspect` and the serving log; re-seal a valid GGUF model.',
  ),
  ENGINE_UNAVAILABLE: spec(
    502,
    1,
    'The inference engine (llama.cpp or the upstream OpenAI-compatible server) failed or is unreachable.',
    'Check that the engine is running and healthy; the serving log names the failure.',
  ),
  SERVING_BUSY: spec(
    503,
    1,
    'Every generation slot is in use and the queue is full.',
    'Wait for the time in Retry-After, then retry; or add serving replicas.',
  ),
  MESH_PEER_NOT_ALLOWED: spec(
    403,
    1,
    "The mTLS peer's mesh certificate does not name an identity allowed to call this endpoint.",
    'Call serving only from an attested gateway holding a mesh certificate from the trust service.',
  ),
  API_REQUEST_INVALID: spec(
    400,
    2,
    'The OpenAI-style request body does not match the API schema.',
    'Fix the request body as the message describes (see the OpenAI API reference for the field).',
  ),

  // ── Gateway: API keys, quotas, routing ────────────────────────────────────────────────────────
  API_KEY_MISSING: spec(
    401,
    1,
    'The request carries no API key.',
    'Send `Authorization: Bearer tr_\u2026` with an API key from your tenant administrator.',
  ),
  API_KEY_INVALID: spec(
    401,
    1,
    'The API key is unknown or malformed.',
    'Check the key (it starts with tr_); ask your tenant administrator for a new one.',
  ),
  API_KEY_EXPIRED: spec(
    401,
    1,
    'The API key has expired.',
    'Ask your tenant administrator for a new key (`tresor key create`).',
  ),
  API_KEY_REVOKED: spec(
    401,
    1,
    'The API key was revoked.',
    'Ask your tenant administrator for a new key (`tresor key create`).',
  ),
  QUOTA_EXHAUSTED: spec(
    429,
    1,
    'The token quota of this key or tenant is used up for the current period.',
    'Wait for the next quota period (Retry-After) or ask your tenant administrator to raise the quota.',
  ),
  REPLICA_UNAVAILABLE: spec(
    503,
    1,
    'No attested, resident serving replica is available for this model.',
    "Retry shortly; operators: check serving readiness and attestation in the gateway's /readyz.",
  ),
  UPSTREAM_FAILED: spec(
    502,
    1,
    'The serving replica failed while answering; the answer is incomplete.',
    'Retry the request; the failed replica was taken out of rotation.',
  ),
  TENANT_NOT_FOUND: spec(
    404,
    1,
    'No tenant has this id.',
    'List tenants with `tresor tenant list` and use one of their ids.',
  ),
  OHTTP_REQUEST_REPLAYED: spec(
    400,
    1,
    'This encapsulated request was already received; each OHTTP request is accepted once.',
    'Send a freshly encapsulated request (the SDK does this for every call).',
  ),

  // ── Client: verification, proxy, receipts ─────────────────────────────────────────────────────
  TRUST_POLICY_INVALID: spec(
    400,
    2,
    'The client trust policy file (tresor-policy.json) does not match its schema.',
    'Fix the policy file as the message says; docs/client.md describes every field.',
  ),
  TLS_KEY_MISMATCH: spec(
    401,
    1,
    "The gateway's TLS certificate key is not the one its attested evidence binds (a man-in-the-middle or a misrouted connection).",
    'Do not send data; connect to the gateway directly, without a TLS-intercepting proxy.',
  ),
  GATEWAY_UNREACHABLE: spec(
    502,
    1,
    "The gateway could not be reached or answered something that is not Tresor's protocol.",
    'Check the gateway URL, the network and the CA certificate (--ca or NODE_EXTRA_CA_CERTS).',
  ),
  VERIFICATION_FAILED: spec(
    401,
    1,
    "The gateway's attestation did not pass every check of the trust policy; nothing was sent.",
    'Read the verification document (`tresor verify <url>`): the failed check names what to fix.',
  ),
  RECEIPT_INVALID: spec(
    502,
    1,
    'A response receipt is missing, malformed, or not signed by the attested serving replica.',
    'Treat the answer as unverified; report it to the operator with the receipt file.',
  ),
  PROXY_BIND_REFUSED: spec(
    400,
    2,
    'The proxy refuses to listen on a non-loopback address: it serves plaintext.',
    'Listen on 127.0.0.1 or ::1, or pass --allow-remote if every client on that network is yours.',
  ),

  // ── Local platform: tresor up ─────────────────────────────────────────────────────────────────
  PORT_IN_USE: spec(
    409,
    2,
    'A port Tresor needs is already taken by another process.',
    'Stop the other process or choose other ports with --port.',
  ),
  CHILD_PROCESS_FAILED: spec(
    500,
    1,
    'A platform process (trust, serving or gateway) exited unexpectedly; the platform was stopped.',
    'Read the last log lines printed above; fix the cause and run `tresor up` again.',
  ),
  DEPLOYMENT_POLICY_VIOLATION: spec(
    500,
    1,
    'Rendered Kubernetes manifests break the deployment policy (a pod outside a confidential runtime class, running as root, using a Secret or a host path).',
    'Nothing was written; fix the values or chart named in the message (docs/deploy.md "Deployment policy").',
  ),
  STATE_DIR_IN_USE: spec(
    409,
    1,
    'Another `tresor up` is already running on this state directory (its lock file names a live process).',
    'Stop the other `tresor up` (Ctrl-C in its terminal, or kill the pid named in the message) or use another --dir.',
  ),
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export const ERROR_CODES: readonly ErrorCode[] = Object.keys(ERROR_CATALOGUE) as ErrorCode[];

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CATALOGUE, value);
}

export function errorSpec(code: ErrorCode): ErrorSpec {
  return ERROR_CATALOGUE[code];
}

export interface TresorErrorOptions {
  readonly cause?: unknown;
  /** Non-secret values that help diagnose the failure (offsets, expected vs. seen digests). */
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * The one error type every Tresor component throws for a failure a user can cause.
 * Its message never contains secrets or content; `details` carries non-secret diagnostics.
 */
export class TresorError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly exit: 1 | 2;
  readonly action: string;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message?: string, options: TresorErrorOptions = {}) {
    const s = ERROR_CATALOGUE[code];
    super(message ?? s.meaning, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TresorError';
    this.code = code;
    this.status = s.status;
    this.exit = s.exit;
    this.action = s.action;
    this.details = options.details;
  }

  toJSON(): {
    code: ErrorCode;
    message: string;
    action: string;
    details?: Readonly<Record<string, unknown>>;
  } {
    return this.details === undefined
      ? { code: this.code, message: this.message, action: this.action }
      : { code: this.code, message: this.message, action: this.action, details: this.details };
  }
}

export function isTresorError(value: unknown): value is TresorError {
  return value instanceof TresorError;
}
