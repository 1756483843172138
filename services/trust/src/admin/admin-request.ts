import { compactVerify, decodeProtectedHeader, errors } from 'jose';
import { TresorError } from '@tresor/protocol';
import { utf8Decode } from '@tresor/crypto';
import type { AdminKeySet } from './admin-keys.js';
import type { AdminReplayGuard } from './replay-guard.js';

/**
 * A signed admin request (the body of every `/admin/v0/…` call, media type `application/jose`):
 * a compact JWS (RFC 7515 §7.1) by an admin key, protected header
 * `{"alg":"ES256"|"EdDSA","kid":"<admin key id>","typ":"tresor-admin+jwt"}`, payload
 *
 *   {"aud": "<trust service>", "htu": "/admin/v0/<operation>", "iat": <seconds>,
 *    "jti": "<random id>", "request": <the operation's input>}
 *
 * `aud` and `htu` bind the signature to one service and one operation (the same idea as DPoP's
 * `htu`, RFC 9449 §4.2), `iat` and `jti` make it usable once, within a short window.
 */
export const ADMIN_REQUEST_TYPE = 'tresor-admin+jwt';
export const ADMIN_MEDIA_TYPE = 'application/jose';
/** Admin requests carry policies and secrets of a few KiB; reference values and inventories at most ~1 MiB. */
export const MAX_ADMIN_REQUEST_LENGTH = 2 * 1024 * 1024;
const JTI = /^[A-Za-z0-9_-]{16,128}$/;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;

export interface AdminRequestContext {
  readonly keys: AdminKeySet;
  /** This service's `aud` (its configured issuer name). */
  readonly audience: string;
  /** The path the request was sent to. */
  readonly path: string;
  readonly now: Date;
  /**
   * Requests signed before this instant are refused: the service start, when the replay guard
   * lives in memory and what a previous run accepted is gone. Absent with a persistent guard.
   */
  readonly notBefore?: Date;
  /** How far `iat` may lie from now, either way. */
  readonly windowSeconds: number;
  readonly replay: AdminReplayGuard;
}

/** A request whose signature, audience, operation and freshness verified. */
export interface VerifiedAdminRequest {
  readonly adminKeyId: string;
  readonly jti: string;
  readonly issuedAt: Date;
  /** The operation's input, still to be parsed by the operation. */
  readonly request: unknown;
}

/**
 * Verifies a signed admin request. Every refusal has its own code, so an operator can tell a
 * missing signature from a wrong key from an edit from a replay.
 *
 * @throws TresorError ADMIN_SIGNATURE_MISSING (no JWS, `alg: none`, empty signature),
 *   ADMIN_KEY_UNKNOWN (kid not configured), ADMIN_SIGNATURE_INVALID (does not verify, another
 *   type, signed for another service or operation), INPUT_MALFORMED (verified, but the claims are
 *   not an admin request), ADMIN_REQUEST_EXPIRED, ADMIN_REQUEST_REPLAYED, RATE_LIMITED
 */
