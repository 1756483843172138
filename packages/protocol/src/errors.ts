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
