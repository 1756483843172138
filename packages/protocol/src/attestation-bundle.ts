/**
 * The attestation bundle: what a client fetches from `GET /.well-known/tresor/attestation?nonce=<hex>`
 * before it sends a byte, and what a serving replica answers at `GET /attestation?nonce=<hex>`.
 *
 * Binding rule (DESIGN.md §3): each component's TEE report_data is SHA-384 of the RFC 8785 canonical
 * JSON of its `runtimeData`, zero-padded to 64 bytes. `runtimeData` therefore names every key the
 * component uses: a verifier recomputes the hash from the object it received and compares.
 */

/** Version of the bundle and runtime-data shapes below; bump on any incompatible change. */
export const ATTESTATION_BUNDLE_VERSION = 1;
/** Where the gateway publishes its bundle. */
export const ATTESTATION_BUNDLE_PATH = '/.well-known/tresor/attestation';
/** Where a serving replica publishes its own evidence (mesh-internal, also public read-only). */
export const SERVING_ATTESTATION_PATH = '/attestation';
/** Nonces are 32 random bytes, lowercase hex (64 digits). */
export const ATTESTATION_NONCE_HEX_LENGTH = 64;

/** A component that runs in a TEE and attests itself to clients. */
export type AttestedComponent = 'gateway' | 'serving';

/** A model a serving replica has loaded: its id and the SHA-256 of its plaintext (sealed header). */
export interface LoadedModelDigest {
  readonly id: string;
  /** Lowercase hex SHA-256 of the plaintext model (the sealed header's `sha256`). */
  readonly sha256: string;
}

/**
 * The JSON object whose canonical hash is the report_data. Members absent for a component are
 * omitted (never null), so the canonical JSON is unambiguous.
 */
export interface RuntimeData {
  /** Always {@link ATTESTATION_BUNDLE_VERSION}. */
  readonly version: number;
  readonly component: AttestedComponent;
  /** The caller's nonce, lowercase hex, echoed exactly. */
  readonly nonce: string;
  /**
   * The HPKE public key this component decrypts with, as one RFC 9458 §3 key configuration,
   * base64url without padding: the gateway's OHTTP key config, or the serving replica's.
   */
  readonly hpkeKeyConfig: string;
  /** Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo of the component's TLS certificate. */
  readonly tlsSpkiSha256: string;
  /** Lowercase hex SHA-256 of the GPU evidence bytes (base64-decoded `gpu.evidence`), when a GPU attests. */
  readonly gpuEvidenceSha256?: string;
  /** Serving only: the models it has loaded, sorted by id. */
  readonly models?: readonly LoadedModelDigest[];
  /** Serving only: the Ed25519 public key (JWK, `kty: OKP`, `crv: Ed25519`, `x`) signing response receipts. */
  readonly receiptKey?: { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string };
}

/** One component's evidence, as it travels in the bundle. */
export interface ComponentEvidence {
  readonly component: AttestedComponent;
  /** Replica id (stable for the process lifetime), e.g. `serving-1a2b3c`. */
  readonly id: string;
  /** TEE kind as packages/attestation names it: `snp`, `tdx` or `sample`. */
  readonly tee: 'snp' | 'tdx' | 'sample';
  /** The raw CPU evidence bytes (what the attestation verifier for `tee` reads), standard base64. */
  readonly evidence: string;
  readonly runtimeData: RuntimeData;
  /** NVIDIA GPU evidence (nvtrust JSON list, as `additional_evidence.nvidia` carries it), standard base64. */
  readonly gpu?: { readonly evidence: string };
  /** ISO 8601 time the evidence was produced. */
  readonly producedAt: string;
}

/** What `GET /.well-known/tresor/attestation?nonce=<hex>` answers (`application/json`). */
export interface AttestationBundle {
  readonly version: number;
  /** The nonce the client sent; every component's runtimeData.nonce equals it. */
  readonly nonce: string;
  readonly gateway: ComponentEvidence;
  /** Every serving replica the gateway currently routes to, each attested with the same nonce. */
  readonly serving: readonly ComponentEvidence[];
  /** Reference values signed by the trust service (compact JWS, as `GET /trust/v0/...` of the trust service serves it). */
  readonly referenceValues: string;
  /** Residency inventory signed by the trust service (compact JWS). */
  readonly residencyInventory: string;
  /** The trust service's base URL, for clients that fetch its JWKS themselves. */
  readonly trustUrl?: string;
}

/**
 * A response receipt (compact JWS, EdDSA, signed with the serving replica's attested receipt key).
 * Non-streaming responses carry it in the inner response header {@link RECEIPT_HEADER}; streaming
 * responses end with an SSE comment line `: tresor-receipt <jws>` that OpenAI clients ignore.
 */
export interface ReceiptClaims {
  /** Lowercase hex SHA-256 of the inner request body as serving received it. */
  readonly requestSha256: string;
  /** Lowercase hex SHA-256 of the response body (for streams: of every SSE byte before the receipt line). */
  readonly responseSha256: string;
  readonly model: string;
  /** SHA-256 of the model's plaintext, as in runtimeData.models. */
  readonly modelSha256: string;
  /** Lowercase hex SHA-256 of the serving replica's CPU evidence bytes. */
  readonly evidenceSha256: string;
  /** The replica id. */
  readonly replica: string;
  /** Seconds since the epoch. */
  readonly iat: number;
}
export const RECEIPT_HEADER = 'tresor-receipt';
export const RECEIPT_SSE_PREFIX = ': tresor-receipt ';
/**
 * A streaming inner request carrying the header {@link USAGE_REQUEST_HEADER} (any value) gets,
 * after the receipt line (so no receipt covers it), one more SSE comment
 * `: tresor-usage {"prompt_tokens":N,"completion_tokens":M}` whether or not the client asked for
 * `stream_options.include_usage`. The gateway sets the header, counts tokens from that line and
 * removes it: it never rewrites a request body, so the client's receipt covers exactly what it
 * sent and saw. Header values are not part of a receipt's requestSha256 (the body only).
 */
export const USAGE_REQUEST_HEADER = 'tresor-usage';
export const USAGE_SSE_PREFIX = ': tresor-usage ';
