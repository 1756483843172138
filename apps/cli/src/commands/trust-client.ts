import { TresorError, isErrorCode } from '@tresor/protocol';
import { base64ToBytes, utf8Decode } from '@tresor/crypto';
import {
  ADMIN_MEDIA_TYPE,
  ADMIN_PREFIX,
  DOCUMENT_PREFIX,
  signAdminRequest,
  type AdminSigningKey,
} from '@tresor/trust';
import type { CliIo } from '../io.js';
import { httpsEndpoint, httpsExchange, type HttpsAnswer, type HttpsEndpoint } from './https-exchange.js';

/** Where the trust service is and which CA its TLS certificate chains to (system roots when none is named). */
export type TrustEndpoint = HttpsEndpoint;

export interface TrustEndpointFlags {
  readonly url?: string;
  readonly ca?: string;
}

/** Answers are documents and short JSON; a trust service never sends more. */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
const TIMEOUT_MS = 30_000;

/** The endpoint from `--url`/`--ca`, or TRESOR_TRUST_URL / TRESOR_TRUST_CA. */
export function trustEndpoint(io: CliIo, flags: TrustEndpointFlags): Promise<TrustEndpoint> {
  return httpsEndpoint(io, flags, {
    name: 'the trust service',
    urlEnv: 'TRESOR_TRUST_URL',
    caEnv: 'TRESOR_TRUST_CA',
  });
}

export type TrustAnswer = HttpsAnswer;

/** One HTTPS exchange with the trust service (TLS 1.3 only, like every Tresor listener). */
export function trustExchange(
  endpoint: TrustEndpoint,
  method: 'GET' | 'POST',
  path: string,
  body?: { readonly contentType: string; readonly text: string },
): Promise<TrustAnswer> {
  return httpsExchange(new URL(path, endpoint.url), {
    method,
    ca: endpoint.ca,
    accept: 'application/json, application/jose',
    ...(body === undefined ? {} : { body }),
    maxAnswerBytes: MAX_ANSWER_BYTES,
    timeoutMs: TIMEOUT_MS,
    unreachable: (cause) =>
      new TresorError(
        'TRUST_SERVICE_UNREACHABLE',
        `cannot reach the trust service at ${endpoint.url.origin}`,
        {
          cause,
        },
      ),
  });
}

/** The catalogue error a refusal carries (`{code, message}`), or a generic one for a foreign answer. */
export function refusal(answer: TrustAnswer): TresorError {
  try {
    const body = JSON.parse(answer.text) as { code?: unknown; message?: unknown };
    if (isErrorCode(body.code)) {
      return new TresorError(body.code, typeof body.message === 'string' ? body.message : undefined);
    }
  } catch {
    // Not Tresor's error shape; described below.
  }
  return new TresorError(
    'TRUST_SERVICE_UNREACHABLE',
    `the trust service answered HTTP ${answer.status} without a Tresor error code`,
  );
}

function parseJsonAnswer(answer: TrustAnswer): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(answer.text);
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // Refused below.
  }
  throw new TresorError(
    'TRUST_SERVICE_UNREACHABLE',
    'the trust service answered something that is not a JSON object',
  );
}

/** A published document (compact JWS): `reference-values` or `residency-inventory`. */
export async function fetchDocument(
  endpoint: TrustEndpoint,
  kind: 'reference-values' | 'residency-inventory' | 'document-keys',
): Promise<string> {
  const answer = await trustExchange(endpoint, 'GET', `${DOCUMENT_PREFIX}/${kind}`);
  if (answer.status !== 200) throw refusal(answer);
  return answer.text.trim();
}

/**
 * The `aud` admin requests must carry: the service's issuer name, read from its published reference
 * values (only to address the request; the service checks the signature and the audience itself).
 */
export async function discoverAudience(endpoint: TrustEndpoint): Promise<string> {
  const jws = await fetchDocument(endpoint, 'reference-values');
  try {
    const payload = JSON.parse(utf8Decode(base64ToBytes(jws.split('.')[1] ?? ''))) as { iss?: unknown };
    if (typeof payload.iss === 'string' && payload.iss !== '') return payload.iss;
  } catch {
    // Refused below.
  }
  throw new TresorError(
    'TRUST_SERVICE_UNREACHABLE',
    'the trust service publishes no issuer name; pass --audience',
  );
}

/** Signs and sends one admin operation; returns its JSON answer. */
export async function sendAdminOperation(
  endpoint: TrustEndpoint,
  key: AdminSigningKey,
  audience: string,
  operation: string,
  request: unknown,
  now: Date,
): Promise<Record<string, unknown>> {
  const path = `${ADMIN_PREFIX}/${operation}`;
  const jws = await signAdminRequest(key, { audience, path, request, now });
  const answer = await trustExchange(endpoint, 'POST', path, { contentType: ADMIN_MEDIA_TYPE, text: jws });
  if (answer.status !== 200) throw refusal(answer);
  return parseJsonAnswer(answer);
}
