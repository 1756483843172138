import { bytesToHex } from '@tresor/crypto';
import { TresorError } from '@tresor/protocol';
import { parseCertificates, type Certificate } from '../certs.js';
import { CheckLog } from '../check-log.js';
import { webCryptoSignatureVerifier, type SignatureVerifier } from '../signatures/index.js';
import type { AppraisalInput, VerificationResult, Verifier, VerifyOptions } from '../types.js';
import type { GpuAttestationReport } from './attestation-report.js';
import { gpuClaims, type GpuClaims, type NvidiaClaims } from './claims.js';
import {
  checkAnchoredToDeviceRoot,
  checkChainSignatures,
  checkChainValidAt,
  checkFwidMatchesLeaf,
  deviceIdentity,
} from './device-chain.js';
import { parseNvidiaEvidence, type NvidiaEvidence, type PublishedGpuEvidence } from './evidence.js';
import { compareWithReferenceManifest, type NvidiaReferenceManifest } from './reference-manifest.js';
import { checkSpdmSignature } from './spdm-signature.js';
import { failed, PASSED, type CheckOutcome } from './check-outcome.js';

/** What the caller supplies besides the evidence. */
export interface NvidiaEndorsements {
  /** PEM device chain, leaf first; required for a single report, refused for a JSON list (it carries its own). */
  readonly certChain?: Uint8Array;
  /** PEM or DER root; must be the pinned NVIDIA Device Identity CA, which is used either way. */
  readonly deviceRoot?: Uint8Array;
  /** The nonce the verifier asked the GPU to sign (64 hex digits). */
  readonly expectedNonce?: string;
  readonly referenceManifest?: NvidiaReferenceManifest;
}

export interface NvidiaVerifierOptions {
  /**
   * Checks the SPDM and certificate signatures. Default: WebCrypto, which runs in browsers;
   * servers pass `nodeSignatureVerifier` from `@tresor/attestation/node`.
   */
  readonly signatures?: SignatureVerifier;
}

/** One GPU to verify: its report, its chain, and for a JSON list the host's metadata. */
interface GpuUnderTest {
  readonly report: GpuAttestationReport;
  readonly chain: readonly Certificate[];
  readonly published?: PublishedGpuEvidence;
}

/**
 * NVIDIA Hopper (H100/H200) GPU verifier. Per GPU, in this order (names as in testdata, prefixed
 * `gpu<i>_` for a JSON list): spdm_signature, chain_signatures, chain_anchored_to_nvidia_device_root,
 * chain_valid_at_time, fwid_matches_leaf_certificate, then nonce_matches_published_nonce (list
 * entries that publish a nonce), nonce_matches_expected_nonce (when `expectedNonce` is given) and
 * measurements_match_reference_manifest (when a manifest is given). Revocation (NVIDIA OCSP) and RIM
 * retrieval need NVIDIA's services and are not done here.
 */
export function createNvidiaVerifier(
  options: NvidiaVerifierOptions = {},
): Verifier<NvidiaEvidence, NvidiaEndorsements> {
  const signatures = options.signatures ?? webCryptoSignatureVerifier;
  return {
    tee: 'nvidia',
    parse: parseNvidiaEvidence,
    verify: (evidence, endorsements, verifyOptions) =>
      verifyNvidiaEvidence(evidence, endorsements, verifyOptions, signatures),
  };
}

/** The default verifier (WebCrypto signatures). */
export const nvidiaVerifier: Verifier<NvidiaEvidence, NvidiaEndorsements> = createNvidiaVerifier();

