import {
  bytesToBase64,
  bytesToHex,
  canonicalJson,
  concatBytes,
  toArrayBuffer,
  utf8Encode,
} from '@tresor/crypto';
import {
  createSampleEvidenceAsync,
  SAMPLE_SIGNATURE_CONTEXT,
  type SampleSigningKey,
} from '@tresor/attestation';
import type { PrimaryTee } from './protocol.js';

/** What an attester is asked for: evidence binding `reportData` (runtime-data.ts). */
export interface EvidenceRequest {
  /** SHA-384(JCS({"additional-evidence", "nonce", "tee-pubkey"})) zero-padded to 64 bytes. */
  readonly reportData: Uint8Array;
  /** The session's challenge nonce. */
  readonly nonce: string;
}

/**
 * The TEE side of the KBS protocol, pluggable like guest-components' attesters: the sample TEE now,
 * SNP and TDX through configfs-tsm (`/sys/kernel/config/tsm/report`) in the enclave images.
 */
export interface KbsAttester {
  readonly tee: PrimaryTee;
  /** The init-data document (TOML) the TEE was launched with, if any. */
  readonly initData?: string;
  /**
   * Evidence of additional devices (GPUs), keyed by device TEE name ("nvidia"). Produced before the
   * CPU evidence, because the CPU evidence binds it; `gpuNonce` is what each device must sign.
   */
  additionalEvidence?(request: { readonly gpuNonce: string }): Promise<Readonly<Record<string, unknown>>>;
  /** The TEE's evidence, as the KBS `primary_evidence` JSON value. */
  primaryEvidence(request: EvidenceRequest): Promise<unknown>;
}

export interface SampleAttesterOptions {
  readonly signingKey: SampleSigningKey;
  readonly svn?: number;
  /** 48 bytes: what the local stack reports it runs. */
  readonly measurement?: Uint8Array;
  /** Init-data TOML; its digest is signed into the evidence's `init_data` member. */
  readonly initData?: string;
}

const INIT_DATA_ALGORITHM = /^\s*algorithm\s*=\s*"(sha256|sha384|sha512)"/m;
const DIGESTS = { sha256: 'SHA-256', sha384: 'SHA-384', sha512: 'SHA-512' } as const;

/**
 * Signed sample evidence with an `init_data` member: the signature covers
 * SAMPLE_SIGNATURE_CONTEXT || 0x00 || JCS(members) (packages/attestation sample/evidence.ts), which
 * `createSampleEvidenceAsync` does not yet offer for init data.
 */
async function sampleEvidenceWithInitData(
  options: SampleAttesterOptions,
  reportData: Uint8Array,
  initData: string,
): Promise<unknown> {
  const algorithm = INIT_DATA_ALGORITHM.exec(initData)?.[1] as keyof typeof DIGESTS | undefined;
  const digest = new Uint8Array(
    await crypto.subtle.digest(DIGESTS[algorithm ?? 'sha384'], toArrayBuffer(utf8Encode(initData))),
  );
  const members = {
    svn: String(options.svn ?? 1),
    report_data: bytesToBase64(reportData),
    init_data: bytesToHex(digest),
    ...(options.measurement === undefined ? {} : { measurement: bytesToHex(options.measurement) }),
  };
  const message = concatBytes(
    utf8Encode(SAMPLE_SIGNATURE_CONTEXT),
    new Uint8Array([0]),
    utf8Encode(canonicalJson(members)),
  );
  return { ...members, signature: bytesToBase64(await options.signingKey.signAsync(message)) };
}

/** The sample (software) TEE: evidence signed with the installation key. It protects nothing. */
export function sampleAttester(options: SampleAttesterOptions): KbsAttester {
  return {
    tee: 'sample',
    ...(options.initData === undefined ? {} : { initData: options.initData }),
    async primaryEvidence({ reportData }) {
      if (options.initData !== undefined)
        return sampleEvidenceWithInitData(options, reportData, options.initData);
      const bytes = await createSampleEvidenceAsync({
        reportData,
        svn: options.svn ?? 1,
        signingKey: options.signingKey,
        ...(options.measurement === undefined ? {} : { measurement: options.measurement }),
      });
      return JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    },
  };
}
