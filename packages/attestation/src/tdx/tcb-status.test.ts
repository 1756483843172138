import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hexToBytes } from '@tresor/crypto';
import { readTestdata, readTestdataText } from '../../../../test/support/testdata.js';
import { parseCertificates } from '../certs.js';
import {
  parseTdQeIdentity,
  parseTdxTcbInfo,
  type TdQeIdentity,
  type TdxTcbInfo,
} from './collateral-schema.js';
import { readPckSgxExtension, type PckSgxExtension } from './pck-extension.js';
import { parseTdxQuote } from './quote.js';
import {
  combineMatches,
  mergeRatings,
  ratePlatform,
  rateQuotingEnclave,
  TCB_STATUSES,
  type TcbMatch,
  type TcbRating,
} from './tcb-status.js';

/**
 * TCB status from real collateral (dcap-qvl PCS snapshots), then the same platform moved up and
 * down its TCB levels, and the rules every rating must keep (merge severity, monotone matching).
 */

interface Vector {
  tcbInfo: TdxTcbInfo;
  qeIdentity: TdQeIdentity;
  quote: ReturnType<typeof parseTdxQuote>;
  pck: PckSgxExtension;
}

function vector(dir: string): Vector {
  const collateral = JSON.parse(readTestdataText(`attestation/tdx/${dir}/collateral.json`)) as Record<
    string,
    string
  >;
  const tcbInfo = parseTdxTcbInfo(collateral.tcb_info!);
  const qeIdentity = parseTdQeIdentity(collateral.qe_identity!);
  if (!tcbInfo.ok || !qeIdentity.ok) throw new Error('test collateral does not parse');
  const quote = parseTdxQuote(readTestdata(`attestation/tdx/${dir}/quote.bin`));
  const pck = readPckSgxExtension(parseCertificates(quote.pckChainPem)[0]!);
  if (pck === undefined) throw new Error('test PCK has no SGX extension');
  return { tcbInfo: tcbInfo.value, qeIdentity: qeIdentity.value, quote, pck };
}

const upToDate = vector('dcap-qvl-v4-uptodate');
const outdated = vector('dcap-qvl-v5-outdated');

function matched(match: TcbMatch): TcbRating {
  if (!match.matched) throw new Error(`expected a match, got ${match.reason}`);
  return match.rating;
}

/** The platform of `v` placed exactly at `level` of its TCB info (SGX, PCE and TDX components). */
function atLevel(
  v: Vector,
  level: number,
  moduleSvn?: number,
): { pck: PckSgxExtension; body: Vector['quote']['body'] } {
  const { tcb } = v.tcbInfo.tcbLevels[level]!;
  const teeTcbSvn = Uint8Array.from(tcb.tdxtcbcomponents.map((c) => c.svn));
  if (moduleSvn !== undefined) teeTcbSvn[0] = moduleSvn;
  return {
    pck: { ...v.pck, pceSvn: tcb.pcesvn, cpuSvnComponents: tcb.sgxtcbcomponents.map((c) => c.svn) },
    body: { ...v.quote.body, teeTcbSvn },
  };
}

