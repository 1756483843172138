import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import type { AuditDetails } from './audit-entry.js';
import {
  decodeAuditRecordBody,
  encodeAuditRecordBody,
  GENESIS_HASH,
  hashAuditRecordBody,
  type AuditRecordBody,
} from './audit-record.js';

const refuse = (problem: string): never => {
  throw new TresorError('AUDIT_CHAIN_BROKEN', problem);
};

const identifier = fc
  .stringMatching(/^[A-Za-z][A-Za-z0-9_]{0,11}$/)
  .filter((s) => !/^(text|body|pin|seed|token|input|output|content)$/i.test(s));
const detailText = fc
  .string({ maxLength: 40, unit: 'grapheme' })
  // eslint-disable-next-line no-control-regex -- control characters are what the filter removes
  .filter((s) => !/[\u0000-\u001f\u007f-\u009f]/.test(s));
// JSON has no -0: it is written as 0 (RFC 8785 §3.2.2.3), so a round trip cannot give -0 back.
const finite = fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => (Object.is(d, -0) ? 0 : d));
const leaf = fc.oneof(detailText, fc.integer(), finite, fc.boolean(), fc.constant(null));
const details: fc.Arbitrary<AuditDetails> = fc.dictionary(
  identifier,
  fc.oneof(leaf, fc.array(leaf, { maxLength: 3 }), fc.dictionary(identifier, leaf, { maxKeys: 3 })),
  { maxKeys: 5 },
);

export const recordBody: fc.Arbitrary<AuditRecordBody> = fc.record({
  seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
  time: fc
    .date({
      min: new Date('2000-01-01T00:00:00Z'),
      max: new Date('2999-12-31T23:59:59Z'),
      noInvalidDate: true,
    })
    .map((d) => d.toISOString()),
  actor: fc.record({
    type: fc.constantFrom('admin' as const, 'workload' as const, 'system' as const),
    id: fc.stringMatching(/^[\x21-\x7e]{1,40}$/),
  }),
  action: fc.stringMatching(/^[a-z][a-z0-9]{0,8}(\.[a-z0-9]{1,8}){0,2}$/),
  target: detailText,
  outcome: fc.constantFrom('success' as const, 'denied' as const, 'failure' as const),
  details,
  prev: fc.stringMatching(/^[0-9a-f]{64}$/),
});

describe('audit record canonical encoding (RFC 8785)', () => {
  it('is the documented JCS text, and its SHA-256 is the record hash', () => {
    const body: AuditRecordBody = {
      seq: 1,
      time: '2025-01-01T00:00:00.000Z',
      actor: { type: 'admin', id: 'adm-1' },
      action: 'keys.destroy',
      target: 'tenant:acme/key:kek-01',
      outcome: 'success',
      details: { reason: 'customer request', b: [1, 2.5, true, null], a: { z: 'ü', y: 1e21 } },
      prev: GENESIS_HASH,
    };
    expect(encodeAuditRecordBody(body)).toBe(
      '{"action":"keys.destroy","actor":{"id":"adm-1","type":"admin"},' +
        '"details":{"a":{"y":1e+21,"z":"ü"},"b":[1,2.5,true,null],"reason":"customer request"},' +
        `"outcome":"success","prev":"${GENESIS_HASH}","seq":1,"target":"tenant:acme/key:kek-01","time":"2025-01-01T00:00:00.000Z","v":1}`,
    );
    expect(hashAuditRecordBody(body)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('round-trips: decode(encode(r)) equals r, and re-encoding gives the same bytes', () => {
    fc.assert(
      fc.property(recordBody, (body) => {
        const text = encodeAuditRecordBody(body);
        const decoded = decodeAuditRecordBody(text, refuse);
        expect(decoded).toEqual(body);
        expect(encodeAuditRecordBody(decoded)).toBe(text);
        expect(hashAuditRecordBody(decoded)).toBe(hashAuditRecordBody(body));
      }),
      { numRuns: 1000 },
    );
  });

  it('does not depend on the order members were written in', () => {
    fc.assert(
      fc.property(recordBody, (body) => {
        const reversed = Object.fromEntries(Object.entries(body.details).reverse()) as AuditDetails;
        expect(encodeAuditRecordBody({ ...body, details: reversed })).toBe(encodeAuditRecordBody(body));
      }),
      { numRuns: 1000 },
    );
  });

  it('changes the hash when any field changes', () => {
    fc.assert(
      fc.property(recordBody, recordBody, (a, b) => {
        fc.pre(encodeAuditRecordBody(a) !== encodeAuditRecordBody(b));
        expect(hashAuditRecordBody(a)).not.toBe(hashAuditRecordBody(b));
      }),
      { numRuns: 1000 },
    );
  });

  it('decodes only canonical text, refusing everything else with the caller’s code', () => {
    const body = fc.sample(recordBody, { numRuns: 1, seed: 7 })[0]!;
    const text = encodeAuditRecordBody(body);
    const refused = [
      text.replace('{', '{ '),
      JSON.stringify(JSON.parse(text), null, 1),
      text.replace('"v":1', '"v":2'),
      text.replace('"v":1', '"v":1,"w":0'),
      text.slice(0, -1),
      '[]',
      'null',
      'x'.repeat(9000),
      text.replace(/"seq":\d+/, '"seq":0'),
      text.replace(/"time":"[^"]+"/, '"time":"2025-02-30T00:00:00.000Z"'),
      text.replace(/"prev":"[0-9a-f]+"/, `"prev":"${'A'.repeat(64)}"`),
    ];
    for (const candidate of refused) {
      expect(() => decodeAuditRecordBody(candidate, refuse)).toThrow(
        expect.objectContaining({ code: 'AUDIT_CHAIN_BROKEN' }) as Error,
      );
    }
  });

  it('never throws anything but the caller’s error on arbitrary text', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        try {
          decodeAuditRecordBody(text, refuse);
        } catch (err) {
          expect(err).toBeInstanceOf(TresorError);
          expect((err as TresorError).code).toBe('AUDIT_CHAIN_BROKEN');
        }
      }),
      { numRuns: 1000 },
    );
  });
});
