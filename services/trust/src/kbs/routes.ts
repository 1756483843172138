import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TresorError, isTresorError } from '@tresor/protocol';
import { useErrorShaper } from '@tresor/server-kit';
import type { AttestationService } from '../attestation-service/attestation-service.js';
import type { AuditSink, AuthenticatedWorkload, SessionAttestation } from '../context.js';
import { resourcePath } from '../resources/resource-path.js';
import { kbsErrorShaper } from './kbs-errors.js';
import { releaseResource, workloadActorId, type KeyReleaseServices } from './key-release.js';
import { parseKbsAttestation, parseKbsRequest, type KbsChallenge } from './messages.js';
import { PRIMARY_TEES, type PrimaryTee } from './protocol.js';
import { requireProtocolVersion } from './protocol-version.js';
import { sessionIdFromCookie, sessionSetCookie } from './session-cookie.js';
import type { SessionStore } from './sessions.js';

export interface KbsRouteOptions extends KeyReleaseServices {
  readonly sessions: SessionStore<SessionAttestation>;
  readonly attestation: AttestationService;
  readonly audit: AuditSink;
  readonly authBodyBytes: number;
  readonly attestBodyBytes: number;
  readonly now: () => Date;
  readonly authenticate: (request: FastifyRequest) => Promise<AuthenticatedWorkload>;
}

function rawBody(request: FastifyRequest): Uint8Array {
  const body: unknown = request.body;
  if (!(body instanceof Uint8Array) || body.length === 0) {
    throw new TresorError('INPUT_MALFORMED', 'the request has no body');
  }
  return body;
}

function primaryTee(tee: string): PrimaryTee {
  if (!(PRIMARY_TEES as readonly string[]).includes(tee)) {
    throw new TresorError(
      'ATTESTATION_TEE_UNSUPPORTED',
      `TEE ${JSON.stringify(tee.slice(0, 32))} is not supported as primary evidence; use ${PRIMARY_TEES.join(', ')}`,
    );
  }
  return tee as PrimaryTee;
}

function json(reply: FastifyReply, body: unknown): FastifyReply {
  return reply
    .code(200)
    .header('cache-control', 'no-store')
    .type('application/json')
    .send(JSON.stringify(body));
}

/**
 * The KBS attestation protocol routes (prefix /kbs/v0), wire-compatible with Trustee:
 * POST /auth (Request → Challenge + session cookie), POST /attest (Attestation → EAR token),
 * GET /resource/<repository>/<type>/<tag> (→ JWE). Bodies are read raw whatever their Content-Type,
 * as Trustee reads them, and parsed here once (messages.ts).
 */
export function registerKbsRoutes(scope: FastifyInstance, options: KbsRouteOptions): void {
  useErrorShaper(scope, kbsErrorShaper);
  scope.removeAllContentTypeParsers();
  scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
    done(null, body);
  });

  scope.post('/auth', { bodyLimit: options.authBodyBytes }, (request, reply) => {
    const message = parseKbsRequest(rawBody(request));
    requireProtocolVersion(message.version);
    const session = options.sessions.open(primaryTee(message.tee));
    const challenge: KbsChallenge = { nonce: session.nonce, 'extra-params': '' };
    void reply.header('set-cookie', sessionSetCookie(session.id, session.expiresAt));
    return json(reply, challenge);
  });

  scope.post('/attest', { bodyLimit: options.attestBodyBytes }, async (request, reply) => {
    const attestation = parseKbsAttestation(rawBody(request));
    const session = options.sessions.beginAttestation(sessionIdFromCookie(request));
    let outcome;
    try {
      outcome = await options.attestation.attest({
        tee: session.tee,
        nonce: session.nonce,
        challengeIssuedAt: session.issuedAt,
        attestation,
        now: options.now(),
      });
      await options.audit.append({
        actor: { type: 'workload', id: workloadActorId(outcome.teePublicKey) },
        action: 'kbs.attest',
        target: `tee:${session.tee}`,
        outcome: 'success',
        details: { tokenId: outcome.identity.tokenId, status: outcome.identity.status },
      });
    } catch (error) {
      options.sessions.end(session.id);
      if (isTresorError(error) && error.code !== 'INTERNAL_ERROR') {
        await options.audit
          .append({
            actor: { type: 'system', id: 'kbs' },
            action: 'kbs.attest',
            target: `tee:${session.tee}`,
            outcome: 'denied',
            details: { code: error.code },
          })
          .catch(() => undefined);
      }
      throw error;
    }
    const attested = options.sessions.completeAttestation(session.id, outcome.token, {
      identity: outcome.identity,
      teePublicKey: outcome.teePublicKey,
    });
    void reply.header('set-cookie', sessionSetCookie(attested.id, attested.expiresAt));
    return json(reply, { token: outcome.token });
  });

  scope.get('/resource/:repository/:type/:tag', async (request, reply) => {
    const { repository, type, tag } = request.params as Record<string, string | undefined>;
    const path = resourcePath(repository, type, tag);
    const workload = await options.authenticate(request);
    return json(reply, await releaseResource(options, workload, path));
  });
}