describe('TDX TCB status from real collateral', () => {
  it('rates the dcap-qvl v4 platform and QE UpToDate', () => {
    expect(matched(ratePlatform(upToDate.tcbInfo, upToDate.pck, upToDate.quote.body))).toEqual({
      status: 'UpToDate',
      advisoryIds: [],
    });
    expect(matched(rateQuotingEnclave(upToDate.qeIdentity, upToDate.quote.qeReport)).status).toBe('UpToDate');
  });

  it('finds no level for the dcap-qvl v5 platform: its SGX component 8 is below every level', () => {
    expect(outdated.pck.cpuSvnComponents[7]).toBe(3);
    expect(outdated.tcbInfo.tcbLevels.every((l) => l.tcb.sgxtcbcomponents[7]!.svn >= 5)).toBe(true);
    expect(ratePlatform(outdated.tcbInfo, outdated.pck, outdated.quote.body)).toEqual({
      matched: false,
      reason: 'no matching TCB level',
      code: 'TCB_UNRECOGNISED',
    });
  });

  it('rates the same platform at each listed level with that level status and advisories', () => {
    for (const v of [upToDate, outdated]) {
      v.tcbInfo.tcbLevels.forEach((level, index) => {
        // A module SVN at the top of its identity keeps the module rating out of the way.
        const { pck, body } = atLevel(v, index, 0xff);
        const rating = matched(ratePlatform(v.tcbInfo, pck, body));
        expect(rating.status, `${index}`).toBe(level.tcbStatus);
        expect(rating.advisoryIds).toEqual(expect.arrayContaining(level.advisoryIDs ?? []));
      });
    }
  });

  it('merges the TDX module identity rating (TDX_01, module SVN 5: OutOfDate) into an UpToDate level', () => {
    const identity = outdated.tcbInfo.tdxModuleIdentities!.find((i) => i.id === 'TDX_01')!;
    const { pck, body } = atLevel(outdated, 0, 5);
    expect(body.teeTcbSvn[1]).toBe(0);
    body.teeTcbSvn[1] = 1;
    const rating = matched(ratePlatform(outdated.tcbInfo, pck, body));
    expect(rating.status).toBe('OutOfDate');
    expect(rating.advisoryIds).toEqual(identity.tcbLevels[1]!.advisoryIDs);
  });

  it('refuses a module version, signer or SVN its identity does not list', () => {
    const { pck, body } = atLevel(outdated, 0, 0xff);
    const rate = (teeTcbSvn: number[], mrSignerSeam = body.mrSignerSeam) =>
      ratePlatform(outdated.tcbInfo, pck, { ...body, teeTcbSvn: Uint8Array.from(teeTcbSvn), mrSignerSeam });
    const tdx = [...body.teeTcbSvn];
    expect(rate([tdx[0]!, 2, ...tdx.slice(2)])).toMatchObject({
      matched: false,
      reason: 'no TDX module identity TDX_02',
    });
    expect(rate([6, 1, ...tdx.slice(2)], new Uint8Array(48).fill(1))).toMatchObject({
      matched: false,
      reason: 'TDX module MRSIGNER mismatch',
      code: 'TCB_UNRECOGNISED',
    });
    const strict = structuredClone(outdated.tcbInfo);
    strict.tdxModuleIdentities!.find((i) => i.id === 'TDX_01')!.tcbLevels = [
      { tcb: { isvsvn: 9 }, tcbDate: '2025-01-01T00:00:00Z', tcbStatus: 'UpToDate' },
    ];
    expect(
      ratePlatform(strict, pck, { ...body, teeTcbSvn: Uint8Array.from([6, 1, ...tdx.slice(2)]) }),
    ).toMatchObject({
      matched: false,
      reason: 'TDX module ISVSVN below minimum',
    });
  });

  it('compares all 16 TDX components, module SVN included (the testdata README rule, stricter than QVL)', () => {
    // Intel's QVL skips bytes 0-1 for a module with major version > 0 and lets the module identity
    // rate them; the README (and the vectors' reference tool) compare them too, so a module below a
    // level's TDX component 0 matches no level rather than being rated OutOfDate.
    const { pck, body } = atLevel(outdated, 0);
    const teeTcbSvn = Uint8Array.from([4, 1, ...body.teeTcbSvn.slice(2)]);
    expect(outdated.tcbInfo.tcbLevels.every((l) => l.tcb.tdxtcbcomponents[0]!.svn > 4)).toBe(true);
    expect(ratePlatform(outdated.tcbInfo, pck, { ...body, teeTcbSvn })).toMatchObject({
      matched: false,
      reason: 'no matching TCB level',
    });
  });

  it('refuses collateral for another platform (FMSPC, PCE-ID) as not matching the quote', () => {
    const { pck, body } = atLevel(upToDate, 0);
    expect(ratePlatform(upToDate.tcbInfo, { ...pck, fmspc: hexToBytes('90c06f000000') }, body)).toEqual({
      matched: false,
      reason: 'FMSPC mismatch',
      code: 'ATTESTATION_COLLATERAL_INVALID',
    });
    expect(ratePlatform(upToDate.tcbInfo, { ...pck, pceId: hexToBytes('0100') }, body)).toMatchObject({
      reason: 'PCE-ID mismatch',
    });
  });

  it('refuses a level whose status Intel never defined', () => {
    const tcbInfo = structuredClone(upToDate.tcbInfo);
    tcbInfo.tcbLevels[0]!.tcbStatus = 'Fine';
    expect(ratePlatform(tcbInfo, upToDate.pck, upToDate.quote.body)).toEqual({
      matched: false,
      reason: 'unknown TCB status "Fine"',
      code: 'TCB_UNRECOGNISED',
    });
  });

  it('rates the QE by identity and ISVSVN, refusing a QE the identity does not describe', () => {
    const qe = upToDate.quote.qeReport;
    const identity = upToDate.qeIdentity;
    expect(rateQuotingEnclave({ ...identity, mrsigner: '00'.repeat(32) }, qe)).toMatchObject({
      reason: 'QE MRSIGNER mismatch',
      code: 'ATTESTATION_COLLATERAL_INVALID',
    });
    expect(rateQuotingEnclave({ ...identity, isvprodid: 1 }, qe)).toMatchObject({
      reason: 'QE ISVPRODID mismatch',
    });
    expect(rateQuotingEnclave({ ...identity, miscselect: '00000001' }, qe)).toMatchObject({
      reason: 'QE MISCSELECT mismatch',
    });
    // Bit 2 of the first attributes byte is masked out (mask FB): changing it must not matter.
    expect(
      rateQuotingEnclave({ ...identity, attributes: `15${identity.attributes.slice(2)}` }, qe).matched,
    ).toBe(true);
    expect(
      rateQuotingEnclave({ ...identity, attributes: `13${identity.attributes.slice(2)}` }, qe),
    ).toMatchObject({
      reason: 'QE ATTRIBUTES mismatch',
    });
    const levels = [
      { tcb: { isvsvn: 8 }, tcbDate: '2025-01-01T00:00:00Z', tcbStatus: 'UpToDate' },
      {
        tcb: { isvsvn: 6 },
        tcbDate: '2024-01-01T00:00:00Z',
        tcbStatus: 'OutOfDate',
        advisoryIDs: ['INTEL-SA-1'],
      },
    ];
    expect(matched(rateQuotingEnclave({ ...identity, tcbLevels: levels }, qe))).toEqual({
      status: 'OutOfDate',
      advisoryIds: ['INTEL-SA-1'],
    });
    expect(rateQuotingEnclave({ ...identity, tcbLevels: levels.slice(0, 1) }, qe)).toMatchObject({
      reason: 'QE ISVSVN below minimum',
      code: 'TCB_UNRECOGNISED',
    });
  });

  it('lets an unmatched platform decide the overall result before the QE', () => {
    const platform = ratePlatform(outdated.tcbInfo, outdated.pck, outdated.quote.body);
    const qe = rateQuotingEnclave(outdated.qeIdentity, outdated.quote.qeReport);
    expect(combineMatches(platform, qe)).toBe(platform);
  });
});

