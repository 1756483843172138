import type { Attack, Control } from './attack.js';

/**
 * EXTENSION POINTS: rows for the components being built now. Each list is part of the matrix
 * already (empty lists add nothing); add rows here as the component lands, with a control for each
 * path attacked. `MatrixEnv` (env.ts) is where a started gateway/serving/client environment goes:
 * add a lazily started `gateway()` / `serving()` beside `trust()`.
 *
 * Rows issue #13 asks for, to add:
 *
 * gateway  — missing/invalid/expired/revoked API key (API_KEY_MISSING, API_KEY_INVALID,
 *            API_KEY_EXPIRED, API_KEY_REVOKED); quota exhausted (QUOTA_EXHAUSTED); policy refusal
 *            (POLICY_DENIED); malformed OHTTP over HTTP (OHTTP_MESSAGE_MALFORMED); replayed
 *            encapsulated request (OHTTP_REQUEST_REPLAYED); chunk reordering and length extension
 *            through the HTTP endpoint (OHTTP_DECRYPT_FAILED); oversized frames (OHTTP_CHUNK_TOO_LARGE,
 *            REQUEST_BODY_TOO_LARGE); wrong media type (REQUEST_MEDIA_TYPE_UNSUPPORTED); TLS ≤ 1.2
 *            refused at the handshake (no code: assert the handshake fails); request smuggling
 *            (CL.TE / TE.CL / duplicate Content-Length: a 400, never a second request); slowloris
 *            slow bodies closed by the body timeout.
 * serving  — model key not released (MODEL_KEY_NOT_RELEASED); evidence unavailable
 *            (EVIDENCE_UNAVAILABLE); GPU CC off where required (GPU_CC_REQUIRED); mesh peer not
 *            attested (MESH_PEER_NOT_ALLOWED); tampered sealed model at load (SEALED_MODEL_TAMPERED).
 * client   — MITM certificate not bound to the attested key (TLS_KEY_MISMATCH); stale evidence in
 *            the attestation bundle (EVIDENCE_STALE); receipt not matching (RECEIPT_INVALID);
 *            verification failure surfaced as VERIFICATION_FAILED.
 */
export const gatewayAttacks: readonly Attack[] = [];
export const gatewayControls: readonly Control[] = [];

export const servingAttacks: readonly Attack[] = [];
export const servingControls: readonly Control[] = [];

export const clientAttacks: readonly Attack[] = [];
export const clientControls: readonly Control[] = [];
