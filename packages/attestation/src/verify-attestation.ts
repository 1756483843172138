import { TresorError } from '@tresor/protocol';
import { evidenceBinary, MAX_EVIDENCE_FILE_SIZE, resolveTee } from './evidence-input.js';
import {
  createNvidiaVerifier,
  nvidiaVerifier,
  type NvidiaEndorsements,
  type NvidiaEvidence,
} from './nvidia/index.js';
import {
  sampleVerifier,
  SampleVerifyKey,
  type SampleEndorsements,
  type SampleEvidence,
} from './sample/index.js';
import type { SignatureVerifier } from './signatures/index.js';
import {
  createSnpVerifier,
  readAzSnpVtpmEvidence,
  snpVerifier,
  type SnpEndorsements,
  type SnpProduct,
  type SnpReport,
} from './snp/index.js';
import { createTdxVerifier, tdxVerifier, type TdxEndorsements, type TdxQuote } from './tdx/index.js';
import type { TeeKind, VerificationResult, Verifier } from './types.js';

/**
 * One entry point for every TEE: evidence and endorsement files by role, as testdata's
 * `expected.json` `inputs` name them and `tresor attest verify` takes them as flags
 * (`signer_cert` ↔ `--signer-cert`). The TEE kind is named or recognised from the evidence.
 */
export interface AttestationFiles {
  /** SEV-SNP report: raw, hex text, Azure HCL report or Trustee az-snp-vtpm JSON. */
  readonly report?: Uint8Array;
  /** TDX quote: raw or hex text. */
  readonly quote?: Uint8Array;
  /** NVIDIA GPU evidence (hex report or JSON list), sample evidence, or any of the above. */
  readonly evidence?: Uint8Array;
  /** SNP: the VCEK or VLEK (PEM or DER). */
  readonly signer_cert?: Uint8Array;
  /** SNP: ASK/ASVK and ARK (PEM or DER). */
  readonly ca_chain?: Uint8Array;
  /** SNP: an AMD CRL (PEM or DER). */
  readonly crl?: Uint8Array;
  /** TDX: dcap-qvl collateral JSON. */
  readonly collateral?: Uint8Array;
  /** TDX: the Intel SGX Root CA; must equal the pinned one. */
  readonly intel_root_ca?: Uint8Array;
  /** NVIDIA: the device certificate chain (PEM), for a single hex report. */
  readonly cert_chain?: Uint8Array;
  /** NVIDIA: the device identity root; must equal the pinned one. */
  readonly nvidia_device_root?: Uint8Array;
  /** Sample: the installation's public key (JWK or hex). */
  readonly sample_key?: Uint8Array;
}
export type AttestationRole = keyof AttestationFiles;

const EVIDENCE_ROLES = ['report', 'quote', 'evidence'] as const;
/** Which TEE each role belongs to; a role given for another TEE is a usage error, not ignored. */
const ROLE_TEE: Readonly<Record<Exclude<AttestationRole, (typeof EVIDENCE_ROLES)[number]>, TeeKind>> = {
  signer_cert: 'snp',
  ca_chain: 'snp',
  crl: 'snp',
  collateral: 'tdx',
  intel_root_ca: 'tdx',
  cert_chain: 'nvidia',
  nvidia_device_root: 'nvidia',
  sample_key: 'sample',
};
const EVIDENCE_ROLE_TEE: Readonly<Record<(typeof EVIDENCE_ROLES)[number], TeeKind | null>> = {
  report: 'snp',
  quote: 'tdx',
  evidence: null,
};

/** The verifiers to use; injectable so callers choose caching (the defaults cache chains). */
export interface VerifierSet {
  readonly snp: Verifier<SnpReport, SnpEndorsements>;
  readonly tdx: Verifier<TdxQuote, TdxEndorsements>;
  readonly nvidia: Verifier<NvidiaEvidence, NvidiaEndorsements>;
  readonly sample: Verifier<SampleEvidence, SampleEndorsements>;
}

/**
 * One verifier per TEE, each with its own chain cache, checking signatures with `signatures`
 * (WebCrypto unless given; Node servers and the CLI use `createNodeVerifiers()` from
 * `@tresor/attestation/node`, which passes the `node:crypto` implementation).
 */
export function createVerifierSet(options: { readonly signatures?: SignatureVerifier } = {}): VerifierSet {
  const { signatures } = options;
  if (signatures === undefined) {
    return { snp: snpVerifier, tdx: tdxVerifier, nvidia: nvidiaVerifier, sample: sampleVerifier };
  }
  return {
    snp: createSnpVerifier({ signatures }),
    tdx: createTdxVerifier({ signatures }),
    nvidia: createNvidiaVerifier({ signatures }),
    sample: sampleVerifier,
  };
}

/** The WebCrypto verifiers, shared (and so are their caches). */
export const DEFAULT_VERIFIERS: VerifierSet = createVerifierSet();

export interface VerifyAttestationRequest {
  readonly files: AttestationFiles;
  /** The TEE kind; recognised from the evidence when omitted. */
  readonly tee?: TeeKind;
  /** The instant certificates and collateral must be valid at. */
  readonly now: Date;
  /** SNP: the processor product, for version-2 reports whose chain does not name it. */
  readonly snpProduct?: SnpProduct;
  /** NVIDIA: the nonce the GPU must have signed (64 hex digits). */
  readonly gpuNonce?: string;
  /** Sample: accept unsigned Trustee-style evidence (interop tests only). */
  readonly acceptUnsignedSample?: boolean;
  readonly verifiers?: VerifierSet;
}

export interface AttestationVerification {
  readonly tee: TeeKind;
  /** The evidence file as given (its role's bytes). */
  readonly evidence: Uint8Array;
  readonly result: VerificationResult;
}