export async function verifyNvidiaEvidence(
  evidence: NvidiaEvidence,
  endorsements: NvidiaEndorsements,
  { now }: VerifyOptions,
  signatures: SignatureVerifier = webCryptoSignatureVerifier,
): Promise<VerificationResult<NvidiaClaims>> {
  const deviceRoot = endorsements.deviceRoot === undefined ? undefined : singleRoot(endorsements.deviceRoot);
  const expectedNonce =
    endorsements.expectedNonce === undefined ? undefined : nonceHex(endorsements.expectedNonce);
  const gpus = gpusUnderTest(evidence, endorsements.certChain);
  const list = evidence.kind === 'list';
  const log = new CheckLog();
  const claims: GpuClaims[] = [];
  for (const [i, gpu] of gpus.entries()) {
    const record = (name: string, result: CheckOutcome): void => {
      const checkName = list ? `gpu${i}_${name}` : name;
      if (result.ok) log.pass(checkName);
      else log.fail(checkName, result.code, result.detail);
    };
    const { report, chain } = gpu;
    const leaf = chain[0];
    record('spdm_signature', await checkSpdmSignature(report, leaf, signatures));
    record('chain_signatures', await checkChainSignatures(chain, signatures));
    record(
      'chain_anchored_to_nvidia_device_root',
      await checkAnchoredToDeviceRoot(chain, deviceRoot, signatures),
    );
    record('chain_valid_at_time', checkChainValidAt(chain, now));
    record('fwid_matches_leaf_certificate', checkFwidMatchesLeaf(leaf, report.response.opaqueData.fwid));
    const signedNonce = bytesToHex(report.request.nonce);
    if (gpu.published?.nonce !== undefined) {
      record(
        'nonce_matches_published_nonce',
        nonceCheck(signedNonce, gpu.published.nonce, 'the nonce published with it'),
      );
    }
    if (expectedNonce !== undefined) {
      record('nonce_matches_expected_nonce', nonceCheck(signedNonce, expectedNonce, 'the expected nonce'));
    }
    if (endorsements.referenceManifest !== undefined) {
      record(
        'measurements_match_reference_manifest',
        compareWithReferenceManifest(report.response.blocks, endorsements.referenceManifest),
      );
    }
    claims.push(gpuClaims(report, chain, gpu.published));
  }
  return {
    tee: 'nvidia',
    valid: log.valid,
    error: log.error,
    checks: log.checks,
    claims: list ? { gpus: claims, gpu_count: claims.length } : claims[0]!,
    appraisal: appraisalInput(gpus),
  };
}

function gpusUnderTest(evidence: NvidiaEvidence, certChain: Uint8Array | undefined): GpuUnderTest[] {
  if (evidence.kind === 'list') {
    if (certChain !== undefined) {
      throw new TresorError(
        'USAGE_INVALID',
        'The NVIDIA evidence list carries each GPU certificate chain; do not pass a separate certificate chain.',
      );
    }
    return evidence.gpus.map((published) => ({
      report: published.report,
      chain: published.certChain,
      published,
    }));
  }
  if (certChain === undefined) {
    throw new TresorError(
      'USAGE_INVALID',
      'A single NVIDIA GPU attestation report needs its device certificate chain (--cert-chain <pem>).',
    );
  }
  return [
    { report: evidence.report, chain: parseCertificates(certChain, 'NVIDIA device certificate chain') },
  ];
}

function singleRoot(bytes: Uint8Array): Certificate {
  const certs = parseCertificates(bytes, 'NVIDIA device root');
  if (certs.length !== 1) {
    throw new TresorError(
      'INPUT_MALFORMED',
      `The NVIDIA device root file holds ${certs.length} certificates; pass only the root.`,
    );
  }
  return certs[0]!;
}

function nonceHex(nonce: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(nonce)) {
    throw new TresorError('INPUT_MALFORMED', 'The expected GPU nonce must be 64 hex digits (32 bytes).');
  }
  return nonce.toLowerCase();
}

function nonceCheck(signed: string, wanted: string, what: string): CheckOutcome {
  return signed === wanted
    ? PASSED
    : failed('GPU_NONCE_MISMATCH', `the GPU signed nonce ${signed}, not ${what} ${wanted}`);
}

/**
 * The TEE-independent view. Measurements are `gpu<i>.block<n>`; hardware ids are the chips' BROM
 * certificate serials; `nonce` is the signed nonce when every GPU signed the same one, else null.
 * The SPDM evidence has no debug indicator: GPU configuration is judged by its measurements.
 */
function appraisalInput(gpus: readonly GpuUnderTest[]): AppraisalInput {
  const measurements: Record<string, string> = {};
  const tcb: Record<string, string> = {};
  const hardwareIds: string[] = [];
  const nonces = new Set<string>();
  for (const [i, { report, chain }] of gpus.entries()) {
    for (const block of report.response.blocks)
      measurements[`gpu${i}.block${block.index}`] = bytesToHex(block.value);
    const { driverVersion, vbiosVersion } = report.response.opaqueData;
    if (driverVersion !== undefined) tcb[`gpu${i}.driver_version`] = driverVersion;
    if (vbiosVersion !== undefined) tcb[`gpu${i}.vbios_version`] = vbiosVersion;
    const id = deviceIdentity(chain[0]);
    if (id !== undefined) hardwareIds.push(id);
    nonces.add(bytesToHex(report.request.nonce));
  }
  return {
    tee: 'nvidia',
    insecure: false,
    debug: false,
    measurements,
    reportData: null,
    hardwareIds,
    tcb,
    vmpl: null,
    nonce: nonces.size === 1 ? [...nonces][0]! : null,
    flags: {},
  };
}