describe('TDX TCB rating rules', () => {
  const rating = fc.record({
    status: fc.constantFrom(...TCB_STATUSES),
    advisoryIds: fc.uniqueArray(fc.constantFrom('SA-1', 'SA-2', 'SA-3', 'SA-4'), { maxLength: 4 }),
  });
  const severity = (r: TcbRating): number => TCB_STATUSES.indexOf(r.status);

  it('merging keeps the more severe status and the union of advisories, without repeats', () => {
    fc.assert(
      fc.property(rating, rating, rating, (a, b, c) => {
        const ab = mergeRatings(a, b);
        expect(severity(ab)).toBe(Math.max(severity(a), severity(b)));
        expect(new Set(ab.advisoryIds)).toEqual(new Set([...a.advisoryIds, ...b.advisoryIds]));
        expect(ab.advisoryIds.length).toBe(new Set(ab.advisoryIds).size);
        expect(mergeRatings(b, a).status).toBe(ab.status);
        expect(mergeRatings(ab, c).status).toBe(mergeRatings(a, mergeRatings(b, c)).status);
        expect(mergeRatings(a, { status: 'UpToDate', advisoryIds: [] })).toEqual(a);
      }),
      { numRuns: 1000 },
    );
  });

  it('a platform with every component at least as high still finds a level', () => {
    const { pck, body } = atLevel(outdated, outdated.tcbInfo.tcbLevels.length - 1, 0xff);
    const raise = fc.record({
      sgx: fc.array(fc.nat({ max: 20 }), { minLength: 16, maxLength: 16 }),
      tdx: fc.array(fc.nat({ max: 20 }), { minLength: 16, maxLength: 16 }),
      pce: fc.nat({ max: 20 }),
    });
    fc.assert(
      fc.property(raise, ({ sgx, tdx, pce }) => {
        const higherPck = {
          ...pck,
          pceSvn: pck.pceSvn + pce,
          cpuSvnComponents: pck.cpuSvnComponents.map((c, i) => Math.min(255, c + sgx[i]!)),
        };
        // Bytes 0 and 1 (module SVN and version) stay: the module identity rates them separately.
        const teeTcbSvn = body.teeTcbSvn.map((c, i) => (i < 2 ? c : Math.min(255, c + tdx[i]!)));
        return ratePlatform(outdated.tcbInfo, higherPck, { ...body, teeTcbSvn }).matched;
      }),
      { numRuns: 1000 },
    );
  });
});
