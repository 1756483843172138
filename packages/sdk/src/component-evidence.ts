import type { AttestedComponent, ComponentEvidence } from '@tresor/protocol';
import { TresorError, type ErrorCode } from '@tresor/protocol';
import {
  base64ToBytes,
  bytesToHex,
  decodeKeyConfig,
  runtimeDataHash,
  toArrayBuffer,
  type OhttpKeyConfig,
} from '@tresor/crypto';
import {
  appraise,
  matchReferenceValues,
  parseAppraisalPolicy,
  residencyIds,
  sampleMachineId,
  verifyAttestation,
  type AppraisalInput,
  type Checks,
  type ReferenceValues,
  type ResidencyInventory,
  type SampleVerifyKey,
  type VerificationResult,
  type VerifierSet,
} from '@tresor/attestation';
import type { TresorPolicy } from './policy.js';
import type { CheckName, CheckStatus, VerificationCheck } from './verification-document.js';

/** What the verifier of one component's evidence knows besides the evidence. */
export interface ComponentExpectations {
  readonly policy: TresorPolicy;
  /** The nonce the verifier sent (64 lowercase hex digits). */
  readonly nonce: string;
  /** The verification instant (injected). */
  readonly now: Date;
  /** The body of the verified reference values document. */
  readonly referenceValues: ReferenceValues;
  /** The body of the verified residency inventory document. */
  readonly inventory: ResidencyInventory;
  /** The component this evidence must be from, when the caller knows. */
  readonly component?: AttestedComponent;
  /**
   * The SHA-256 (hex) of the TLS SubjectPublicKeyInfo the caller saw on the connection to this
   * component; undefined when it cannot be observed (a browser), recorded as "not-observable".
   */
  readonly tlsSpkiSha256?: string;
  /** Why the TLS key is not observable, when `tlsSpkiSha256` is undefined. */
  readonly tlsNotObservableReason?: string;
  /** Verifier implementations (default: WebCrypto verifiers). Tests inject TEE stand-ins here. */
  readonly verifiers?: VerifierSet;
}

/** Who a verified component is: only meaningful when `ok`. */
export interface ComponentIdentity {
  readonly component: AttestedComponent;
  readonly id: string;
  readonly tee: ComponentEvidence['tee'];
  readonly insecure: boolean;
  /** The releases (of the signed reference values) it matched, `component@release`. */
  readonly releases: readonly string[];
  readonly measurements: Readonly<Record<string, string>>;
  readonly hardwareIds: readonly string[];
  /** The attested HPKE key configuration, decoded; null when it did not decode. */
  readonly keyConfig: OhttpKeyConfig | null;
  /** The raw base64url key configuration as attested. */
  readonly hpkeKeyConfig: string;
  readonly tlsSpkiSha256: string;
  readonly receiptKey: NonNullable<ComponentEvidence['runtimeData']['receiptKey']> | null;
  readonly models: readonly { readonly id: string; readonly sha256: string }[];
  /** SHA-256 (hex) of the CPU evidence bytes, as receipts name it. */
  readonly evidenceSha256: string;
}

export interface ComponentVerification {
  readonly ok: boolean;
  readonly checks: readonly VerificationCheck[];
  readonly identity: ComponentIdentity;
}

/** The appraisal checks (packages/attestation) each document check is made of. */
const APPRAISAL_CHECKS: readonly (readonly [CheckName, readonly string[]])[] = [
  ['sample_tee', ['sample_tee_allowed']],
  ['debug_off', ['debug_disabled']],
  ['tcb', ['vmpl_allowed', 'launch_flags', 'tcb_status_accepted', 'tcb_minimum']],
  ['report_data', ['report_data_bound']],
  ['freshness', ['evidence_fresh']],
];

/**
 * Verifies one component's evidence from an attestation bundle against the client's policy and
 * the trust service's signed documents: evidence signature and chain, sample TEE allowed, debug
 * off, TCB at or above the minimum, report data = runtimeDataHash(runtimeData), the nonce, the TLS
 * key seen, the measurement in the signed reference values (or pinned releases / measurements),
 * the loaded models, GPU evidence bound and verified, residency, freshness, and for serving the
 * receipt key. Every check is recorded; any failure makes `ok` false. Never throws for bad
 * evidence (a failure is a check), so a caller can show the whole list.
 */
