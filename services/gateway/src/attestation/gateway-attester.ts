import { mkdtemp, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { bytesToBase64, hexToBytes } from '@tresor/crypto';
import type { KbsAttester } from '@tresor/trust';
import { createSampleEvidenceAsync, SampleSigningKey } from '@tresor/attestation';
import type { GatewayConfig } from '../config.js';

/** Produces the gateway's own TEE evidence over 64 bytes of report data. */
export interface TeeAttester {
  readonly tee: 'snp' | 'tdx' | 'sample';
  attest(reportData: Uint8Array): Promise<Uint8Array>;
}

/** The sample TEE (local mode): evidence signed with the installation's sample key. */
export function sampleTeeAttester(
  signingKey: SampleSigningKey,
  svn: number,
  measurement?: string,
): TeeAttester {
  const measured = measurement === undefined ? {} : { measurement: hexToBytes(measurement) };
  return {
    tee: 'sample',
    attest: (reportData) => createSampleEvidenceAsync({ reportData, svn, signingKey, ...measured }),
  };
}

/**
 * Linux configfs-tsm (Documentation/ABI/testing/configfs-tsm): one report entry per request, write
 * `inblob` (the 64 bytes of report data), read `provider` (`sev_guest` or `tdx_guest`) and
 * `outblob` (the SNP report or TDX quote), remove the entry.
 */
export function configfsTsmAttester(root: string, tee: 'snp' | 'tdx'): TeeAttester {
  return {
    tee,
    async attest(reportData) {
      let entry: string | undefined;
      try {
        entry = await mkdtemp(join(root, 'tresor-gateway-'));
        await writeFile(join(entry, 'inblob'), reportData);
        const provider = (await readFile(join(entry, 'provider'), 'utf8')).trim();
        const expected = tee === 'snp' ? 'sev_guest' : 'tdx_guest';
        if (provider !== expected) {
          throw new TresorError(
            'EVIDENCE_UNAVAILABLE',
            `configfs-tsm provider is ${provider}, not ${expected}`,
          );
        }
        return new Uint8Array(await readFile(join(entry, 'outblob')));
      } catch (cause) {
        if (cause instanceof TresorError) throw cause;
        throw new TresorError(
          'EVIDENCE_UNAVAILABLE',
          `cannot produce TEE evidence through configfs-tsm at ${root}`,
          {
            cause,
          },
        );
      } finally {
        if (entry !== undefined) await rmdir(entry).catch(() => undefined);
      }
    },
  };
}

/** Which provider a configfs-tsm root offers (probed once at start-up). */
async function probeTsm(root: string): Promise<'snp' | 'tdx'> {
  let entry: string | undefined;
  try {
    entry = await mkdtemp(join(root, 'tresor-probe-'));
    const provider = (await readFile(join(entry, 'provider'), 'utf8')).trim();
    if (provider === 'sev_guest') return 'snp';
    if (provider === 'tdx_guest') return 'tdx';
    throw new TresorError(
      'EVIDENCE_UNAVAILABLE',
      `configfs-tsm provider ${provider} is neither sev_guest nor tdx_guest`,
    );
  } catch (cause) {
    if (cause instanceof TresorError) throw cause;
    throw new TresorError('EVIDENCE_UNAVAILABLE', `configfs-tsm is not available at ${root}`, { cause });
  } finally {
    if (entry !== undefined) await rmdir(entry).catch(() => undefined);
  }
}

/** The attester the configuration names. */
export async function attesterFromConfig(tee: GatewayConfig['tee']): Promise<TeeAttester> {
  if (tee.kind === 'sample') {
    return sampleTeeAttester(SampleSigningKey.parse(tee.signingKey), tee.svn, tee.measurement);
  }
  return configfsTsmAttester(tee.path, await probeTsm(tee.path));
}

/**
 * The gateway's TEE as the KBS protocol's attester (for its mesh certificate): the same evidence,
 * as the `primary_evidence` JSON Trustee expects per TEE (the sample TEE's JSON document; an SNP
 * report with its certificate table, which configfs-tsm offers the gateway none of, so the trust
 * service fetches the VCEK; a TDX quote).
 */
export function kbsAttesterOf(attester: TeeAttester): KbsAttester {
  return {
    tee: attester.tee,
    async primaryEvidence({ reportData }) {
      const bytes = await attester.attest(reportData);
      if (attester.tee === 'sample') return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
      if (attester.tee === 'tdx') return { quote: bytesToBase64(bytes), cc_eventlog: null };
      return { attestation_report: bytesToBase64(bytes), cert_chain: [] };
    },
  };
}
