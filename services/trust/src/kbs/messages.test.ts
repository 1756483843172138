import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { parseKbsAttestation, parseKbsRequest } from './messages.js';

const EXAMPLES = new URL('../../../../../shared/testdata/protocol/kbs/examples/', import.meta.url);
const example = (name: string): Uint8Array => new Uint8Array(readFileSync(new URL(name, EXAMPLES)));
const encode = (value: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(value));

function code(f: () => unknown): string {
  try {
    f();
    return 'accepted';
  } catch (err) {
    return isTresorError(err) ? err.code : `non-TresorError: ${String(err)}`;
  }
}

describe('KBS messages', () => {
  it('parses the example Request (examples/01-request.json)', () => {
    expect(parseKbsRequest(example('01-request.json'))).toEqual({
      version: '0.4.0',
      tee: 'snp',
      extraParams: { 'supported-hash-algorithms': ['sha256', 'sha384', 'sha512', 'sm3'] },
    });
  });

  it('parses the example Attestation (examples/03-attestation.json) with its kebab- and snake_case members', () => {
    const attestation = parseKbsAttestation(example('03-attestation.json'));
    expect(attestation.initData).toEqual({
      format: 'toml',
      body: 'algorithm = "sha384"\nversion = "0.1.0"\n\n[data]\n',
    });
    expect(attestation.runtimeData.nonce).toBe('Hh459Yb8p3scemptkzC7Od5EBi16hbNUPTZzKRoFH/E=');
    expect(attestation.runtimeData.teePubkey).toMatchObject({ kty: 'RSA', alg: 'RSA-OAEP-256', e: 'AQAB' });
    expect(attestation.additionalEvidence).toBe('');
    expect(attestation.primaryEvidence).toEqual({
      '<tee-specific>':
        'e.g. snp: {attestation_report, cert_chain}; tdx: {cc_eventlog, quote}; sample: {svn, report_data}',
    });
  });

  it('accepts a Request without extra-params and an Attestation with null or no init-data', () => {
    expect(parseKbsRequest(encode({ version: '0.4.0', tee: 'sample' })).extraParams).toBeNull();
    const base = {
      'runtime-data': { nonce: 'n', 'tee-pubkey': {} },
      'tee-evidence': { primary_evidence: {}, additional_evidence: '' },
    };
    expect(parseKbsAttestation(encode(base)).initData).toBeNull();
    expect(parseKbsAttestation(encode({ ...base, 'init-data': null })).initData).toBeNull();
  });

  it.each([
    ['additional_evidence as an object', { primary_evidence: {}, additional_evidence: {} }],
    ['no additional_evidence', { primary_evidence: {} }],
  ])('refuses %s: it is a JSON string in the protocol', (_what, teeEvidence) => {
    const body = encode({ 'runtime-data': { nonce: 'n', 'tee-pubkey': {} }, 'tee-evidence': teeEvidence });
    expect(code(() => parseKbsAttestation(body))).toBe('INPUT_MALFORMED');
  });

  it('refuses a nonce that is not a string and a tee-pubkey that is not an object', () => {
    const evidence = { primary_evidence: {}, additional_evidence: '' };
    expect(
      code(() =>
        parseKbsAttestation(
          encode({ 'runtime-data': { nonce: 1, 'tee-pubkey': {} }, 'tee-evidence': evidence }),
        ),
      ),
    ).toBe('INPUT_MALFORMED');
    expect(
      code(() =>
        parseKbsAttestation(
          encode({ 'runtime-data': { nonce: 'n', 'tee-pubkey': 'k' }, 'tee-evidence': evidence }),
        ),
      ),
    ).toBe('INPUT_MALFORMED');
  });

  it('refuses bytes that are not UTF-8 JSON without quoting them', () => {
    for (const bytes of [new Uint8Array([0xff, 0xfe]), new TextEncoder().encode('{"version": SECRET')]) {
      try {
        parseKbsRequest(bytes);
        expect.unreachable();
      } catch (err) {
        expect(isTresorError(err) && err.code).toBe('INPUT_MALFORMED');
        expect((err as Error).message).not.toContain('SECRET');
      }
    }
  });

  it('never throws anything but INPUT_MALFORMED for arbitrary bytes or JSON (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.jsonValue().map(encode)), (bytes) => {
        const request = code(() => parseKbsRequest(bytes));
        const attestation = code(() => parseKbsAttestation(bytes));
        return (
          ['accepted', 'INPUT_MALFORMED'].includes(request) &&
          ['accepted', 'INPUT_MALFORMED'].includes(attestation)
        );
      }),
      { numRuns: 1000 },
    );
  });
});
