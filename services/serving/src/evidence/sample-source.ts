import { readFile } from 'node:fs/promises';
import { createSampleEvidenceAsync, SampleSigningKey } from '@tresor/attestation';
import { hexToBytes } from '@tresor/crypto';
import { TresorError } from '@tresor/protocol';
import type { EvidenceSource } from './evidence-source.js';

export interface SampleSourceOptions {
  readonly signingKey: SampleSigningKey;
  /** 48 bytes the sample TEE reports as its measurement. */
  readonly measurement?: Uint8Array;
  readonly svn?: number;
}

/**
 * The sample TEE (local mode): evidence signed with the installation key. It protects nothing
 * and every verifier marks it insecure; production configurations refuse it.
 */
export function sampleEvidenceSource(options: SampleSourceOptions): EvidenceSource {
  const collect = (reportData: Uint8Array): Promise<Uint8Array> =>
    createSampleEvidenceAsync({
      reportData,
      svn: options.svn ?? 1,
      signingKey: options.signingKey,
      ...(options.measurement === undefined ? {} : { measurement: options.measurement }),
    });
  return {
    tee: 'sample',
    collect,
    async kbsEvidence(reportData) {
      return JSON.parse(new TextDecoder().decode(await collect(reportData))) as unknown;
    },
  };
}

/** Reads the sample TEE key file. EVIDENCE_UNAVAILABLE when it cannot be read or parsed. */
export async function loadSampleEvidenceSource(options: {
  readonly signingKeyFile: string;
  readonly measurement?: string | undefined;
  readonly svn?: number;
}): Promise<EvidenceSource> {
  let signingKey: SampleSigningKey;
  try {
    signingKey = SampleSigningKey.parse(await readFile(options.signingKeyFile));
  } catch (cause) {
    throw new TresorError(
      'EVIDENCE_UNAVAILABLE',
      `the sample TEE key ${options.signingKeyFile} cannot be read; run \`tresor up\` once to create it`,
      { cause },
    );
  }
  return sampleEvidenceSource({
    signingKey,
    ...(options.measurement === undefined ? {} : { measurement: hexToBytes(options.measurement) }),
    ...(options.svn === undefined ? {} : { svn: options.svn }),
  });
}
