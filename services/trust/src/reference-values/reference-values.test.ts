import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { isTresorError, type ErrorCode } from '@tresor/protocol';
import {
  SampleSigningKey,
  createSampleEvidence,
  sampleVerifier,
  verifyAttestation,
  type AppraisalInput,
} from '@tresor/attestation';
import { MemoryDocumentRepository } from '../signed-documents/document-repository.js';
import { signDocument, type DocumentSigner } from '../signed-documents/document-signer.js';
import { ephemeralDocumentSigner } from '../signed-documents/ephemeral-signer.js';
import { matchesReferenceValueSet, requireReleasedWorkload } from './match-reference-values.js';
import {
  parseReferenceValueKey,
  parseReferenceValueSet,
  type ReferenceValueSet,
} from './reference-value-set.js';
import { ReferenceValueStore } from './reference-value-store.js';
import { verifyReferenceValuesDocument } from './reference-values-document.js';

const testdata = (path: string) =>
  new Uint8Array(
    readFileSync(new URL(`../../../../../shared/testdata/attestation/${path}`, import.meta.url)),
  );

function codeOf(fn: () => unknown): ErrorCode | 'no error' | 'not a TresorError' {
  try {
    fn();
    return 'no error';
  } catch (err) {
    return isTresorError(err) ? err.code : 'not a TresorError';
  }
}
async function asyncCodeOf(promise: Promise<unknown>): Promise<ErrorCode | 'no error' | 'not a TresorError'> {
  return promise.then(
    () => 'no error' as const,
    (err: unknown) => (isTresorError(err) ? err.code : 'not a TresorError'),
  );
}

const clock = { now: () => new Date('2026-03-01T12:00:00Z') };
let signer: DocumentSigner;
let snp: AppraisalInput;
let tdx: AppraisalInput;

beforeAll(async () => {
  signer = await ephemeralDocumentSigner('doc-key');
  snp = (
    await verifyAttestation({
      files: {
        report: testdata('snp/gsg-milan-v2/report.bin'),
        signer_cert: testdata('snp/gsg-milan-v2/vcek.der'),
        ca_chain: testdata('snp/gsg-milan-v2/ask_ark.pem'),
      },
      now: new Date('2025-06-01T00:00:00Z'),
    })
  ).result.appraisal;
  tdx = (
    await verifyAttestation({
      files: {
        quote: testdata('tdx/dcap-qvl-v4-uptodate/quote.bin'),
        collateral: testdata('tdx/dcap-qvl-v4-uptodate/collateral.json'),
        intel_root_ca: testdata('tdx/dcap-qvl-v4-uptodate/intel_sgx_root_ca.der'),
      },
      now: new Date('2025-07-01T00:00:00Z'),
    })
  ).result.appraisal;
});

describe('reference values against real evidence', () => {
  // testdata/attestation/snp/gsg-milan-v2/expected.json claims.measurement
  const GSG_MEASUREMENT =
    'b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01';

  it('names the release a recorded SEV-SNP report is, and refuses it under any other measurement', () => {
    expect(snp.measurements.measurement).toBe(GSG_MEASUREMENT);
    const serving = parseReferenceValueSet({
      component: 'serving',
      release: '1.0.0',
      tee: 'snp',
      measurements: { measurement: [GSG_MEASUREMENT.toUpperCase()], host_data: [snp.measurements.host_data] },
    });
    expect(serving.measurements.measurement).toEqual([GSG_MEASUREMENT]);
    expect(requireReleasedWorkload([serving], snp)).toEqual({
      component: 'serving',
      release: '1.0.0',
      tee: 'snp',
    });
    expect(codeOf(() => requireReleasedWorkload([serving], snp, 'gateway'))).toBe('MEASUREMENT_NOT_ALLOWED');
    const withdrawn = { ...serving, measurements: { measurement: ['00'.repeat(48)] } };
    expect(codeOf(() => requireReleasedWorkload([withdrawn], snp))).toBe('MEASUREMENT_NOT_ALLOWED');
    // The same measurement on another TEE kind is another workload.
    expect(matchesReferenceValueSet({ ...serving, tee: 'tdx' }, snp)).toBe(false);
  });

  it('matches a recorded TDX quote on MRTD and RTMRs, and needs every named register', () => {
    const gateway = parseReferenceValueSet({
      component: 'gateway',
      release: '2.1.0',
      tee: 'tdx',
      measurements: {
        mrtd: [tdx.measurements.mrtd],
        rtmr0: [tdx.measurements.rtmr0],
        rtmr1: [tdx.measurements.rtmr1],
      },
    });
    expect(requireReleasedWorkload([gateway], tdx, 'gateway').release).toBe('2.1.0');
    const { rtmr1: _dropped, ...withoutRtmr1 } = tdx.measurements;
    expect(matchesReferenceValueSet(gateway, { ...tdx, measurements: withoutRtmr1 })).toBe(false);
  });

  it('matches sample TEE evidence by its measurement', async () => {
    const key = SampleSigningKey.generate();
    const measurement = new Uint8Array(48).fill(7);
    const evidence = createSampleEvidence({
      reportData: new Uint8Array(64),
      svn: 1,
      signingKey: key,
      measurement,
    });
    const result = await sampleVerifier.verify(
      sampleVerifier.parse(evidence),
      { verifyKey: key.verifyKey },
      { now: new Date() },
    );
    const set = parseReferenceValueSet({
      component: 'console',
      release: 'dev',
      tee: 'sample',
      measurements: { measurement: ['07'.repeat(48)] },
    });
    expect(requireReleasedWorkload([set], result.appraisal)).toEqual({
      component: 'console',
      release: 'dev',
      tee: 'sample',
    });
  });

  it('needs the init data and image the set names, when it names them (fail closed)', () => {
    const set = parseReferenceValueSet({
      component: 'serving',
      release: '1.0.0',
      tee: 'snp',
      measurements: { measurement: [GSG_MEASUREMENT] },
      initDataHashes: ['aa'.repeat(48)],
      imageDigests: [`sha256:${'BB'.repeat(32)}`],
    });
    expect(matchesReferenceValueSet(set, snp)).toBe(false);
    expect(matchesReferenceValueSet(set, { ...snp, initDataHash: 'aa'.repeat(48) })).toBe(false);
    expect(
      matchesReferenceValueSet(set, {
        ...snp,
        initDataHash: 'AA'.repeat(48),
        imageDigest: `sha256:${'bb'.repeat(32)}`,
      }),
    ).toBe(true);
    expect(
      matchesReferenceValueSet(set, {
        ...snp,
        initDataHash: 'ab'.repeat(48),
        imageDigest: `sha256:${'bb'.repeat(32)}`,
      }),
    ).toBe(false);
  });
});

