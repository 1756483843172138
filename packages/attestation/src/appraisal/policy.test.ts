import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { utf8Encode } from '@tresor/crypto';
import { defaultAppraisalPolicy, loadAppraisalPolicy, parseAppraisalPolicy } from './policy.js';

function failure(f: () => unknown): { code: string; message: string } | null {
  try {
    f();
    return null;
  } catch (err) {
    return isTresorError(err)
      ? { code: err.code, message: err.message }
      : { code: 'non-TresorError', message: String(err) };
  }
}

describe('appraisal policy', () => {
  it('defaults fail closed', () => {
    expect(defaultAppraisalPolicy()).toEqual({
      id: 'default',
      allowSampleTee: false,
      allowDebug: false,
      tcb: { minimum: [], acceptedStatuses: ['UpToDate'], requireStatus: true },
      vmpls: [0],
      requireReportDataBinding: true,
      requireGpuBinding: true,
    });
  });

  it('reads a full policy and normalises hex to lowercase', () => {
    const policy = loadAppraisalPolicy(
      utf8Encode(
        JSON.stringify({
          id: 'prod-2025-06',
          measurements: {
            snp: { measurement: ['AB'.repeat(48)] },
            tdx: { mrtd: ['cd'.repeat(48)], rtmr0: ['ef'.repeat(48)] },
          },
          tcb: {
            minimum: [
              { tee: 'snp', product: 'Milan', components: { bootloader: 3, tee: 0, snp: 8, microcode: 115 } },
            ],
            acceptedStatuses: ['UpToDate', 'SWHardeningNeeded'],
          },
          vmpls: [0, 1],
          launchFlags: { snp: { migrate_ma: false } },
          maxEvidenceAgeSeconds: 300,
          hardwareIds: ['0A0B'],
        }),
      ),
    );
    expect(policy.measurements).toMatchObject({ snp: { measurement: ['ab'.repeat(48)] } });
    expect(policy.hardwareIds).toEqual(['0a0b']);
    expect(policy.tcb.requireStatus).toBe(true);
    expect(policy.tcb.minimum[0]?.product).toBe('Milan');
  });

  it('names the offending field in CONFIG_INVALID', () => {
    const cases: [unknown, string][] = [
      [{ mesurements: {} }, 'mesurements'],
      [{ allowDebug: 'no' }, 'allowDebug'],
      [{ vmpls: [4] }, 'vmpls.0'],
      [{ vmpls: [] }, 'vmpls'],
      [{ measurements: { sgx: { mrenclave: ['00'] } } }, 'measurements.sgx'],
      [{ measurements: { snp: { measurement: ['xyz'] } } }, 'measurements.snp.measurement.0'],
      [{ measurements: { snp: { measurement: [] } } }, 'measurements.snp.measurement'],
      [{ tcb: { acceptedStatuses: ['Fine'] } }, 'tcb.acceptedStatuses.0'],
      [
        { tcb: { minimum: [{ tee: 'snp', components: { microcode: -1 } }] } },
        'tcb.minimum.0.components.microcode',
      ],
      [{ tcb: { extra: 1 } }, 'tcb.extra'],
      [{ maxEvidenceAgeSeconds: 0 }, 'maxEvidenceAgeSeconds'],
      [{ hardwareIds: ['abc'] }, 'hardwareIds.0'],
      [[], '(top level)'],
    ];
    for (const [value, path] of cases) {
      const f = failure(() => parseAppraisalPolicy(value));
      expect({
        value,
        code: f?.code,
        path: f?.message.startsWith(`appraisal policy field ${path}:`),
      }).toEqual({
        value,
        code: 'CONFIG_INVALID',
        path: true,
      });
    }
  });

  it('accepts "any" only as an explicit waiver of reference values and residency', () => {
    expect(parseAppraisalPolicy({ measurements: 'any', hardwareIds: 'any' })).toMatchObject({
      measurements: 'any',
      hardwareIds: 'any',
    });
    for (const value of [{ measurements: 'all' }, { hardwareIds: 'none' }, { measurements: ['any'] }]) {
      expect(failure(() => parseAppraisalPolicy(value))?.code).toBe('CONFIG_INVALID');
    }
  });

  it('refuses a file that is not JSON with INPUT_MALFORMED', () => {
    expect(failure(() => loadAppraisalPolicy(utf8Encode('{')))?.code).toBe('INPUT_MALFORMED');
    expect(failure(() => loadAppraisalPolicy(new Uint8Array([0xff])))?.code).toBe('INPUT_MALFORMED');
  });

  it('never throws anything but CONFIG_INVALID for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const f = failure(() => parseAppraisalPolicy(value));
        return f === null || f.code === 'CONFIG_INVALID';
      }),
      { numRuns: 2000 },
    );
  });
});
