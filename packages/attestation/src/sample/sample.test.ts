import { inspect } from 'node:util';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { bytesToHex, hexToBytes, utf8Decode, utf8Encode } from '@tresor/crypto';
import {
  createSampleEvidence,
  createSampleEvidenceAsync,
  parseSampleEvidence,
  SampleSigningKey,
  SampleVerifyKey,
  sampleVerifier,
  SAMPLE_SIGNATURE_CONTEXT,
} from './index.js';

const NOW = { now: new Date('2025-06-01T00:00:00Z') };

// RFC 8032 §7.1, TEST 1 and TEST 2: Ed25519 key pairs and signatures.
const RFC8032 = [
  {
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
];

function fixedKey(seedHex: string): SampleSigningKey {
  return SampleSigningKey.generate(() => hexToBytes(seedHex));
}

function reportData(fill: number): Uint8Array {
  return new Uint8Array(64).fill(fill);
}

function withMembers(evidence: Uint8Array, change: (o: Record<string, unknown>) => void): Uint8Array {
  const json = JSON.parse(utf8Decode(evidence)) as Record<string, unknown>;
  change(json);
  return utf8Encode(JSON.stringify(json));
}

async function verify(evidence: Uint8Array, verifyKey?: SampleVerifyKey, acceptUnsigned?: boolean) {
  const endorsements = {
    ...(verifyKey === undefined ? {} : { verifyKey }),
    ...(acceptUnsigned === undefined ? {} : { acceptUnsigned }),
  };
  return sampleVerifier.verify(sampleVerifier.parse(evidence), endorsements, NOW);
}

function malformedCode(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    return isTresorError(err) ? err.code : `non-TresorError: ${String(err)}`;
  }
  return undefined;
}

