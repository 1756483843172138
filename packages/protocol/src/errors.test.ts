import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderErrorDocs } from '../../../scripts/error-docs.js';
import { ERROR_CATALOGUE, ERROR_CODES, TresorError, isErrorCode, isTresorError } from './index.js';

const read = (rel: string): string => readFileSync(new URL(rel, import.meta.url), 'utf8');

describe('error catalogue', () => {
  it('docs/errors.md is generated from the catalogue (run `npm run docs:errors`)', () => {
    expect(read('../../../docs/errors.md')).toBe(renderErrorDocs());
  });

  it('is append-only: every released code in catalogue.lock still exists, and every code is released', () => {
    const locked = read('./catalogue.lock')
      .split('\n')
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const code of locked) expect(isErrorCode(code), `released code ${code} was removed`).toBe(true);
    const unlocked = ERROR_CODES.filter((c) => !locked.includes(c));
    expect(unlocked, 'append new codes to packages/protocol/src/catalogue.lock').toEqual([]);
  });

  it('gives every code a status, an exit code and one-line texts', () => {
    for (const code of ERROR_CODES) {
      const s = ERROR_CATALOGUE[code];
      expect(code).toMatch(/^[A-Z][A-Z0-9_]+$/);
      expect(s.status).toBeGreaterThanOrEqual(400);
      expect(s.status).toBeLessThan(600);
      expect([1, 2]).toContain(s.exit);
      for (const text of [s.meaning, s.action]) {
        expect(text.length).toBeGreaterThan(10);
        expect(text).not.toContain('\n');
      }
    }
  });
});

describe('TresorError', () => {
  it('carries the code, status, exit code and action of its catalogue entry', () => {
    const e = new TresorError('OHTTP_DECRYPT_FAILED', 'request 3 failed', { details: { keyId: 1 } });
    expect(e).toBeInstanceOf(Error);
    expect(isTresorError(e)).toBe(true);
    expect(e.code).toBe('OHTTP_DECRYPT_FAILED');
    expect(e.status).toBe(400);
    expect(e.exit).toBe(1);
    expect(e.message).toBe('request 3 failed');
    expect(e.action).toBe(ERROR_CATALOGUE.OHTTP_DECRYPT_FAILED.action);
    expect(JSON.parse(JSON.stringify(e))).toEqual({
      code: 'OHTTP_DECRYPT_FAILED',
      message: 'request 3 failed',
      action: ERROR_CATALOGUE.OHTTP_DECRYPT_FAILED.action,
      details: { keyId: 1 },
    });
  });

  it('defaults the message to the meaning and keeps the cause', () => {
    const cause = new Error('inner');
    const e = new TresorError('INPUT_UNREADABLE', undefined, { cause });
    expect(e.message).toBe(ERROR_CATALOGUE.INPUT_UNREADABLE.meaning);
    expect(e.cause).toBe(cause);
    expect(isTresorError(new Error('x'))).toBe(false);
    expect(isErrorCode('NOPE')).toBe(false);
  });
});
