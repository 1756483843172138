import type { FastifyReply, FastifyRequest } from 'fastify';
import type { TresorError } from '@tresor/protocol';
import { toTresorError } from './error-mapping.js';

/** What a refused request is answered with. */
export interface ShapedError {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/**
 * Renders a catalogue error as an HTTP answer. Pluggable per route scope because protocols fix
 * their own error shapes: the KBS protocol answers Trustee's `{type, detail}` with 401, the
 * OpenAI-compatible gateway `{"error": {message, type, code}}`. A shaper never sees a stack trace
 * or an unknown error: it gets a TresorError whose message is safe to show.
 */
export type ErrorShaper = (error: TresorError, request: FastifyRequest) => ShapedError;

/** Header carrying the catalogue code on every refusal, whatever the body shape. */
export const ERROR_CODE_HEADER = 'tresor-error-code';

/** Tresor's own shape: the catalogue status and `{code, message, action}` (plus non-secret details). */
export const defaultErrorShaper: ErrorShaper = (error) => ({
  status: error.status,
  body: error.toJSON(),
});

/** Sends `error` (anything thrown) through `shaper`, logging the code, never the message of an unknown error. */
export function sendShapedError(
  shaper: ErrorShaper,
  thrown: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
): FastifyReply {
  const error = toTresorError(thrown);
  if (error.code === 'INTERNAL_ERROR') {
    const cause = error.cause ?? thrown;
    request.log.error(
      { code: error.code, errorName: cause instanceof Error ? cause.name : typeof cause },
      'request failed unexpectedly',
    );
  } else {
    request.log.info({ code: error.code, status: error.status }, 'request refused');
  }
  const shaped = shaper(error, request);
  void reply.code(shaped.status);
  void reply.header(ERROR_CODE_HEADER, error.code);
  void reply.header('cache-control', 'no-store');
  for (const [name, value] of Object.entries(shaped.headers ?? {})) void reply.header(name, value);
  return reply.send(shaped.body);
}
