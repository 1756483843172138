/**
 * The log redactor. Logs leave the enclave, so a log line may carry only what the DPA allows:
 * method, route pattern, status, timings, request id, error codes. This module drops everything
 * else that could carry content or secrets, whoever logs it:
 *
 * - members named like content or secrets (body, payload, evidence, authorization, cookie, token,
 *   key, jwk, nonce, secret, password, …) are replaced by "[redacted]";
 * - URLs lose their query strings (they may carry API keys or nonces);
 * - strings that look like a JWT/JWS/JWE, a PEM private key or a long base64 blob are replaced;
 * - errors keep their name and catalogue code only: a message may quote the request.
 *
 * It runs as pino's `formatters.log`, so it sees every object logged through the server's logger,
 * including fastify's own lines.
 */

export const REDACTED = '[redacted]';

/** Member names (lower-cased, without separators) that carry content or secrets. */
const SENSITIVE_NAME =
  /^(?:body|rawbody|payload|content|contents|prompt|prompts|completion|messages?|input|output|text|data|evidence|report|quote|query|querystring|params|headers|cookies?|setcookie|authorization|proxyauthorization|token|accesstoken|bearer|nonce|jwk|jwks|jwe|jws|ciphertext|plaintext|d|p|q|dp|dq|qi|k)$/;
const SENSITIVE_PART =
  /(?:secret|password|passphrase|privatekey|apikey|credential|signature|cookie|token|auth)/;
/** Anything named like a key, except its identifier or a count (`keyId`, `kid`, `keyCount` are fine). */
const KEY_REFERENCE = /(?:id|ids|count)$/;
/** A compact JWS/JWE/JWT: two or four dots between base64url runs. */
const COMPACT_JOSE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*/;
const PEM_PRIVATE = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;
/** 64 or more base64/base64url/hex characters in a row: key material or evidence, never a log value. */
const LONG_OPAQUE = /[A-Za-z0-9+/_=-]{64,}/;

const MAX_DEPTH = 6;
const MAX_ARRAY = 50;

/** Whether a member called `name` must never be logged. */
export function isSensitiveName(name: string): boolean {
  const plain = name.toLowerCase().replace(/[^a-z0-9]/g, '');
  if (SENSITIVE_NAME.test(plain) || SENSITIVE_PART.test(plain)) return true;
  return plain.includes('key') && !KEY_REFERENCE.test(plain);
}

function scrubString(value: string, name: string): string {
  if (COMPACT_JOSE.test(value) || PEM_PRIVATE.test(value) || LONG_OPAQUE.test(value)) return REDACTED;
  // Query strings may carry API keys and nonces; paths are kept (they name routes, not content).
  if (name === 'url' || name === 'path') return value.split('?')[0] ?? '';
  return value;
}

/** The log-safe view of an error: its name and catalogue (or fastify) code, never its message. */
export function safeError(error: unknown): Record<string, unknown> {
  if (typeof error !== 'object' || error === null) return { type: typeof error };
  const code = (error as { code?: unknown }).code;
  return {
    type: error instanceof Error ? error.name : 'object',
    ...(typeof code === 'string' && /^[A-Z0-9_]{1,64}$/.test(code) ? { code } : {}),
  };
}

/** A deep copy of `value` with everything content- or secret-like removed. */
export function scrubLogValue(value: unknown, name = '', depth = 0): unknown {
  if (name !== '' && isSensitiveName(name)) return REDACTED;
  if (typeof value === 'string') return scrubString(value, name);
  if (typeof value !== 'object' || value === null) {
    return typeof value === 'function' || typeof value === 'symbol' ? undefined : value;
  }
  if (value instanceof Error) return safeError(value);
  if (value instanceof Uint8Array || value instanceof ArrayBuffer) return REDACTED;
  if (depth >= MAX_DEPTH) return '[truncated]';
  if (Array.isArray(value)) {
    return value.slice(0, MAX_ARRAY).map((item: unknown) => scrubLogValue(item, '', depth + 1));
  }
  const out: Record<string, unknown> = {};
  for (const [member, inner] of Object.entries(value)) {
    const scrubbed = scrubLogValue(inner, member, depth + 1);
    if (scrubbed !== undefined) out[member] = scrubbed;
  }
  return out;
}

/** The log-safe view of a request: method and path, never headers, query or body. */
export function safeRequest(request: unknown): Record<string, unknown> {
  if (typeof request !== 'object' || request === null) return {};
  const { method, url } = request as { method?: unknown; url?: unknown };
  return {
    ...(typeof method === 'string' ? { method } : {}),
    ...(typeof url === 'string' ? { path: url.split('?')[0] ?? '' } : {}),
  };
}

/** The log-safe view of a reply: its status only. */
export function safeReply(reply: unknown): Record<string, unknown> {
  if (typeof reply !== 'object' || reply === null) return {};
  const status = (reply as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? { statusCode: status } : {};
}

const TOP_LEVEL_VIEWS: Readonly<Record<string, (value: unknown) => Record<string, unknown>>> = {
  req: safeRequest,
  request: safeRequest,
  res: safeReply,
  reply: safeReply,
  err: safeError,
  error: safeError,
};

/** The merge object of a log call, scrubbed (pino `formatters.log`). */
export function scrubLogObject(object: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(object)) {
    const view = TOP_LEVEL_VIEWS[name];
    const scrubbed = view === undefined ? scrubLogValue(value, name, 1) : view(value);
    if (scrubbed !== undefined) out[name] = scrubbed;
  }
  return out;
}
