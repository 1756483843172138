import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import {
  FakeCollateralServer,
  pcsResponses,
  type DcapQvlCollateral,
} from '../../../../../test/support/fake-collateral-services.js';
import {
  readTestdata,
  readTestdataJson,
  testdataPath,
  vectorDirs,
} from '../../../../../test/support/testdata.js';
import { testdataVector } from '../../conformance/testdata-vectors.js';
import { parseCertificates } from '../../certs.js';
import { intelSgxRootCa } from '../../tdx/intel-root.js';
import { verifyAttestation } from '../../verify-attestation.js';
import type { CollateralFetchOptions } from './fetch-options.js';
import { crlDistributionPoint, fetchTdxCollateral, tdxCollateralRequest } from './intel-pcs.js';

/** Every TDX vector that ships collateral: its quote, collateral and cases. */
const vectors = vectorDirs('tdx')
  .filter((dir) => readdirSync(testdataPath(dir)).includes('collateral.json'))
  .map((dir) => ({
    vector: testdataVector(readTestdataJson(`${dir}/expected.json`), (f) => readTestdata(`${dir}/${f}`)),
    collateral: readTestdataJson(`${dir}/collateral.json`) as DcapQvlCollateral,
  }));

/** The PCK CA that issued the collateral's PCK CRL, from its issuer chain (not from the code under test). */
function pckCaOf(collateral: DcapQvlCollateral): 'platform' | 'processor' {
  const issuer = parseCertificates(new TextEncoder().encode(collateral.pck_crl_issuer_chain))[0]!;
  return issuer.subjectName.getField('CN')[0] === 'Intel SGX PCK Platform CA' ? 'platform' : 'processor';
}

function fmspcOf(collateral: DcapQvlCollateral): string {
  return (JSON.parse(collateral.tcb_info) as { fmspc: string }).fmspc.toUpperCase();
}

describe('fetchTdxCollateral against a local fake Intel PCS', () => {
  let pcs: FakeCollateralServer;
  let directory: string;
  const options = (overrides: Partial<CollateralFetchOptions> = {}): CollateralFetchOptions => ({
    directory,
    endpoints: { intelPcs: pcs.url, intelRootCaCrl: `${pcs.url}/IntelSGXRootCA.der` },
    sleep: () => Promise.resolve(),
    ...overrides,
  });

  beforeAll(async () => {
    pcs = await FakeCollateralServer.start();
  });
  afterAll(() => pcs.close());
  beforeEach(() => {
    pcs.reset();
    directory = mkdtempSync(join(tmpdir(), 'tresor-pcs-'));
  });

  function servePcs(collateral: DcapQvlCollateral): string[] {
    const responses = pcsResponses(collateral);
    const paths = [
      `/tdx/certification/v4/tcb?fmspc=${fmspcOf(collateral)}`,
      '/tdx/certification/v4/qe/identity',
      `/sgx/certification/v4/pckcrl?ca=${pckCaOf(collateral)}&encoding=der`,
      '/IntelSGXRootCA.der',
    ];
    pcs.serve(paths[0]!, responses.tcbInfo);
    pcs.serve(paths[1]!, responses.qeIdentity);
    pcs.serve(paths[2]!, responses.pckCrl);
    pcs.serve(paths[3]!, responses.rootCaCrl);
    return paths;
  }

  it('covers at least the two dcap-qvl vectors', () => {
    expect(vectors.map((v) => v.vector.id)).toEqual(
      expect.arrayContaining(['tdx/dcap-qvl-v4-uptodate', 'tdx/dcap-qvl-v5-outdated']),
    );
  });

  for (const { vector, collateral } of vectors) {
    it(`${vector.id}: collateral assembled from PCS responses verifies exactly like the test data's`, async () => {
      const paths = servePcs(collateral);
      const first = vector.cases[0]!.verifyAt;
      const fetched = await fetchTdxCollateral(vector.files.quote!, options({ now: () => first }));
      expect(pcs.requests).toEqual(paths);
      const [file] = fetched.files;
      expect(file).toMatchObject({ role: 'collateral', source: 'network' });
      const assembled = JSON.parse(readFileSync(file!.path, 'utf8')) as DcapQvlCollateral;
      // The signed documents are the served text, byte for byte; the CRLs the same DER.
      expect(assembled).toEqual(collateral);
      for (const c of vector.cases) {
        const request = { tee: 'tdx' as const, now: c.verifyAt };
        const withFetched = await verifyAttestation({
          ...request,
          files: { quote: vector.files.quote!, collateral: new Uint8Array(readFileSync(file!.path)) },
        });
        const withTestdata = await verifyAttestation({ ...request, files: vector.files });
        expect(withFetched.result.valid).toBe(c.valid);
        expect(withFetched.result).toEqual(withTestdata.result);
      }
    });
  }

  it('reuses the collateral until the first nextUpdate of its parts, then fetches it again', async () => {
    const { vector, collateral } = vectors.find((v) => v.vector.id === 'tdx/dcap-qvl-v4-uptodate')!;
    servePcs(collateral);
    await fetchTdxCollateral(vector.files.quote!, options({ now: () => new Date('2025-07-01T00:00:00Z') }));
    pcs.requests.length = 0;
    const cached = await fetchTdxCollateral(
      vector.files.quote!,
      options({ now: () => new Date('2025-07-10T00:00:00Z') }),
    );
    expect(cached.files[0]!.source).toBe('cache');
    expect(cached.files[0]!.validUntil).toEqual(new Date('2025-07-19T10:00:35Z'));
    expect(pcs.requests).toEqual([]);

    const stale = await fetchTdxCollateral(
      vector.files.quote!,
      options({ now: () => new Date('2025-08-01T00:00:00Z') }),
    );
    expect(stale.files[0]!.source).toBe('network');
    expect(pcs.requests).toHaveLength(4);
    // The fake service only has the old snapshot: it is written, and the caller is told.
    expect(stale.notes).toEqual([expect.stringMatching(/served outside its own validity/)]);
  });

  it('refuses responses that are not PCS documents, writing nothing', async () => {
    const { vector, collateral } = vectors[0]!;
    const responses = pcsResponses(collateral);
    const [tcbPath, qePath, crlPath] = servePcs(collateral);
    const cases: [string, Parameters<FakeCollateralServer['serve']>[1], RegExp][] = [
      [
        tcbPath!,
        { ...responses.tcbInfo, headers: {} },
        /no TCB-Info-Issuer-Chain or SGX-TCB-Info-Issuer-Chain header/,
      ],
      [tcbPath!, { ...responses.tcbInfo, body: '{"tcbInfo":{"id":"TDX"}}' }, /no "signature" member/],
      [tcbPath!, { ...responses.tcbInfo, body: '{"signature":"00"}' }, /no "tcbInfo" member/],
      [
        tcbPath!,
        {
          ...responses.tcbInfo,
          body: String(responses.tcbInfo.body).replace(/"fmspc":"[0-9A-Fa-f]+"/, '"fmspc":"00906ED50000"'),
        },
        /TCB info for FMSPC 00906ED50000/,
      ],
      [
        qePath!,
        { ...responses.qeIdentity, body: String(responses.qeIdentity.body).replace('"TD_QE"', '"QE"') },
        /id "QE", not "TD_QE"/,
      ],
      [crlPath!, { ...responses.pckCrl, body: 'not a crl' }, /not an X.509 CRL/],
      [
        crlPath!,
        { ...responses.pckCrl, headers: { 'SGX-PCK-CRL-Issuer-Chain': '%E0%A4%A' } },
        /not URL-encoded/,
      ],
    ];
    for (const [path, response, message] of cases) {
      servePcs(collateral);
      pcs.serve(path, response);
      const failure = fetchTdxCollateral(
        vector.files.quote!,
        options({ now: () => vector.cases[0]!.verifyAt }),
      );
      await expect(failure).rejects.toMatchObject({
        code: 'COLLATERAL_RESPONSE_INVALID',
        message: expect.stringMatching(message) as unknown,
      });
    }
    expect(readdirSync(directory)).toEqual([]);
  });

  it('maps an FMSPC unknown to PCS to COLLATERAL_NOT_FOUND', async () => {
    await expect(fetchTdxCollateral(vectors[0]!.vector.files.quote!, options())).rejects.toMatchObject({
      code: 'COLLATERAL_NOT_FOUND',
    });
  });
});