export async function verifyComponentEvidence(
  evidence: ComponentEvidence,
  expectations: ComponentExpectations,
): Promise<ComponentVerification> {
  const { policy, now } = expectations;
  const checks: VerificationCheck[] = [];
  const record = (
    check: CheckName,
    status: CheckStatus,
    seen: string,
    expected: string,
    code?: ErrorCode,
  ): void => {
    checks.push({
      component: evidence.component,
      id: evidence.id,
      check,
      status,
      seen,
      expected,
      ...(status === 'fail' && code !== undefined ? { code } : {}),
    });
  };
  const rd = evidence.runtimeData;

  // The evidence must say which component it is, in the runtime data its report binds.
  const wanted = expectations.component ?? evidence.component;
  record(
    'component',
    rd.component === evidence.component && evidence.component === wanted && rd.version === 1
      ? 'pass'
      : 'fail',
    `${rd.component} (runtime data v${rd.version})`,
    `${wanted} (runtime data v1)`,
    'VERIFICATION_FAILED',
  );

  const cpuBytes = decodeBase64(evidence.evidence);
  const hardware = await verifyCpuEvidence(evidence, cpuBytes, expectations);
  const input = hardware.result?.appraisal ?? null;
  record(
    'evidence_signature',
    hardware.result?.valid === true ? 'pass' : 'fail',
    hardware.result === null ? hardware.problem : describeHardware(hardware.result),
    evidence.tee === 'sample'
      ? 'signed by a sample installation key in the policy'
      : `a genuine ${evidence.tee} report with a valid certificate chain`,
    hardware.result?.error ?? hardware.code,
  );

  // Policy rules of packages/attestation: sample TEE, debug, TCB, report data, freshness.
  if (hardware.result === null) {
    for (const [check] of APPRAISAL_CHECKS)
      record(check, 'fail', 'no verified evidence', 'verified evidence', hardware.code);
  } else {
    const appraised = await appraise([hardware.result], appraisalPolicyFor(policy), {
      now,
      runtimeData: rd,
      evidenceTime: parseTime(evidence.producedAt) ?? new Date(Number.NaN),
    });
    const all = appraised.ear.submods.cpu0?.['ear.tresor.checks'] ?? {};
    for (const [check, names] of APPRAISAL_CHECKS) {
      const found = names.map((n) => policyCheck(all, n)).filter((c) => c !== undefined);
      const failed = found.find((c) => !c.ok);
      const seen = found
        .map((c) => c.detail)
        .filter((d) => d !== undefined)
        .join('; ');
      record(
        check,
        failed === undefined ? 'pass' : 'fail',
        failed?.detail ?? (seen === '' ? seenFor(check, hardware.result.appraisal, evidence) : seen),
        expectedFor(check, policy, evidence),
        failed?.code,
      );
    }
  }

  record(
    'nonce',
    rd.nonce === expectations.nonce ? 'pass' : 'fail',
    rd.nonce,
    `${expectations.nonce} (the nonce this client sent)`,
    'EVIDENCE_STALE',
  );

  if (expectations.tlsSpkiSha256 === undefined) {
    record(
      'tls_key',
      'not-observable',
      expectations.tlsNotObservableReason ?? 'the TLS certificate is not visible to this client',
      `SPKI SHA-256 ${rd.tlsSpkiSha256} (requests stay bound to the attested HPKE key instead)`,
    );
  } else {
    record(
      'tls_key',
      expectations.tlsSpkiSha256.toLowerCase() === rd.tlsSpkiSha256.toLowerCase() ? 'pass' : 'fail',
      `SPKI SHA-256 ${expectations.tlsSpkiSha256.toLowerCase()} (the TLS connection)`,
      `SPKI SHA-256 ${rd.tlsSpkiSha256} (attested)`,
      'TLS_KEY_MISMATCH',
    );
  }

  let keyConfig: OhttpKeyConfig | null = null;
  try {
    keyConfig = decodeKeyConfig(decodeBase64(rd.hpkeKeyConfig));
  } catch {
    keyConfig = null;
  }
  record(
    'hpke_key',
    keyConfig === null ? 'fail' : 'pass',
    keyConfig === null
      ? 'the attested key configuration does not decode'
      : `key id ${keyConfig.keyId}, KEM 0x${keyConfig.kem.toString(16).padStart(4, '0')}`,
    'an RFC 9458 §3 key configuration bound by the report data',
    'OHTTP_KEY_CONFIG_MALFORMED',
  );

  const releases = checkMeasurement(evidence, input, policy, expectations.referenceValues, record);
  checkModels(evidence, input, expectations.referenceValues, releases, record);
  await checkGpu(evidence, expectations, record);
  checkResidency(evidence, input, hardware.sampleKey, expectations, record);

  if (evidence.component === 'serving') {
    const key = rd.receiptKey;
    const good = key !== undefined && decodeBase64(key.x).length === 32;
    record(
      'receipt_key',
      good ? 'pass' : 'fail',
      key === undefined ? 'no receipt key' : `Ed25519 ${key.x}`,
      'an Ed25519 receipt key in the runtime data',
      'RECEIPT_INVALID',
    );
  }

  return {
    ok: checks.every((c) => c.status !== 'fail'),
    checks,
    identity: {
      component: evidence.component,
      id: evidence.id,
      tee: evidence.tee,
      insecure: input?.insecure ?? evidence.tee === 'sample',
      releases,
      measurements: input?.measurements ?? {},
      hardwareIds: input?.hardwareIds ?? [],
      keyConfig,
      hpkeKeyConfig: rd.hpkeKeyConfig,
      tlsSpkiSha256: rd.tlsSpkiSha256,
      receiptKey: rd.receiptKey ?? null,
      models: rd.models ?? [],
      evidenceSha256: await sha256Hex(cpuBytes),
    },
  };
}