const hex = (bytes: number) =>
  fc.uint8Array({ minLength: bytes, maxLength: bytes }).map((b) => Buffer.from(b).toString('hex'));
const measurementName = fc.stringMatching(/^[a-z][a-z0-9_]{0,6}$/);
const arbitrarySet: fc.Arbitrary<ReferenceValueSet> = fc
  .record({
    component: fc.constantFrom('gateway', 'serving', 'console'),
    release: fc.stringMatching(/^[0-9]\.[0-9]\.[0-9]$/),
    tee: fc.constantFrom('snp', 'tdx', 'sample'),
    measurements: fc.dictionary(measurementName, fc.array(hex(8), { minLength: 1, maxLength: 3 }), {
      minKeys: 1,
      maxKeys: 4,
    }),
  })
  .map(parseReferenceValueSet);

describe('matching (properties)', () => {
  it('a workload showing one allowed value per named measurement (and anything else) matches', () => {
    fc.assert(
      fc.property(
        arbitrarySet,
        fc.nat(),
        fc.dictionary(fc.stringMatching(/^x[a-z]{1,4}$/), hex(8)),
        (set, pick, extra) => {
          const measurements = Object.fromEntries(
            Object.entries(set.measurements).map(([name, values]) => [
              name,
              values[pick % values.length]!.toUpperCase(),
            ]),
          );
          expect(
            matchesReferenceValueSet(set, { tee: set.tee, measurements: { ...extra, ...measurements } }),
          ).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('a workload with any one named measurement changed or missing does not match', () => {
    fc.assert(
      fc.property(arbitrarySet, fc.nat(), hex(8), fc.boolean(), (set, which, replacement, drop) => {
        const names = Object.keys(set.measurements);
        const target = names[which % names.length]!;
        fc.pre(!set.measurements[target]!.includes(replacement));
        const measurements: Record<string, string> = Object.fromEntries(
          Object.entries(set.measurements)
            .filter(([name]) => !drop || name !== target)
            .map(([name, values]) => [name, name === target ? replacement : values[0]!]),
        );
        expect(matchesReferenceValueSet(set, { tee: set.tee, measurements })).toBe(false);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('parsing admin input', () => {
  const valid = { component: 'gateway', release: '1.0.0', tee: 'snp', measurements: { measurement: ['ab'] } };

  it('normalises hex to lowercase, sorts and de-duplicates values', () => {
    const set = parseReferenceValueSet({
      ...valid,
      measurements: { measurement: ['CD', 'ab', 'cd'] },
      modelDigests: [],
    });
    expect(set.measurements.measurement).toEqual(['ab', 'cd']);
    expect(set.imageDigests).toEqual([]);
  });

  it.each([
    [{ ...valid, measurements: {} }, 'an empty measurement set would match anything'],
    [{ ...valid, measurements: { measurement: [] } }, 'a measurement without values'],
    [{ ...valid, measurements: { measurement: ['abc'] } }, 'odd hex'],
    [{ ...valid, measurements: { measurement: ['zz'] } }, 'not hex'],
    [{ ...valid, measurements: { Measurement: ['ab'] } }, 'a name outside the alphabet'],
    [{ ...valid, measurements: { __proto__: ['ab'] } }, 'a prototype name'],
    [{ ...valid, component: 'Gateway' }, 'an upper-case component'],
    [{ ...valid, component: 'a/b' }, 'a component that is no SPIFFE path segment'],
    [{ ...valid, release: '' }, 'an empty release'],
    [{ ...valid, tee: 'sgx' }, 'an unsupported TEE'],
    [{ ...valid, imageDigests: ['sha512:ab'] }, 'an image digest that is not sha256'],
    [{ ...valid, initDataHashes: ['ab'.repeat(20)] }, 'an init-data hash of no SHA-2 length'],
    [{ ...valid, extra: true }, 'an unknown member'],
    ['gateway', 'not an object'],
  ])('refuses %j (%s) with INPUT_MALFORMED', (input, _why) => {
    expect(codeOf(() => parseReferenceValueSet(input))).toBe('INPUT_MALFORMED');
  });

  it('answers any JSON value with a set or INPUT_MALFORMED, never another error (property)', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.jsonValue(), fc.record({ component: fc.string(), measurements: fc.jsonValue() })),
        (value) => {
          expect(['no error', 'INPUT_MALFORMED']).toContain(codeOf(() => parseReferenceValueSet(value)));
          expect(['no error', 'INPUT_MALFORMED']).toContain(codeOf(() => parseReferenceValueKey(value)));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('ReferenceValueStore', () => {
  const set = (release: string, measurement: string) =>
    parseReferenceValueSet({
      component: 'serving',
      release,
      tee: 'snp',
      measurements: { measurement: [measurement] },
    });

  it('publishes every change as the next signed version, which clients verify and pin', async () => {
    const store = await ReferenceValueStore.open({
      signer,
      issuer: 'trust.test',
      repository: new MemoryDocumentRepository(),
      clock,
    });
    const keys = store.publisher.verificationKeys;
    const v1Jws = store.document.jws;
    const v1 = await verifyReferenceValuesDocument(v1Jws, { keys, issuer: 'trust.test' });
    expect(v1).toMatchObject({
      version: 1,
      body: { referenceValues: [] },
      keyId: 'doc-key',
      issuer: 'trust.test',
    });

    await store.put(set('1.1.0', 'bb'));
    await store.put(set('1.0.0', 'aa'));
    await store.put(set('1.0.0', 'cc'));
    const v4 = await verifyReferenceValuesDocument(store.document.jws, { keys, pinned: v1.pin });
    expect(v4.version).toBe(4);
    expect(v4.body.referenceValues.map((s) => [s.release, s.measurements.measurement])).toEqual([
      ['1.0.0', ['cc']],
      ['1.1.0', ['bb']],
    ]);
    expect(store.requireReleased({ tee: 'snp', measurements: { measurement: 'cc' } })).toMatchObject({
      release: '1.0.0',
    });

    await store.remove({ component: 'serving', release: '1.0.0', tee: 'snp' });
    expect(codeOf(() => store.requireReleased({ tee: 'snp', measurements: { measurement: 'cc' } }))).toBe(
      'MEASUREMENT_NOT_ALLOWED',
    );
    expect(await asyncCodeOf(store.remove({ component: 'serving', release: '1.0.0', tee: 'snp' }))).toBe(
      'ADMIN_TARGET_NOT_FOUND',
    );
    expect(store.document.version).toBe(5);
    // A client that saw version 4 refuses the old version 1 when it is served again (rollback).
    expect(await asyncCodeOf(verifyReferenceValuesDocument(v1Jws, { keys, pinned: v4.pin }))).toBe(
      'SIGNED_DOCUMENT_ROLLBACK',
    );
  });

  it('reloads its document after a restart, keeping the version', async () => {
    const repository = new MemoryDocumentRepository();
    const a = await ReferenceValueStore.open({ signer, issuer: 'trust.test', repository, clock });
    await a.put(set('1.0.0', 'aa'));
    const b = await ReferenceValueStore.open({ signer, issuer: 'trust.test', repository, clock });
    expect(b.document.version).toBe(2);
    expect(b.sets).toEqual(a.sets);
  });

  it('refuses a document whose signature verifies but whose body is not reference values', async () => {
    const keys = { keys: [signer.publicJwk] };
    for (const body of [
      {},
      { referenceValues: [{ component: 'x' }] },
      { referenceValues: [set('1.0.0', 'aa'), set('1.0.0', 'bb')] },
    ]) {
      const jws = await signDocument(signer, 'reference-values', {
        ...body,
        iss: 'trust.test',
        iat: 1,
        version: 1,
      });
      expect(await asyncCodeOf(verifyReferenceValuesDocument(jws, { keys }))).toBe('SIGNED_DOCUMENT_INVALID');
    }
  });
});
