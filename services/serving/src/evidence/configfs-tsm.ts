import { randomBytes } from 'node:crypto';
import * as nodeFs from 'node:fs/promises';
import { join } from 'node:path';
import { bytesToBase64, equalBytes } from '@tresor/crypto';
import { TresorError } from '@tresor/protocol';
import type { CpuTee, EvidenceSource } from './evidence-source.js';

/**
 * CPU evidence through the Linux configfs-tsm report interface (Documentation/ABI/testing/
 * configfs-tsm): create `report/<name>`, write the 64 report-data bytes to `inblob`, read the
 * report from `outblob` (and the SNP certificate table from `auxblob`), check that `generation`
 * counts exactly our one write (another writer in between would make `outblob` someone else's
 * report), then remove the entry. `provider` names the TEE: `sev_guest` (AMD SEV-SNP) or
 * `tdx_guest` (Intel TDX).
 */

/** The file operations used, injectable so a test can stand a fake kernel tree in for configfs. */
export interface TsmFileSystem {
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  writeFile(path: string, data: Uint8Array): Promise<void>;
  readFile(path: string): Promise<Uint8Array>;
  access(path: string): Promise<void>;
}

export const nodeTsmFileSystem: TsmFileSystem = {
  mkdir: async (path) => {
    await nodeFs.mkdir(path);
  },
  rmdir: (path) => nodeFs.rmdir(path),
  writeFile: (path, data) => nodeFs.writeFile(path, data),
  readFile: async (path) => new Uint8Array(await nodeFs.readFile(path)),
  access: (path) => nodeFs.access(path),
};

export interface ConfigfsTsmOptions {
  /** The configfs-tsm mount, `/sys/kernel/config/tsm` by default. */
  readonly root?: string;
  readonly fs?: TsmFileSystem;
}

/** SNP ATTESTATION_REPORT (SEV-SNP ABI spec, Table 22): 1184 bytes, REPORT_DATA at 0x50. */
export const SNP_REPORT_LENGTH = 1184;
const SNP_REPORT_DATA_OFFSET = 0x50;
/** TDX quote v4/v5: 48-byte header, then the TD report body with REPORTDATA at body offset 520. */
const TDX_REPORT_DATA_OFFSET = 48 + 520;
const REPORT_DATA_LENGTH = 64;

const PROVIDERS: Readonly<Record<string, Exclude<CpuTee, 'sample'>>> = {
  sev_guest: 'snp',
  tdx_guest: 'tdx',
};

/** GHCB spec §4.1.8.1 certificate table GUIDs (guid_t byte order), by the KBS `cert_type` name. */
const CERT_GUIDS: Readonly<Record<string, string>> = {
  '63da758d-e664-4564-adc5-f4b93be8accd': 'VCEK',
  'a8074bc2-a25a-483e-aae6-39c045a0b8a1': 'VLEK',
  '4ab7b379-bbac-4fe4-a02f-05aef327c782': 'ASK',
  'c0b406a4-a803-4952-9743-3fb6014cd0ae': 'ARK',
};

function unavailable(message: string, cause?: unknown): TresorError {
  return new TresorError('EVIDENCE_UNAVAILABLE', message, cause === undefined ? {} : { cause });
}

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes).trim();

/** Reads a guid_t (first three fields little-endian) as its canonical lowercase string. */
function guidString(bytes: Uint8Array): string {
  const hex = (from: number, to: number, reverse: boolean): string => {
    const part = Array.from(bytes.subarray(from, to));
    if (reverse) part.reverse();
    return part.map((b) => b.toString(16).padStart(2, '0')).join('');
  };
  return [hex(0, 4, true), hex(4, 6, true), hex(6, 8, true), hex(8, 10, false), hex(10, 16, false)].join('-');
}

/**
 * Parses the SNP extended report's certificate table (GHCB spec §4.1.8.1): 24-byte entries of
 * GUID, offset and length (little-endian, offsets from the table start), ended by an all-zero
 * entry. Unknown GUIDs are skipped; an entry pointing outside the blob is refused.
 */
export function parseSnpCertificateTable(
  table: Uint8Array,
): { readonly cert_type: string; readonly data: string }[] {
  const view = new DataView(table.buffer, table.byteOffset, table.byteLength);
  const certs: { cert_type: string; data: string }[] = [];
  for (let at = 0; ; at += 24) {
    if (at + 24 > table.length) {
      if (at === table.length && at === 0) return certs;
      throw unavailable('the SNP certificate table (auxblob) has no terminating entry');
    }
    const guid = table.subarray(at, at + 16);
    const offset = view.getUint32(at + 16, true);
    const length = view.getUint32(at + 20, true);
    if (guid.every((b) => b === 0) && offset === 0 && length === 0) return certs;
    if (offset + length > table.length || length === 0) {
      throw unavailable('an SNP certificate table entry points outside the auxblob');
    }
    const type = CERT_GUIDS[guidString(guid)];
    if (type !== undefined) {
      certs.push({ cert_type: type, data: bytesToBase64(table.subarray(offset, offset + length)) });
    }
  }
}

