import { TresorError, type ErrorCode } from '@tresor/protocol';
import { base64ToBytes, bytesToBase64Url } from '@tresor/crypto';

/**
 * The KYOK key server API (JSON over HTTPS with mutual TLS, TLS 1.3 only), shared by the reference
 * server and the client. Binary values are base64url without padding. Errors are
 * `{ code, message, action }` with the catalogue code's HTTP status. See docs/keys.md for the table.
 *
 *   GET  /v1/import-parameters                           admin
 *   GET  /v1/tenants/{t}/keys                            any client    list the tenant's keys
 *   POST /v1/tenants/{t}/keys                            admin         { kind, algorithm?, label? }
 *   POST /v1/tenants/{t}/imports                         admin         { wrappedKeyMaterial, label? }
 *   GET  /v1/tenants/{t}/keys/{id}                       any client    metadata
 *   GET  /v1/tenants/{t}/keys/{id}/public-key            any client    JWK
 *   POST /v1/tenants/{t}/keys/{id}/wrap                  workload      { key }         → { wrappedKey }
 *   POST /v1/tenants/{t}/keys/{id}/unwrap                workload      { wrappedKey }  → { key }
 *   POST /v1/tenants/{t}/keys/{id}/sign                  workload      { message }     → { signature }
 *   POST /v1/tenants/{t}/keys/{id}/disable|enable|destroy  admin
 *   GET  /v1/tenants/{t}/revocation                      any client    { revoked, revokedAt }
 *   POST /v1/tenants/{t}/revoke | reinstate              admin
 *
 * "workload" requests carry `Authorization: Bearer <EAR attestation token>`; the server applies the
 * tenant's release policy to it.
 */
export const API_PREFIX = '/v1';

/** Bodies are small JSON objects; anything larger is refused before it is buffered. */
export const MAX_BODY_BYTES = 64 * 1024;

export interface ErrorBody {
  readonly code: ErrorCode;
  readonly message: string;
  readonly action: string;
}

export interface RevocationStatus {
  readonly tenant: string;
  readonly revoked: boolean;
  readonly revokedAt: string | null;
}

export function encodeBinary(bytes: Uint8Array): string {
  return bytesToBase64Url(bytes);
}

/** Reads a base64url field of at most `maxBytes` decoded bytes from an untrusted JSON object. */
export function binaryField(body: unknown, name: string, maxBytes: number, code: ErrorCode): Uint8Array {
  const value = objectOf(body, code)[name];
  if (
    typeof value !== 'string' ||
    value.length > Math.ceil((maxBytes * 4) / 3) ||
    !/^[A-Za-z0-9_-]*$/.test(value)
  ) {
    throw new TresorError(code, `"${name}" must be base64url of at most ${maxBytes} bytes`);
  }
  return base64ToBytes(value);
}

export function stringField(body: unknown, name: string, code: ErrorCode): string | undefined {
  const value = objectOf(body, code)[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new TresorError(code, `"${name}" must be a string`);
  return value;
}

export function objectOf(body: unknown, code: ErrorCode): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TresorError(code, 'expected a JSON object');
  }
  return body as Record<string, unknown>;
}