type Record_ = (
  check: CheckName,
  status: CheckStatus,
  seen: string,
  expected: string,
  code?: ErrorCode,
) => void;

interface HardwareVerdict {
  readonly result: VerificationResult | null;
  readonly problem: string;
  readonly code: ErrorCode;
  readonly sampleKey: SampleVerifyKey | undefined;
}

async function verifyCpuEvidence(
  evidence: ComponentEvidence,
  bytes: Uint8Array,
  expectations: ComponentExpectations,
): Promise<HardwareVerdict> {
  const { now, verifiers } = expectations;
  const common = { now, ...(verifiers === undefined ? {} : { verifiers }) };
  try {
    if (evidence.tee !== 'sample') {
      const files = evidence.tee === 'snp' ? { report: bytes } : { quote: bytes };
      const { result } = await verifyAttestation({ files, tee: evidence.tee, ...common });
      return { result, problem: '', code: 'ATTESTATION_SIGNATURE_INVALID', sampleKey: undefined };
    }
    const keys = expectations.policy.sampleVerifyKeys;
    if (keys.length === 0) {
      return {
        result: null,
        problem: 'sample TEE evidence, and the policy names no sample verify key',
        code: 'SAMPLE_TEE_NOT_ALLOWED',
        sampleKey: undefined,
      };
    }
    let last: VerificationResult | null = null;
    for (const key of keys) {
      const { result } = await verifyAttestation({
        files: { evidence: bytes, sample_key: new TextEncoder().encode(key.hex) },
        tee: 'sample',
        ...common,
      });
      if (result.valid) return { result, problem: '', code: 'ATTESTATION_SIGNATURE_INVALID', sampleKey: key };
      last = result;
    }
    return { result: last, problem: '', code: 'ATTESTATION_SIGNATURE_INVALID', sampleKey: undefined };
  } catch (cause) {
    const code = cause instanceof TresorError ? cause.code : 'ATTESTATION_EVIDENCE_MALFORMED';
    const message = cause instanceof Error ? cause.message : 'unreadable evidence';
    return { result: null, problem: message, code, sampleKey: undefined };
  }
}

function describeHardware(result: VerificationResult): string {
  const failed = Object.entries(result.checks).find(([, c]) => !c.ok);
  if (failed !== undefined) return `${failed[0]}: ${failed[1].detail ?? failed[1].code ?? 'failed'}`;
  return `${result.tee} evidence verified (${Object.keys(result.checks).join(', ')})`;
}

function appraisalPolicyFor(policy: TresorPolicy) {
  return parseAppraisalPolicy({
    id: 'tresor-client',
    allowSampleTee: policy.allowSampleTee,
    allowDebug: false,
    // Measurements and residency are checked against the trust service's signed documents below.
    measurements: 'any',
    hardwareIds: 'any',
    tcb: { minimum: policy.minimumTcb },
    maxEvidenceAgeSeconds: policy.maxEvidenceAgeSeconds,
    requireReportDataBinding: true,
    // GPU evidence is bound through runtimeData.gpuEvidenceSha256 (protocol contract), checked below.
    requireGpuBinding: false,
  });
}

function policyCheck(all: Checks, name: string): Checks[string] | undefined {
  return all[`policy_${name}`] ?? all[name];
}