/** Where the report data sits in a report of `tee`, to check the kernel returned ours. */
function boundReportData(tee: Exclude<CpuTee, 'sample'>, report: Uint8Array): Uint8Array | undefined {
  const offset = tee === 'snp' ? SNP_REPORT_DATA_OFFSET : TDX_REPORT_DATA_OFFSET;
  if (tee === 'snp' && report.length !== SNP_REPORT_LENGTH) return undefined;
  if (report.length < offset + REPORT_DATA_LENGTH) return undefined;
  return report.subarray(offset, offset + REPORT_DATA_LENGTH);
}

interface TsmReport {
  readonly tee: Exclude<CpuTee, 'sample'>;
  readonly outblob: Uint8Array;
  readonly auxblob: Uint8Array | undefined;
}

/** True when the kernel offers the configfs-tsm report interface under `root`. */
export async function configfsTsmAvailable(options: ConfigfsTsmOptions = {}): Promise<boolean> {
  const fs = options.fs ?? nodeTsmFileSystem;
  try {
    await fs.access(join(options.root ?? '/sys/kernel/config/tsm', 'report'));
    return true;
  } catch {
    return false;
  }
}

/** Produces one report for `reportData` through a fresh configfs-tsm entry. */
async function generateReport(fs: TsmFileSystem, root: string, reportData: Uint8Array): Promise<TsmReport> {
  if (reportData.length !== REPORT_DATA_LENGTH) {
    throw new TresorError('INTERNAL_ERROR', 'configfs-tsm report data must be 64 bytes');
  }
  const entry = join(root, 'report', `tresor-${randomBytes(8).toString('hex')}`);
  try {
    await fs.mkdir(entry);
  } catch (cause) {
    throw unavailable(`cannot create a configfs-tsm report entry under ${root}/report`, cause);
  }
  try {
    const provider = text(await fs.readFile(join(entry, 'provider')));
    const tee = PROVIDERS[provider];
    if (tee === undefined) throw unavailable(`configfs-tsm provider "${provider}" is not SNP or TDX`);
    await fs.writeFile(join(entry, 'inblob'), reportData);
    const outblob = await fs.readFile(join(entry, 'outblob'));
    let auxblob: Uint8Array | undefined;
    if (tee === 'snp') {
      auxblob = await fs.readFile(join(entry, 'auxblob')).catch(() => undefined);
    }
    // The generation counts writes to this entry; anything but 1 means another writer raced us.
    const generation = text(await fs.readFile(join(entry, 'generation')));
    if (generation !== '1') {
      throw unavailable(`configfs-tsm report entry was written ${generation} times; retry`);
    }
    const bound = boundReportData(tee, outblob);
    if (bound === undefined || !equalBytes(bound, reportData)) {
      throw unavailable(`the ${tee} report from configfs-tsm does not carry the requested report data`);
    }
    return { tee, outblob, auxblob: auxblob !== undefined && auxblob.length > 0 ? auxblob : undefined };
  } catch (cause) {
    if (cause instanceof TresorError) throw cause;
    throw unavailable('the configfs-tsm report could not be produced', cause);
  } finally {
    await fs.rmdir(entry).catch(() => undefined);
  }
}

/**
 * An SNP or TDX evidence source over configfs-tsm. Its TEE kind is read from `provider` once, at
 * open; EVIDENCE_UNAVAILABLE when the interface is missing or names another TEE.
 */
export async function openConfigfsTsmSource(options: ConfigfsTsmOptions = {}): Promise<EvidenceSource> {
  const fs = options.fs ?? nodeTsmFileSystem;
  const root = options.root ?? '/sys/kernel/config/tsm';
  if (!(await configfsTsmAvailable({ root, fs }))) {
    throw unavailable(`no configfs-tsm report interface at ${root}/report (not an SNP or TDX guest?)`);
  }
  // A probe report tells the TEE kind and proves the interface works before anything depends on it.
  const probe = await generateReport(fs, root, new Uint8Array(REPORT_DATA_LENGTH));
  const { tee } = probe;
  const fresh = async (reportData: Uint8Array): Promise<TsmReport> => {
    const report = await generateReport(fs, root, reportData);
    if (report.tee !== tee) throw unavailable(`configfs-tsm switched from ${tee} to ${report.tee}`);
    return report;
  };
  return {
    tee,
    async collect(reportData) {
      return (await fresh(reportData)).outblob;
    },
    async kbsEvidence(reportData) {
      const report = await fresh(reportData);
      if (report.tee === 'tdx') return { quote: bytesToBase64(report.outblob), cc_eventlog: null };
      return {
        attestation_report: bytesToBase64(report.outblob),
        cert_chain: report.auxblob === undefined ? [] : parseSnpCertificateTable(report.auxblob),
      };
    },
  };
}
