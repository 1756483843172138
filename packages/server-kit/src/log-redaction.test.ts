import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { isSensitiveName, REDACTED, safeError, scrubLogObject, scrubLogValue } from './log-redaction.js';

const MARKER = 'CANARY-7f3a9c';

describe('log redaction', () => {
  it.each([
    'body',
    'Authorization',
    'cookie',
    'set-cookie',
    'x-api-key',
    'apiKey',
    'privateKey',
    'publicKey',
    'tee-pubkey',
    'token',
    'accessToken',
    'nonce',
    'evidence',
    'password',
    'clientSecret',
    'passphrase',
    'jwk',
    'd',
    'query',
    'headers',
  ])('treats %s as sensitive', (name) => {
    expect(isSensitiveName(name)).toBe(true);
  });

  it.each([
    'method',
    'route',
    'status',
    'statusCode',
    'ms',
    'reqId',
    'keyId',
    'kid',
    'code',
    'service',
    'path',
  ])('keeps %s', (name) => {
    expect(isSensitiveName(name)).toBe(false);
  });

  it('reduces requests, replies and errors to their safe views', () => {
    const out = scrubLogObject({
      req: { method: 'POST', url: `/kbs/v0/auth?k=${MARKER}`, headers: { authorization: MARKER } },
      res: { statusCode: 401, body: MARKER },
      err: new TresorError('POLICY_DENIED', `denied ${MARKER}`),
      route: '/kbs/v0/auth',
    });
    expect(out).toEqual({
      req: { method: 'POST', path: '/kbs/v0/auth' },
      res: { statusCode: 401 },
      err: { type: 'TresorError', code: 'POLICY_DENIED' },
      route: '/kbs/v0/auth',
    });
  });

  it('drops query strings from URLs and opaque values wherever they appear', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl';
    const out = scrubLogValue({
      nested: { url: `/a/b?nonce=${MARKER}`, note: `see ${jwt}`, blob: 'A'.repeat(80) },
      list: [{ password: MARKER }],
    });
    expect(out).toEqual({
      nested: { url: '/a/b', note: REDACTED, blob: REDACTED },
      list: [{ password: REDACTED }],
    });
  });

  it('keeps only name and code of errors, never the message', () => {
    expect(safeError(new SyntaxError(`Unexpected token in "${MARKER}"`))).toEqual({ type: 'SyntaxError' });
    expect(safeError({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', message: MARKER })).toEqual({
      type: 'object',
      code: 'FST_ERR_CTP_BODY_TOO_LARGE',
    });
  });

  it('never lets a marker under a sensitive name through, at any depth (property)', () => {
    const sensitive = fc.constantFrom(
      'body',
      'authorization',
      'cookie',
      'token',
      'nonce',
      'apiKey',
      'secret',
      'evidence',
    );
    const tree = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.record({ [`n`]: fc.string() }),
        fc.tuple(sensitive, tie('node')).map(([name, inner]) => ({ [name]: inner, safe: 1 })),
        fc.tuple(sensitive).map(([name]) => ({ [name]: `x${MARKER}x` })),
        fc.array(tie('node'), { maxLength: 3 }).map((items) => ({ items })),
      ),
    }));
    fc.assert(
      fc.property(tree.node, (value) => !JSON.stringify(scrubLogValue(value) ?? null).includes(MARKER)),
      { numRuns: 1000 },
    );
  });

  it('never throws and always returns JSON-serialisable output for arbitrary values (property)', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const out = scrubLogValue(value);
        JSON.stringify(out);
        return true;
      }),
      { numRuns: 1000 },
    );
  });
});
