import { mkdir, mkdtemp, readdir, readFile, rm, writeFile, access } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { base64ToBytes } from '@tresor/crypto';
import {
  openConfigfsTsmSource,
  parseSnpCertificateTable,
  SNP_REPORT_LENGTH,
  type TsmFileSystem,
} from './configfs-tsm.js';

/**
 * A fake configfs-tsm "kernel" over a temporary folder: mkdir of a report entry creates its
 * attribute files, a write to `inblob` produces `outblob` (an SNP report or TDX quote with the
 * report data where the real formats put it) and counts `generation`.
 */
interface FakeKernel {
  readonly fs: TsmFileSystem;
  readonly root: string;
  /** Misbehaviours to simulate. */
  behaviour: { race?: boolean; wrongReportData?: boolean; provider?: string; shortReport?: boolean };
}

const VCEK_GUID = Uint8Array.of(
  0x8d,
  0x75,
  0xda,
  0x63,
  0x64,
  0xe6,
  0x64,
  0x45,
  0xad,
  0xc5,
  0xf4,
  0xb9,
  0x3b,
  0xe8,
  0xac,
  0xcd,
);
const ARK_GUID = Uint8Array.of(
  0xa4,
  0x06,
  0xb4,
  0xc0,
  0x03,
  0xa8,
  0x52,
  0x49,
  0x97,
  0x43,
  0x3f,
  0xb6,
  0x01,
  0x4c,
  0xd0,
  0xae,
);

function certTable(entries: [Uint8Array, Uint8Array][]): Uint8Array {
  const headerLength = (entries.length + 1) * 24;
  const total = headerLength + entries.reduce((n, [, data]) => n + data.length, 0);
  const table = new Uint8Array(total);
  const view = new DataView(table.buffer);
  let offset = headerLength;
  entries.forEach(([guid, data], i) => {
    table.set(guid, i * 24);
    view.setUint32(i * 24 + 16, offset, true);
    view.setUint32(i * 24 + 20, data.length, true);
    table.set(data, offset);
    offset += data.length;
  });
  return table;
}

