import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError, TresorError } from '@tresor/protocol';
import { toTresorError } from './error-mapping.js';

function fastifyError(code: string, statusCode: number, message = 'x'): Error {
  return Object.assign(new Error(message), { code, statusCode });
}

describe('toTresorError', () => {
  it('passes catalogue errors through unchanged', () => {
    const error = new TresorError('POLICY_DENIED');
    expect(toTresorError(error)).toBe(error);
  });

  it.each([
    ['FST_ERR_CTP_BODY_TOO_LARGE', 413, 'REQUEST_BODY_TOO_LARGE'],
    ['FST_ERR_CTP_INVALID_MEDIA_TYPE', 415, 'REQUEST_MEDIA_TYPE_UNSUPPORTED'],
    ['FST_ERR_CTP_EMPTY_JSON_BODY', 400, 'INPUT_MALFORMED'],
    ['FST_ERR_CTP_INVALID_JSON_BODY', 400, 'INPUT_MALFORMED'],
    ['FST_ERR_CTP_INVALID_CONTENT_LENGTH', 400, 'INPUT_MALFORMED'],
    ['FST_ERR_BAD_URL', 400, 'INPUT_MALFORMED'],
    ['FST_ERR_SOMETHING_NEW', 400, 'USAGE_INVALID'],
    ['FST_ERR_SOMETHING_ELSE', 500, 'INTERNAL_ERROR'],
  ])('maps fastify %s (%d) to %s', (code, status, expected) => {
    expect(toTresorError(fastifyError(code, status)).code).toBe(expected);
  });

  it('maps a JSON SyntaxError to INPUT_MALFORMED without repeating the body', () => {
    const error = toTresorError(
      Object.assign(new SyntaxError('Unexpected token s in "secret"'), { statusCode: 400 }),
    );
    expect(error.code).toBe('INPUT_MALFORMED');
    expect(error.message).not.toContain('secret');
  });

  it('maps schema validation failures to INPUT_MALFORMED', () => {
    expect(toTresorError(Object.assign(new Error('body/x'), { validation: [], statusCode: 400 })).code).toBe(
      'INPUT_MALFORMED',
    );
  });

  it('turns anything unknown into INTERNAL_ERROR with the generic message (property)', () => {
    fc.assert(
      fc.property(fc.anything(), fc.string(), (thrown, text) => {
        const fromValue = toTresorError(thrown);
        const fromError = toTresorError(new Error(text));
        return (
          isTresorError(fromValue) &&
          fromError.code === 'INTERNAL_ERROR' &&
          fromError.message === 'An unexpected internal error occurred; no data was released.'
        );
      }),
      { numRuns: 1000 },
    );
  });
});