function seenFor(check: CheckName, input: AppraisalInput, evidence: ComponentEvidence): string {
  switch (check) {
    case 'sample_tee':
      return input.insecure ? 'sample TEE' : `hardware TEE (${input.tee})`;
    case 'tcb':
      return JSON.stringify(input.tcb);
    case 'freshness':
      return `produced at ${evidence.producedAt}`;
    default:
      return 'ok';
  }
}

function expectedFor(check: CheckName, policy: TresorPolicy, evidence: ComponentEvidence): string {
  switch (check) {
    case 'sample_tee':
      return policy.allowSampleTee ? 'sample TEE allowed by the policy (insecure)' : 'a hardware TEE';
    case 'debug_off':
      return 'debug disabled';
    case 'tcb': {
      const min = policy.minimumTcb.filter((m) => m.tee === evidence.tee);
      return min.length === 0
        ? 'no minimum TCB for this TEE in the policy'
        : `at least ${JSON.stringify(min.map((m) => m.components))}`;
    }
    case 'report_data':
      return 'SHA-384(JCS(runtimeData)) zero-padded to 64 bytes';
    case 'freshness':
      return `at most ${policy.maxEvidenceAgeSeconds} s old`;
    default:
      return '';
  }
}

function checkMeasurement(
  evidence: ComponentEvidence,
  input: AppraisalInput | null,
  policy: TresorPolicy,
  referenceValues: ReferenceValues,
  record: Record_,
): string[] {
  const expected = describeAllowed(policy, evidence.component);
  if (input === null) {
    record('measurement', 'fail', 'no verified evidence', expected, 'MEASUREMENT_NOT_ALLOWED');
    return [];
  }
  const shown = Object.entries(input.measurements)
    .map(([name, value]) => `${name}=${value}`)
    .join(', ');
  const signed = matchReferenceValues(referenceValues.referenceValues, {
    tee: input.tee,
    measurements: input.measurements,
  }).filter((set) => set.component === evidence.component);
  const pinned = signed.filter(
    (set) =>
      policy.trustSignedReferenceValues ||
      policy.releases.some((r) => r.component === set.component && r.release === set.release),
  );
  const direct = policy.measurements.some(
    (m) =>
      m.component === evidence.component &&
      m.tee === input.tee &&
      Object.entries(m.measurements).every(([name, allowed]) => {
        const value = input.measurements[name];
        return value !== undefined && allowed.includes(value.toLowerCase());
      }),
  );
  const releases = pinned.map((set) => `${set.component}@${set.release}`);
  const ok = pinned.length > 0 || direct;
  record(
    'measurement',
    ok ? 'pass' : 'fail',
    `${shown === '' ? 'no measurement' : shown}${releases.length > 0 ? ` (release ${releases.join(', ')})` : signed.length > 0 ? ` (signed release ${signed.map((s) => s.release).join(', ')}, not pinned)` : ''}`,
    expected,
    'MEASUREMENT_NOT_ALLOWED',
  );
  return releases;
}

function describeAllowed(policy: TresorPolicy, component: string): string {
  const parts: string[] = [];
  if (policy.trustSignedReferenceValues)
    parts.push(`any ${component} release in the signed reference values`);
  const pinned = policy.releases.filter((r) => r.component === component).map((r) => r.release);
  if (pinned.length > 0)
    parts.push(`${component} release ${pinned.join(' or ')} per the signed reference values`);
  if (policy.measurements.some((m) => m.component === component))
    parts.push('a measurement listed in the policy');
  return parts.length === 0 ? `no ${component} release is allowed by the policy` : parts.join(', or ');
}

function checkModels(
  evidence: ComponentEvidence,
  input: AppraisalInput | null,
  referenceValues: ReferenceValues,
  releases: readonly string[],
  record: Record_,
): void {
  const models = evidence.runtimeData.models;
  if (evidence.component !== 'serving' && models === undefined) return;
  const sets = referenceValues.referenceValues.filter(
    (set) => releases.includes(`${set.component}@${set.release}`) && input !== null && set.tee === input.tee,
  );
  const allowed = new Set(sets.flatMap((s) => s.modelDigests));
  const constrained = sets.length > 0 && sets.every((s) => s.modelDigests.length > 0);
  const bad = (models ?? []).filter((m) => constrained && !allowed.has(m.sha256.toLowerCase()));
  record(
    'models',
    bad.length === 0 ? 'pass' : 'fail',
    (models ?? []).map((m) => `${m.id} sha256:${m.sha256}`).join(', ') || 'no model loaded',
    constrained
      ? `models the release allows (${allowed.size} digests)`
      : 'any model (the release does not constrain models)',
    'MEASUREMENT_NOT_ALLOWED',
  );
}

