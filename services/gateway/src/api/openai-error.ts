import { TresorError, type ErrorCode } from '@tresor/protocol';

/**
 * OpenAI's error body, `{"error": {"message", "type", "param", "code"}}`, carrying a Tresor
 * catalogue code in `code` so OpenAI clients show it and scripts can match it. The message is the
 * TresorError's (safe to show) plus the catalogue's action.
 */
export interface OpenAiErrorBody {
  readonly error: {
    readonly message: string;
    readonly type: string;
    readonly param: string | null;
    readonly code: ErrorCode;
  };
}

function typeOf(error: TresorError): string {
  if (error.code === 'QUOTA_EXHAUSTED') return 'insufficient_quota';
  if (error.status === 401) return 'authentication_error';
  if (error.status === 403) return 'permission_error';
  if (error.status === 404) return 'not_found_error';
  if (error.status === 429) return 'rate_limit_error';
  if (error.status >= 500) return 'server_error';
  return 'invalid_request_error';
}

export function openAiErrorBody(error: TresorError): OpenAiErrorBody {
  const json = error.toJSON();
  return {
    error: {
      message: `${json.message} — ${json.action}`,
      type: typeOf(error),
      param: null,
      code: error.code,
    },
  };
}

/** Response headers of a refusal: `Retry-After` for rate limits and quotas (RFC 9110 §10.2.3). */
export function openAiErrorHeaders(error: TresorError): Record<string, string> {
  const retry = error.details?.retryAfterSeconds;
  return error.status === 429 || error.status === 503
    ? { 'retry-after': String(typeof retry === 'number' && retry > 0 ? Math.ceil(retry) : 1) }
    : {};
}