async function fakeKernel(dir: string, provider: 'sev_guest' | 'tdx_guest'): Promise<FakeKernel> {
  const root = join(dir, 'tsm');
  await mkdir(join(root, 'report'), { recursive: true });
  const kernel: FakeKernel = {
    root,
    behaviour: {},
    fs: {
      mkdir: async (path) => {
        await mkdir(path);
        await writeFile(join(path, 'provider'), `${kernel.behaviour.provider ?? provider}\n`);
        await writeFile(join(path, 'generation'), '0\n');
      },
      rmdir: (path) => rm(path, { recursive: true }),
      access: (path) => access(path),
      readFile: async (path) => new Uint8Array(await readFile(path)),
      writeFile: async (path, data) => {
        await writeFile(path, data);
        if (basename(path) !== 'inblob') return;
        const entry = dirname(path);
        const reportData = kernel.behaviour.wrongReportData === true ? new Uint8Array(64).fill(7) : data;
        let outblob: Uint8Array;
        if (provider === 'sev_guest') {
          outblob = new Uint8Array(kernel.behaviour.shortReport === true ? 1000 : SNP_REPORT_LENGTH);
          if (outblob.length >= 0x50 + 64) outblob.set(reportData, 0x50);
          await writeFile(
            join(entry, 'auxblob'),
            certTable([
              [VCEK_GUID, Uint8Array.of(1, 2, 3)],
              [ARK_GUID, Uint8Array.of(4, 5)],
            ]),
          );
        } else {
          outblob = new Uint8Array(48 + 584 + 100);
          outblob.set(reportData, 568);
        }
        await writeFile(join(entry, 'outblob'), outblob);
        await writeFile(join(entry, 'generation'), kernel.behaviour.race === true ? '2\n' : '1\n');
      },
    },
  };
  return kernel;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-tsm-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const reportData = (byte: number): Uint8Array => new Uint8Array(64).fill(byte);

describe('configfs-tsm evidence source', () => {
  it('produces an SNP report binding the report data, with the certificate table as the KBS cert_chain', async () => {
    const kernel = await fakeKernel(dir, 'sev_guest');
    const source = await openConfigfsTsmSource({ root: kernel.root, fs: kernel.fs });
    expect(source.tee).toBe('snp');
    const report = await source.collect(reportData(0x42));
    expect(report.length).toBe(SNP_REPORT_LENGTH);
    expect(report.subarray(0x50, 0x90)).toEqual(reportData(0x42));
    const kbs = (await source.kbsEvidence(reportData(0x43))) as {
      attestation_report: string;
      cert_chain: { cert_type: string; data: string }[];
    };
    expect(base64ToBytes(kbs.attestation_report).subarray(0x50, 0x90)).toEqual(reportData(0x43));
    expect(kbs.cert_chain).toEqual([
      { cert_type: 'VCEK', data: 'AQID' },
      { cert_type: 'ARK', data: 'BAU=' },
    ]);
    // Every entry is removed again.
    expect(await readdir(join(kernel.root, 'report'))).toEqual([]);
  });

  it('produces a TDX quote with the report data at the TD report body offset', async () => {
    const kernel = await fakeKernel(dir, 'tdx_guest');
    const source = await openConfigfsTsmSource({ root: kernel.root, fs: kernel.fs });
    expect(source.tee).toBe('tdx');
    const kbs = (await source.kbsEvidence(reportData(9))) as { quote: string; cc_eventlog: null };
    expect(base64ToBytes(kbs.quote).subarray(568, 632)).toEqual(reportData(9));
    expect(kbs.cc_eventlog).toBeNull();
  });

  it('refuses when the interface is missing (EVIDENCE_UNAVAILABLE)', async () => {
    await expect(openConfigfsTsmSource({ root: join(dir, 'absent') })).rejects.toMatchObject({
      code: 'EVIDENCE_UNAVAILABLE',
    });
  });

  it('refuses another writer racing the entry, a report not carrying our data, a short report and unknown providers', async () => {
    for (const behaviour of [
      { race: true },
      { wrongReportData: true },
      { shortReport: true },
      { provider: 'arm_cca_guest' },
    ]) {
      const kernel = await fakeKernel(join(dir), 'sev_guest');
      const source = await openConfigfsTsmSource({ root: kernel.root, fs: kernel.fs });
      kernel.behaviour = behaviour;
      await expect(source.collect(reportData(1))).rejects.toMatchObject({ code: 'EVIDENCE_UNAVAILABLE' });
      expect(await readdir(join(kernel.root, 'report'))).toEqual([]);
      await rm(kernel.root, { recursive: true });
    }
  });
});

describe('SNP certificate table', () => {
  it('reads an empty table and refuses entries outside the blob or without a terminator', () => {
    expect(parseSnpCertificateTable(new Uint8Array(24))).toEqual([]);
    const table = certTable([[VCEK_GUID, Uint8Array.of(1)]]);
    new DataView(table.buffer).setUint32(16, 10_000, true);
    expect(() => parseSnpCertificateTable(table)).toThrow(
      expect.objectContaining({ code: 'EVIDENCE_UNAVAILABLE' }),
    );
    expect(() =>
      parseSnpCertificateTable(certTable([[VCEK_GUID, Uint8Array.of(1)]]).subarray(0, 30)),
    ).toThrow(expect.objectContaining({ code: 'EVIDENCE_UNAVAILABLE' }));
  });

  it('never throws anything but EVIDENCE_UNAVAILABLE on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        try {
          parseSnpCertificateTable(bytes);
        } catch (err) {
          expect(err).toMatchObject({ code: 'EVIDENCE_UNAVAILABLE' });
        }
      }),
    );
  });
});