function usage(message: string): TresorError {
  return new TresorError('USAGE_INVALID', message);
}

function flag(role: string): string {
  return `--${role.replaceAll('_', '-')}`;
}

/** Picks the one evidence file and the TEE it is for. */
function selectEvidence(request: VerifyAttestationRequest): { tee: TeeKind; evidence: Uint8Array } {
  const given = EVIDENCE_ROLES.filter((role) => request.files[role] !== undefined);
  if (given.length !== 1) {
    throw usage(
      given.length === 0
        ? 'no evidence given: pass --report (SEV-SNP), --quote (TDX) or --evidence (NVIDIA, sample)'
        : `pass one evidence file, not ${given.map(flag).join(' and ')}`,
    );
  }
  const role = given[0]!;
  const evidence = request.files[role]!;
  if (evidence.length > MAX_EVIDENCE_FILE_SIZE) {
    throw new TresorError(
      'ATTESTATION_EVIDENCE_MALFORMED',
      `the evidence file is ${evidence.length} bytes; no TEE's evidence is larger than ${MAX_EVIDENCE_FILE_SIZE}`,
    );
  }
  const tee = resolveTee(evidence, request.tee ?? EVIDENCE_ROLE_TEE[role] ?? undefined);
  const roleTee = EVIDENCE_ROLE_TEE[role];
  if (roleTee !== null && roleTee !== tee)
    throw usage(`${flag(role)} is ${roleTee} evidence; use --evidence for ${tee}`);
  return { tee, evidence };
}

function checkRoles(files: AttestationFiles, tee: TeeKind): void {
  for (const [role, owner] of Object.entries(ROLE_TEE)) {
    if (files[role as AttestationRole] !== undefined && owner !== tee) {
      throw usage(`${flag(role)} applies to ${owner} evidence, not ${tee}`);
    }
  }
}

/**
 * Parses and verifies evidence with the right verifier. Throws for unusable input (unparseable
 * evidence: ATTESTATION_EVIDENCE_MALFORMED; unreadable certificates: INPUT_MALFORMED; missing or
 * misplaced files: USAGE_INVALID); a verification failure is a result, not an exception.
 */
export async function verifyAttestation(request: VerifyAttestationRequest): Promise<AttestationVerification> {
  const { files, now } = request;
  const verifiers = request.verifiers ?? DEFAULT_VERIFIERS;
  const { tee, evidence } = selectEvidence(request);
  checkRoles(files, tee);
  const options = { now };
  let result: VerificationResult;
  switch (tee) {
    case 'snp':
      result = await verifiers.snp.verify(
        verifiers.snp.parse(evidence),
        snpEndorsementsFrom(files, evidence, request.snpProduct),
        options,
      );
      break;
    case 'tdx':
      result = await verifiers.tdx.verify(
        verifiers.tdx.parse(evidenceBinary(evidence)),
        tdxEndorsementsFrom(files),
        options,
      );
      break;
    case 'nvidia':
      result = await verifiers.nvidia.verify(
        verifiers.nvidia.parse(evidence),
        nvidiaEndorsementsFrom(files, request.gpuNonce),
        options,
      );
      break;
    case 'sample':
      result = await verifiers.sample.verify(
        verifiers.sample.parse(evidence),
        sampleEndorsementsFrom(files, request.acceptUnsignedSample),
        options,
      );
      break;
  }
  return { tee, evidence, result };
}

/** SNP endorsements from the signer_cert, ca_chain and crl files. */
export function snpEndorsementsFrom(
  files: AttestationFiles,
  evidence: Uint8Array,
  product?: SnpProduct,
): SnpEndorsements {
  const signerCert = files.signer_cert ?? embeddedVcek(evidence);
  if (signerCert === undefined) throw usage('SEV-SNP evidence needs the VCEK or VLEK: pass --signer-cert');
  return {
    signerCert,
    ...(files.ca_chain === undefined ? {} : { caChain: files.ca_chain }),
    ...(files.crl === undefined ? {} : { crl: files.crl }),
    ...(product === undefined ? {} : { product }),
  };
}

/** TDX endorsements from the collateral and intel_root_ca files. */
export function tdxEndorsementsFrom(files: AttestationFiles): TdxEndorsements {
  return {
    ...(files.collateral === undefined ? {} : { collateral: files.collateral }),
    ...(files.intel_root_ca === undefined ? {} : { intelRootCa: files.intel_root_ca }),
  };
}

/** NVIDIA endorsements from the cert_chain and nvidia_device_root files. */
export function nvidiaEndorsementsFrom(files: AttestationFiles, expectedNonce?: string): NvidiaEndorsements {
  return {
    ...(files.cert_chain === undefined ? {} : { certChain: files.cert_chain }),
    ...(files.nvidia_device_root === undefined ? {} : { deviceRoot: files.nvidia_device_root }),
    ...(expectedNonce === undefined ? {} : { expectedNonce }),
  };
}

/** Sample endorsements from the sample_key file. */
export function sampleEndorsementsFrom(
  files: AttestationFiles,
  acceptUnsigned?: boolean,
): SampleEndorsements {
  return {
    ...(files.sample_key === undefined ? {} : { verifyKey: SampleVerifyKey.parse(files.sample_key) }),
    ...(acceptUnsigned === true ? { acceptUnsigned: true } : {}),
  };
}

/** Trustee's az-snp-vtpm evidence JSON carries its VCEK; use it when no --signer-cert is given. */
function embeddedVcek(evidence: Uint8Array): Uint8Array | undefined {
  const first = evidence.find((b) => b !== 0x20 && b !== 0x0a && b !== 0x0d && b !== 0x09);
  if (first !== 0x7b) return undefined;
  return readAzSnpVtpmEvidence(evidence).vcek ?? undefined;
}