async function checkGpu(
  evidence: ComponentEvidence,
  expectations: ComponentExpectations,
  record: Record_,
): Promise<void> {
  const listed = evidence.runtimeData.gpuEvidenceSha256;
  const required = expectations.policy.requireGpu && evidence.component === 'serving';
  if (evidence.gpu === undefined) {
    if (listed !== undefined) {
      record(
        'gpu',
        'fail',
        `runtime data lists GPU evidence ${listed}, none was sent`,
        'the GPU evidence it binds',
        'GPU_EVIDENCE_NOT_BOUND',
      );
    } else if (required) {
      record(
        'gpu',
        'fail',
        'no GPU evidence',
        'NVIDIA GPU evidence in confidential-computing mode (requireGpu)',
        'GPU_CC_REQUIRED',
      );
    } else if (evidence.component === 'serving') {
      record('gpu', 'pass', 'no GPU evidence', 'GPU evidence only when the policy sets requireGpu');
    }
    return;
  }
  const bytes = decodeBase64(evidence.gpu.evidence);
  const hash = await sha256Hex(bytes);
  if (listed?.toLowerCase() !== hash) {
    record(
      'gpu',
      'fail',
      `GPU evidence SHA-256 ${hash}`,
      `runtimeData.gpuEvidenceSha256 = ${listed ?? '(absent)'}`,
      'GPU_EVIDENCE_NOT_BOUND',
    );
    return;
  }
  try {
    const { result } = await verifyAttestation({
      files: { evidence: bytes },
      tee: 'nvidia',
      now: expectations.now,
      gpuNonce: expectations.nonce,
      ...(expectations.verifiers === undefined ? {} : { verifiers: expectations.verifiers }),
    });
    record(
      'gpu',
      result.valid ? 'pass' : 'fail',
      result.valid ? `GPU evidence ${hash.slice(0, 16)}… verified and bound` : describeHardware(result),
      'NVIDIA GPU evidence, verified, with the client nonce, bound by the CPU report',
      result.error ?? undefined,
    );
  } catch (cause) {
    record(
      'gpu',
      'fail',
      cause instanceof Error ? cause.message : 'unreadable GPU evidence',
      'NVIDIA GPU evidence, verified, bound by the CPU report',
      cause instanceof TresorError ? cause.code : 'ATTESTATION_EVIDENCE_MALFORMED',
    );
  }
}

function checkResidency(
  evidence: ComponentEvidence,
  input: AppraisalInput | null,
  sampleKey: SampleVerifyKey | undefined,
  expectations: ComponentExpectations,
  record: Record_,
): void {
  const allowed = expectations.policy.jurisdictions;
  const expected = `every hardware id in the signed residency inventory, in ${allowed.join(' or ')}`;
  if (input === null) {
    record('residency', 'fail', 'no verified evidence', expected, 'RESIDENCY_VIOLATION');
    return;
  }
  const ids = residencyIds(input, sampleKey === undefined ? undefined : sampleMachineId(sampleKey));
  if (ids.length === 0) {
    record('residency', 'fail', 'the evidence names no hardware id', expected, 'RESIDENCY_VIOLATION');
    return;
  }
  const byId = new Map(expectations.inventory.hardware.map((e) => [e.id, e]));
  const found = ids.map((id) => ({ id, entry: byId.get(id) }));
  const bad = found.find(({ entry }) => entry === undefined || !allowed.includes(entry.jurisdiction));
  const shown = found
    .map(
      ({ id, entry }) =>
        `${id.slice(0, 16)}… ${entry === undefined ? 'not in the inventory' : `${entry.jurisdiction}${entry.site === '' ? '' : ` (${entry.site})`}`}`,
    )
    .join(', ');
  record('residency', bad === undefined ? 'pass' : 'fail', shown, expected, 'RESIDENCY_VIOLATION');
}

function decodeBase64(text: string): Uint8Array {
  try {
    return base64ToBytes(text);
  } catch {
    return new Uint8Array(0);
  }
}

function parseTime(text: string): Date | undefined {
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : new Date(t);
}

export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  return bytesToHex(new Uint8Array(await crypto.subtle.digest('SHA-256', toArrayBuffer(bytes))));
}

/** The report data a component's runtime data requires (hex), for tools that show it. */
export async function expectedReportData(runtimeData: ComponentEvidence['runtimeData']): Promise<string> {
  return bytesToHex(await runtimeDataHash(runtimeData));
}
