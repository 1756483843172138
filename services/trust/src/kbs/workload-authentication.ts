import type { FastifyRequest } from 'fastify';
import { TresorError, isTresorError } from '@tresor/protocol';
import { identityFromClaims } from '../attestation-service/ear-token-claims.js';
import type { AttestationTokenService } from '../attestation-service/token-service.js';
import type { AuthenticatedWorkload, SessionAttestation } from '../context.js';
import { sessionIdFromCookie } from './session-cookie.js';
import type { SessionStore } from './sessions.js';
import { parseTeePublicKey } from './tee-public-key.js';

const BEARER = /^Bearer +([A-Za-z0-9._~+/-]+=*) *$/i;

function missing(why: string): TresorError {
  return new TresorError('ATTESTATION_TOKEN_INVALID', why, { details: { missing: true } });
}

/**
 * Finds the attested workload behind a request, as Trustee's api_server.rs `get_attestation_token`
 * does: the session cookie first, then a bearer token. An attested session whose token has expired
 * no longer counts.
 */
export async function authenticateWorkload(
  request: FastifyRequest,
  sessions: SessionStore<SessionAttestation>,
  tokens: AttestationTokenService,
  now: () => Date,
): Promise<AuthenticatedWorkload> {
  const id = sessionIdFromCookie(request);
  let sessionProblem: TresorError | undefined;
  if (id !== undefined) {
    try {
      const session = sessions.get(id);
      if (session.state !== 'attested') {
        sessionProblem = missing('this session has not attested; POST /kbs/v0/attest first');
      } else if (session.attestation.identity.expiresAt.getTime() <= now().getTime()) {
        sessionProblem = new TresorError(
          'ATTESTATION_TOKEN_EXPIRED',
          "the session's attestation token has expired; attest again",
        );
      } else {
        return { ...session.attestation, token: session.token, via: 'session' };
      }
    } catch (error) {
      if (!isTresorError(error)) throw error;
      sessionProblem = error;
    }
  }
  const authorization = request.headers.authorization;
  const bearer = typeof authorization === 'string' ? BEARER.exec(authorization) : null;
  if (bearer === null) {
    throw (
      sessionProblem ??
      missing(
        'no attestation token: send the kbs-session-id cookie of an attested session, or Authorization: Bearer <token>',
      )
    );
  }
  const token = bearer[1]!;
  const identity = identityFromClaims(await tokens.verify(token));
  let teePublicKey;
  try {
    teePublicKey = parseTeePublicKey(identity.teePublicKey);
  } catch (cause) {
    throw new TresorError(
      'ATTESTATION_TOKEN_INVALID',
      'the attestation token carries an unusable tee-pubkey',
      { cause },
    );
  }
  return { identity, teePublicKey, token, via: 'bearer' };
}