describe('tdxCollateralRequest', () => {
  it('reads FMSPC and PCK CA from the PCK certificate in each quote', () => {
    for (const dir of vectorDirs('tdx')) {
      const { pck } = (
        readTestdataJson(`${dir}/expected.json`) as { claims: { pck: { fmspc: string; issuer_cn: string } } }
      ).claims;
      expect(tdxCollateralRequest(readTestdata(`${dir}/quote.bin`))).toEqual({
        fmspc: pck.fmspc.toUpperCase(),
        ca: pck.issuer_cn === 'Intel SGX PCK Platform CA' ? 'platform' : 'processor',
      });
    }
  });

  const refusesCleanly = (bytes: Uint8Array): void => {
    try {
      tdxCollateralRequest(bytes);
    } catch (err) {
      expect(err).toBeInstanceOf(TresorError);
    }
  };

  it('refuses garbage with a clean code', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), refusesCleanly), { numRuns: 10_000 });
  });

  it('refuses truncated or altered real quotes with a clean code', () => {
    // Each run parses the quote's certificate chain (~2 ms), so fewer runs than for garbage.
    const quote = readTestdata('attestation/tdx/dcap-qvl-v4-uptodate/quote.bin');
    const input = fc.oneof(
      fc.nat({ max: quote.length }).map((n) => quote.subarray(0, n)),
      fc.tuple(fc.nat({ max: quote.length - 1 }), fc.integer({ min: 1, max: 255 })).map(([at, x]) => {
        const altered = quote.slice();
        altered[at]! ^= x;
        return altered;
      }),
    );
    fc.assert(fc.property(input, refusesCleanly), { numRuns: 1_000 });
  });

  it('takes the root CA CRL from the pinned root certificate', () => {
    expect(crlDistributionPoint(intelSgxRootCa())).toBe(
      'https://certificates.trustedservices.intel.com/IntelSGXRootCA.der',
    );
  });
});
