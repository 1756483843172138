import { TresorError, isTresorError } from '@tresor/protocol';

/**
 * Turns anything a route or fastify throws into a catalogue error. Fastify's own errors (body too
 * large, unreadable JSON, unsupported media type) become their specific codes; anything unknown
 * becomes INTERNAL_ERROR with a generic message — the original message is dropped because it may
 * quote the request (a JSON SyntaxError repeats the body it could not parse).
 */
export function toTresorError(error: unknown): TresorError {
  if (isTresorError(error)) return error;
  const code = fastifyCode(error);
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new TresorError(
        'REQUEST_BODY_TOO_LARGE',
        'the request body is larger than this endpoint accepts',
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new TresorError(
        'REQUEST_MEDIA_TYPE_UNSUPPORTED',
        'this endpoint does not read bodies of this Content-Type',
      );
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new TresorError('INPUT_MALFORMED', 'the request body is not valid JSON');
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new TresorError('INPUT_MALFORMED', 'the Content-Length header does not match the body');
    case 'FST_ERR_BAD_URL':
      return new TresorError('INPUT_MALFORMED', 'the request URL is not well formed');
    default:
      break;
  }
  if (isValidationError(error)) {
    return new TresorError('INPUT_MALFORMED', 'the request does not match the endpoint schema');
  }
  // Fastify's JSON body parser throws a plain SyntaxError carrying statusCode 400.
  if (error instanceof SyntaxError) {
    return new TresorError('INPUT_MALFORMED', 'the request body is not valid JSON');
  }
  const status = statusOf(error);
  if (status !== undefined && status >= 400 && status < 500) {
    return new TresorError('USAGE_INVALID', 'the request is not well formed for this endpoint');
  }
  return new TresorError('INTERNAL_ERROR', undefined, { cause: error });
}

function fastifyCode(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

function statusOf(error: unknown): number | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const status = (error as { statusCode?: unknown }).statusCode;
  return typeof status === 'number' ? status : undefined;
}

function isValidationError(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    Array.isArray((error as { validation?: unknown }).validation)
  );
}
