/**
 * Kubernetes RuntimeClass names of Confidential Containers (CoCo) sandboxes. A pod runs inside a
 * hardware TEE only when its `runtimeClassName` is one of these: kata-deploy and the CoCo operator
 * install the `kata-qemu-*` classes (the NVIDIA GPU variants come with the NVIDIA GPU operator's
 * confidential-containers profile); OpenShift sandboxed containers installs `kata-cc` (and
 * `kata-cc-nvidia-gpu` for CC-mode GPUs) on bare metal, where the node's hardware picks the TEE.
 * Everything else (`kata`, `kata-qemu`, `runc`, none) is a plain container or VM the host can read.
 */
export type TeeKind = 'snp' | 'tdx';

export const TEE_KINDS: readonly TeeKind[] = ['snp', 'tdx'];

/** Defaults per TEE: CPU-only pods and pods with a GPU passed through in CC mode. */
export const DEFAULT_RUNTIME_CLASSES = {
  snp: 'kata-qemu-snp',
  tdx: 'kata-qemu-tdx',
  gpuSnp: 'kata-qemu-nvidia-gpu-snp',
  gpuTdx: 'kata-qemu-nvidia-gpu-tdx',
} as const;

/** The only runtime classes the deployment policy accepts (see checkDeploymentPolicy). */
export const CONFIDENTIAL_RUNTIME_CLASSES = [
  'kata-qemu-snp',
  'kata-qemu-tdx',
  'kata-qemu-nvidia-gpu-snp',
  'kata-qemu-nvidia-gpu-tdx',
  'kata-cc',
  'kata-cc-nvidia-gpu',
] as const;

export type ConfidentialRuntimeClass = (typeof CONFIDENTIAL_RUNTIME_CLASSES)[number];

export function isConfidentialRuntimeClass(name: unknown): name is ConfidentialRuntimeClass {
  return typeof name === 'string' && (CONFIDENTIAL_RUNTIME_CLASSES as readonly string[]).includes(name);
}

/** The pod annotation the Kata runtime reads init data from (base64 of the gzipped TOML document). */
export const INIT_DATA_ANNOTATION = 'io.katacontainers.config.hypervisor.cc_init_data';
