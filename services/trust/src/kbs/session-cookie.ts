import type { FastifyRequest } from 'fastify';
import { KBS_PREFIX, KBS_SESSION_COOKIE } from './protocol.js';

/**
 * The session cookie (RFC 6265). Trustee sets `kbs-session-id=<id>` with an `Expires` attribute;
 * Tresor adds `Path=/kbs/v0`, `Secure`, `HttpOnly` and `SameSite=Strict` (every listener is HTTPS, and
 * no script or other site has a reason to see the cookie). guest-components' cookie store accepts them.
 */
export function sessionSetCookie(id: string, expiresAt: Date): string {
  return `${KBS_SESSION_COOKIE}=${id}; Expires=${expiresAt.toUTCString()}; Path=${KBS_PREFIX}; Secure; HttpOnly; SameSite=Strict`;
}

/** The session id from the request's Cookie header (the first kbs-session-id), or undefined. */
export function sessionIdFromCookie(request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== 'string') return undefined;
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq === -1) continue;
    if (pair.slice(0, eq).trim() === KBS_SESSION_COOKIE) return pair.slice(eq + 1).trim();
  }
  return undefined;
}
