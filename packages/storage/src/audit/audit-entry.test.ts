import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { parseAuditEntry } from './audit-entry.js';

const refuse = (problem: string): never => {
  throw new TresorError('STORAGE_RECORD_INVALID', problem);
};

const valid = {
  actor: { type: 'workload', id: 'spiffe://tresor/ns/prod/sa/gateway' },
  action: 'model.key-release',
  target: 'tenant:acme/model:llama',
  outcome: 'denied',
  details: {
    reason: 'measurement not allowed',
    promptTokens: 0,
    tcb: { snp: 3, microcode: 209 },
    regions: ['CH'],
  },
};

describe('audit entries', () => {
  it('accepts metadata and copies it, defaulting details to {}', () => {
    const parsed = parseAuditEntry(valid, refuse);
    expect(parsed).toEqual(valid);
    expect(parsed.details).not.toBe(valid.details);
    expect(parseAuditEntry({ ...valid, details: undefined }, refuse).details).toEqual({});
  });

  it.each([
    'prompt',
    'Prompts',
    'completion',
    'content',
    'messages',
    'input',
    'body',
    'token',
    'access_token',
    'Authorization',
    'pin',
    'dataKey',
    'clientSecret',
    'adminPassword',
    'kek.privateKey',
    'openai-api-key',
    'keyMaterial',
    'plaintext',
  ])('refuses a detail named %s, at any depth', (name) => {
    expect(() => parseAuditEntry({ ...valid, details: { [name]: 'x' } }, refuse)).toThrow(
      /names content or a secret/,
    );
    expect(() => parseAuditEntry({ ...valid, details: { outer: [{ [name]: 1 }] } }, refuse)).toThrow(
      /names content or a secret/,
    );
  });

  it('refuses a member called __proto__ (as JSON.parse makes it: an own member) instead of following it', () => {
    const details = JSON.parse('{"__proto__": {"prompt": "x"}}') as unknown;
    expect(() => parseAuditEntry({ ...valid, details }, refuse)).toThrow(/not an identifier/);
  });

  it('refuses anything that is not an entry with STORAGE_RECORD_INVALID, and nothing else', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.anything(),
          fc.record({
            actor: fc.anything(),
            action: fc.anything(),
            target: fc.anything(),
            outcome: fc.anything(),
            details: fc.anything(),
          }),
          fc.anything().map((details) => ({ ...valid, details })),
        ),
        (value) => {
          try {
            parseAuditEntry(value, refuse);
          } catch (err) {
            expect(err).toBeInstanceOf(TresorError);
            expect((err as TresorError).code).toBe('STORAGE_RECORD_INVALID');
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