describe('sample TEE keys', () => {
  it('signs exactly as RFC 8032 Ed25519 (§7.1 vectors)', async () => {
    for (const v of RFC8032) {
      const key = fixedKey(v.secret);
      expect(key.verifyKey.hex).toBe(v.public);
      expect(bytesToHex(key.sign(hexToBytes(v.message)))).toBe(v.signature);
      expect(await key.verifyKey.verify(hexToBytes(v.signature), hexToBytes(v.message))).toBe(true);
    }
  });

  it('round-trips through JWK (RFC 8037) and reads public keys as JWK or hex', () => {
    const key = fixedKey(RFC8032[0]!.secret);
    const jwk = key.exportJwk();
    expect(jwk).toEqual({
      kty: 'OKP',
      crv: 'Ed25519',
      x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo',
      d: 'nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A',
    });
    const again = SampleSigningKey.parse(JSON.stringify(jwk));
    expect(again.verifyKey.hex).toBe(key.verifyKey.hex);
    expect(SampleVerifyKey.parse(utf8Encode(JSON.stringify(key.verifyKey.toJwk()))).hex).toBe(
      RFC8032[0]!.public,
    );
    expect(SampleVerifyKey.parse(JSON.stringify(jwk)).hex).toBe(RFC8032[0]!.public);
    expect(SampleVerifyKey.parse(`${RFC8032[0]!.public}\n`).hex).toBe(RFC8032[0]!.public);
  });

  it('refuses malformed keys with INPUT_MALFORMED', () => {
    const good = fixedKey(RFC8032[0]!.secret).exportJwk();
    const bad = [
      'not a key',
      '[]',
      JSON.stringify({ ...good, kty: 'EC' }),
      JSON.stringify({ ...good, crv: 'X25519' }),
      JSON.stringify({ ...good, x: 'AAAA' }),
      JSON.stringify({ ...good, d: 5 }),
      'abcd',
    ];
    for (const text of bad) expect(malformedCode(() => SampleVerifyKey.parse(text))).toBe('INPUT_MALFORMED');
    for (const text of bad) expect(malformedCode(() => SampleSigningKey.parse(text))).toBe('INPUT_MALFORMED');
    expect(malformedCode(() => SampleSigningKey.parse(JSON.stringify({ ...good, d: undefined })))).toBe(
      'INPUT_MALFORMED',
    );
    const other = fixedKey(RFC8032[1]!.secret).exportJwk();
    expect(malformedCode(() => SampleSigningKey.parse(JSON.stringify({ ...good, x: other.x })))).toBe(
      'INPUT_MALFORMED',
    );
    expect(malformedCode(() => SampleVerifyKey.fromBytes(new Uint8Array(31)))).toBe('INPUT_MALFORMED');
    expect(malformedCode(() => SampleSigningKey.parse(new Uint8Array([0xff, 0xfe])))).toBe('INPUT_MALFORMED');
  });

  it('signs natively (signAsync) exactly as it signs with @noble: the RFC 8032 §7.1 signatures', async () => {
    for (const v of RFC8032) {
      const key = fixedKey(v.secret);
      expect(bytesToHex(await key.signAsync(hexToBytes(v.message)))).toBe(v.signature);
    }
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array(),
        async (seed, message) => {
          const key = SampleSigningKey.generate(() => seed);
          expect(bytesToHex(await key.signAsync(message))).toBe(bytesToHex(key.sign(message)));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never serialises the signing key, and cannot sign after destroy()', async () => {
    const key = fixedKey(RFC8032[0]!.secret);
    const d = key.exportJwk().d;
    for (const shown of [JSON.stringify({ key }), String(key), inspect(key), inspect({ key })]) {
      expect(shown).not.toContain(d);
      expect(shown).not.toContain(RFC8032[0]!.secret);
      expect(shown).toContain('redacted');
    }
    await key.signAsync(new Uint8Array(1));
    key.destroy();
    expect(malformedCode(() => key.sign(new Uint8Array(1)))).toBe('INTERNAL_ERROR');
    await expect(key.signAsync(new Uint8Array(1))).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
    // Destroyed while its native key was still being imported: refused too.
    const racing = fixedKey(RFC8032[1]!.secret);
    const signing = racing.signAsync(new Uint8Array(1));
    racing.destroy();
    await expect(signing).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
  });
});

describe('sample TEE evidence', () => {
  const key = fixedKey(RFC8032[1]!.secret);

  it("has Trustee's sample shape plus a signature over context || 0x00 || JCS(unsigned members)", async () => {
    const evidence = createSampleEvidence({ reportData: reportData(7), svn: 3, signingKey: key });
    const json = JSON.parse(utf8Decode(evidence)) as Record<string, string>;
    expect(Object.keys(json)).toEqual(['svn', 'report_data', 'signature']);
    expect(json.svn).toBe('3');
    expect(json.report_data).toBe(Buffer.from(reportData(7)).toString('base64'));
    const message = `${SAMPLE_SIGNATURE_CONTEXT}\u0000{"report_data":"${json.report_data}","svn":"3"}`;
    expect(await key.verifyKey.verify(Buffer.from(json.signature!, 'base64'), utf8Encode(message))).toBe(
      true,
    );
  });

  it('verifies signed evidence and marks it insecure', async () => {
    const measurement = new Uint8Array(48).fill(0xab);
    const evidence = createSampleEvidence({
      reportData: hexToBytes('0102'),
      svn: 9,
      signingKey: key,
      measurement,
    });
    const result = await verify(evidence, key.verifyKey);
    expect(result).toMatchObject({
      tee: 'sample',
      valid: true,
      error: null,
      checks: { evidence_signature: { ok: true } },
    });
    const expectedReportData = `0102${'00'.repeat(62)}`;
    expect(result.claims).toEqual({
      svn: 9,
      report_data: expectedReportData,
      measurement: 'ab'.repeat(48),
      init_data: null,
      signed: true,
      insecure: true,
    });
    expect(result.appraisal).toEqual({
      tee: 'sample',
      insecure: true,
      debug: false,
      measurements: { measurement: 'ab'.repeat(48) },
      reportData: expectedReportData,
      hardwareIds: [],
      tcb: { svn: 9 },
      vmpl: null,
      nonce: null,
      flags: {},
    });
  });

  it('refuses a changed member, another key, a missing key, and unsigned evidence by default', async () => {
    const evidence = createSampleEvidence({ reportData: reportData(1), svn: 1, signingKey: key });
    const other = fixedKey(RFC8032[0]!.secret).verifyKey;
    const cases = [
      { name: 'svn changed', evidence: withMembers(evidence, (o) => (o.svn = '2')), key: key.verifyKey },
      { name: 'svn as number', evidence: withMembers(evidence, (o) => (o.svn = 1)), key: key.verifyKey },
      {
        name: 'report_data changed',
        evidence: withMembers(
          evidence,
          (o) => (o.report_data = Buffer.from(reportData(2)).toString('base64')),
        ),
        key: key.verifyKey,
      },
      {
        name: 'measurement added',
        evidence: withMembers(evidence, (o) => (o.measurement = '00'.repeat(48))),
        key: key.verifyKey,
      },
      { name: 'other key', evidence, key: other },
      { name: 'no key', evidence, key: undefined },
      { name: 'unsigned', evidence: withMembers(evidence, (o) => delete o.signature), key: key.verifyKey },
    ];
    for (const c of cases) {
      const result = await verify(c.evidence, c.key);
      expect({ name: c.name, valid: result.valid, error: result.error }).toEqual({
        name: c.name,
        valid: false,
        error: 'ATTESTATION_SIGNATURE_INVALID',
      });
      expect(result.checks.evidence_signature?.ok).toBe(false);
      expect(result.appraisal.insecure).toBe(true);
    }
  });

  it('accepts Trustee-style unsigned evidence only when acceptUnsigned is set', async () => {
    // The shape guest-components' sample attester sends: svn as a string, report_data in standard base64.
    const trustee = utf8Encode(
      JSON.stringify({ svn: '1', report_data: Buffer.from('test').toString('base64') }),
    );
    expect((await verify(trustee)).error).toBe('ATTESTATION_SIGNATURE_INVALID');
    const accepted = await verify(trustee, undefined, true);
    expect(accepted.valid).toBe(true);
    expect(accepted.claims).toMatchObject({ svn: 1, signed: false, insecure: true });
    expect(accepted.appraisal.reportData).toBe(`74657374${'00'.repeat(60)}`);
    // A signature, once present, is checked even when unsigned evidence would be accepted.
    const signed = createSampleEvidence({ reportData: reportData(1), svn: 1, signingKey: key });
    expect(
      (
        await verify(
          withMembers(signed, (o) => (o.svn = '5')),
          key.verifyKey,
          true,
        )
      ).valid,
    ).toBe(false);
  });

  it('refuses malformed evidence with ATTESTATION_EVIDENCE_MALFORMED', () => {
    const sig = Buffer.from(new Uint8Array(64)).toString('base64');
    const rd = Buffer.from(reportData(0)).toString('base64');
    const bad: unknown[] = [
      'not json',
      [],
      null,
      { svn: '1' },
      { report_data: rd },
      { svn: '-1', report_data: rd },
      { svn: '01', report_data: rd },
      { svn: -1, report_data: rd },
      { svn: 1.5, report_data: rd },
      { svn: '1', report_data: Buffer.from(new Uint8Array(65)).toString('base64') },
      { svn: '1', report_data: '***' },
      { svn: '1', report_data: rd.replace(/=+$/, '') },
      { svn: '1', report_data: 'AB==' },
      { svn: '1', report_data: rd, signature: sig.slice(4) },
      { svn: '1', report_data: rd, signature: Buffer.from(new Uint8Array(63)).toString('base64') },
      { svn: '1', report_data: rd, measurement: 'AB'.repeat(48) },
      { svn: '1', report_data: rd, measurement: 'ab'.repeat(47) },
      { svn: '1', report_data: rd, extra: true },
    ];
    for (const value of bad) {
      const bytes = utf8Encode(typeof value === 'string' ? value : JSON.stringify(value));
      expect({ value, code: malformedCode(() => parseSampleEvidence(bytes)) }).toEqual({
        value,
        code: 'ATTESTATION_EVIDENCE_MALFORMED',
      });
    }
    expect(malformedCode(() => parseSampleEvidence(new Uint8Array(20_000).fill(0x20)))).toBe(
      'ATTESTATION_EVIDENCE_MALFORMED',
    );
    expect(malformedCode(() => parseSampleEvidence(new Uint8Array([0x7b, 0xff])))).toBe(
      'ATTESTATION_EVIDENCE_MALFORMED',
    );
  });

  it('refuses attester requests it cannot honour', async () => {
    await expect(
      createSampleEvidenceAsync({ reportData: new Uint8Array(65), svn: 0, signingKey: key }),
    ).rejects.toMatchObject({ code: 'INPUT_MALFORMED' });
    expect(
      malformedCode(() => createSampleEvidence({ reportData: new Uint8Array(65), svn: 0, signingKey: key })),
    ).toBe('INPUT_MALFORMED');
    expect(
      malformedCode(() => createSampleEvidence({ reportData: new Uint8Array(1), svn: -1, signingKey: key })),
    ).toBe('INPUT_MALFORMED');
    expect(
      malformedCode(() =>
        createSampleEvidence({
          reportData: new Uint8Array(1),
          svn: 0,
          signingKey: key,
          measurement: new Uint8Array(32),
        }),
      ),
    ).toBe('INPUT_MALFORMED');
  });
});

describe('sample TEE properties', () => {
  const key = fixedKey(RFC8032[1]!.secret);

  it('verifies whatever it signs, with the report data zero-padded to 64 bytes', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 64 }),
        fc.nat(),
        fc.option(fc.uint8Array({ minLength: 48, maxLength: 48 }), { nil: undefined }),
        async (rd, svn, measurement) => {
          const request = {
            reportData: rd,
            svn,
            signingKey: key,
            ...(measurement === undefined ? {} : { measurement }),
          };
          const evidence = createSampleEvidence(request);
          // Signed natively, the evidence is the same, byte for byte.
          expect(await createSampleEvidenceAsync(request)).toEqual(evidence);
          const result = await verify(evidence, key.verifyKey);
          const padded = new Uint8Array(64);
          padded.set(rd);
          return result.valid && result.appraisal.reportData === bytesToHex(padded) && result.claims !== null;
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('never accepts evidence with one byte changed', async () => {
    const evidence = createSampleEvidence({
      reportData: reportData(3),
      svn: 12,
      signingKey: key,
      measurement: new Uint8Array(48).fill(5),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: evidence.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        async (at, xor) => {
          const changed = Uint8Array.from(evidence);
          changed[at]! ^= xor;
          let parsed;
          try {
            parsed = sampleVerifier.parse(changed);
          } catch (err) {
            return isTresorError(err) && err.code === 'ATTESTATION_EVIDENCE_MALFORMED';
          }
          const result = await sampleVerifier.verify(parsed, { verifyKey: key.verifyKey }, NOW);
          return !result.valid && result.error === 'ATTESTATION_SIGNATURE_INVALID';
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('parses arbitrary bytes and JSON only into evidence or ATTESTATION_EVIDENCE_MALFORMED', () => {
    const onlyMalformed = (bytes: Uint8Array): boolean => {
      const code = malformedCode(() => parseSampleEvidence(bytes));
      return code === undefined || code === 'ATTESTATION_EVIDENCE_MALFORMED';
    };
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), onlyMalformed), { numRuns: 3000 });
    fc.assert(
      fc.property(fc.jsonValue(), (v) => onlyMalformed(utf8Encode(JSON.stringify(v)))),
      { numRuns: 3000 },
    );
    fc.assert(
      fc.property(
        fc.record(
          {
            svn: fc.oneof(fc.string(), fc.integer(), fc.double()),
            report_data: fc.base64String(),
            signature: fc.base64String(),
          },
          { requiredKeys: [] },
        ),
        (v) => onlyMalformed(utf8Encode(JSON.stringify(v))),
      ),
      { numRuns: 2000 },
    );
  });
});