export async function verifyAdminRequest(
  body: unknown,
  context: AdminRequestContext,
): Promise<VerifiedAdminRequest> {
  const jws = typeof body === 'string' ? body.trim() : '';
  if (jws.length > MAX_ADMIN_REQUEST_LENGTH) {
    throw new TresorError(
      'REQUEST_BODY_TOO_LARGE',
      `an admin request is at most ${MAX_ADMIN_REQUEST_LENGTH} characters`,
    );
  }
  if (!COMPACT_JWS.test(jws) || jws.endsWith('.')) {
    throw missing('the request body is not a compact JWS signed by an admin key');
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(jws);
  } catch (cause) {
    throw new TresorError('ADMIN_SIGNATURE_INVALID', 'the JWS protected header is not valid JSON', { cause });
  }
  if (header.alg === undefined || header.alg.toLowerCase() === 'none')
    throw missing('the request is not signed (alg none)');
  if (header.typ !== ADMIN_REQUEST_TYPE) {
    throw new TresorError(
      'ADMIN_SIGNATURE_INVALID',
      `the JWS is of type ${String(header.typ)}, not ${ADMIN_REQUEST_TYPE}`,
    );
  }
  const key = typeof header.kid === 'string' ? context.keys.get(header.kid) : undefined;
  if (key === undefined) {
    throw new TresorError(
      'ADMIN_KEY_UNKNOWN',
      'the request is signed by a key that is not a configured admin key',
      {
        details: typeof header.kid === 'string' && header.kid.length <= 64 ? { kid: header.kid } : {},
      },
    );
  }
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(jws, key.key, { algorithms: [key.algorithm] }));
  } catch (cause) {
    const why =
      cause instanceof errors.JWSSignatureVerificationFailed
        ? 'the signature does not verify with admin key ' +
          key.id +
          ' (the request was changed after signing)'
        : `the request is not a valid ${key.algorithm} JWS for admin key ${key.id}`;
    throw new TresorError('ADMIN_SIGNATURE_INVALID', why, { cause });
  }
  const claims = parseClaims(payload);
  if (claims.aud !== context.audience) {
    throw new TresorError(
      'ADMIN_SIGNATURE_INVALID',
      `the request was signed for ${claims.aud}, not ${context.audience}`,
    );
  }
  if (claims.htu !== context.path) {
    throw new TresorError(
      'ADMIN_SIGNATURE_INVALID',
      `the request was signed for ${claims.htu}, not ${context.path}`,
    );
  }
  const nowMs = context.now.getTime();
  const iatMs = claims.iat * 1000;
  const windowMs = context.windowSeconds * 1000;
  const beforeStart = context.notBefore !== undefined && iatMs < context.notBefore.getTime() - 1000;
  if (beforeStart || Math.abs(nowMs - iatMs) > windowMs) {
    throw new TresorError(
      'ADMIN_REQUEST_EXPIRED',
      `the request was signed at ${new Date(iatMs).toISOString()}; requests are accepted within ${context.windowSeconds} s${context.notBefore === undefined ? '' : ' and not from before the service started'}`,
      { details: { adminKeyId: key.id } },
    );
  }
  // Remembered after the signature verified, so nobody without an admin key can fill the guard.
  try {
    await context.replay.use(`${key.id}\u0000${claims.jti}`, iatMs + windowMs, nowMs);
  } catch (err) {
    throw err instanceof TresorError && err.code === 'ADMIN_REQUEST_REPLAYED'
      ? new TresorError(err.code, err.message, { details: { adminKeyId: key.id } })
      : err;
  }
  return { adminKeyId: key.id, jti: claims.jti, issuedAt: new Date(iatMs), request: claims.request };
}

interface AdminClaims {
  readonly aud: string;
  readonly htu: string;
  readonly iat: number;
  readonly jti: string;
  readonly request: unknown;
}

function parseClaims(payload: Uint8Array): AdminClaims {
  const bad = (why: string): TresorError =>
    new TresorError('INPUT_MALFORMED', `the signed admin request ${why}`);
  let json: unknown;
  try {
    json = JSON.parse(utf8Decode(payload));
  } catch (cause) {
    throw new TresorError('INPUT_MALFORMED', 'the signed admin request is not UTF-8 JSON', { cause });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw bad('is not a JSON object');
  const { aud, htu, iat, jti, request } = json as Record<string, unknown>;
  if (typeof aud !== 'string') throw bad('names no audience (aud)');
  if (typeof htu !== 'string') throw bad('names no operation path (htu)');
  if (typeof iat !== 'number' || !Number.isSafeInteger(iat) || iat < 0) throw bad('has no issue time (iat)');
  if (typeof jti !== 'string' || !JTI.test(jti))
    throw bad('has no request id (jti: 16 to 128 base64url characters)');
  return { aud, htu, iat, jti, request: request ?? null };
}

function missing(why: string): TresorError {
  return new TresorError('ADMIN_SIGNATURE_MISSING', why);
}
