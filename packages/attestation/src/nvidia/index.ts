export {
  createNvidiaVerifier,
  nvidiaVerifier,
  verifyNvidiaEvidence,
  type NvidiaEndorsements,
  type NvidiaVerifierOptions,
} from './verifier.js';
export { parseNvidiaEvidence, type NvidiaEvidence, type PublishedGpuEvidence } from './evidence.js';
export {
  parseGpuAttestationReport,
  type GetMeasurementsRequest,
  type GpuAttestationReport,
  type MeasurementBlock,
  type MeasurementsResponse,
} from './attestation-report.js';
export { opaqueFieldName, type GpuOpaqueData } from './opaque-data.js';
export {
  compareWithReferenceManifest,
  parseNvidiaReferenceManifest,
  type NvidiaReferenceManifest,
} from './reference-manifest.js';
export { gpuEvidenceHash, gpuEvidenceHashes } from './evidence-hash.js';
export { NVIDIA_DEVICE_IDENTITY_CA_SHA256, nvidiaDeviceIdentityCa } from './device-root.js';
export type { GpuClaims, GpuListClaims, NvidiaClaims } from './claims.js';
