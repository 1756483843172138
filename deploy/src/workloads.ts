import type { IIoK8sApiCoreV1Container } from 'kubernetes-models/v1/Container';
import type { IIoK8sApiCoreV1EnvVar } from 'kubernetes-models/v1/EnvVar';
import type { IIoK8sApiCoreV1PodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IIoK8sApiCoreV1PodTemplateSpec } from 'kubernetes-models/v1/PodTemplateSpec';
import type { IIoK8sApiCoreV1SecurityContext } from 'kubernetes-models/v1/SecurityContext';
import type { IIoK8sApiCoreV1Volume } from 'kubernetes-models/v1/Volume';
import type { IIoK8sApiCoreV1VolumeMount } from 'kubernetes-models/v1/VolumeMount';
import { buildInitData, DEFAULT_AGENT_POLICY, type InitData } from './init-data.js';
import { INIT_DATA_ANNOTATION, type TeeKind } from './runtime-classes.js';
import { imageDigest, trustUrl, type DeploymentValues } from './values.js';

/** The non-root user of the images (`nonroot` in the base image built by scripts/build-images.ts). */
export const TRESOR_UID = 65532;
/** The `redis` user of the official Redis image. */
export const REDIS_UID = 999;
export const SERVICE_PORT = 8443;
export const REDIS_PORT = 6379;
export const REGION_LABEL = 'topology.kubernetes.io/region';
/** Annotation repeating the init-data digest in readable form, for operators comparing with reference values. */
export const INIT_DATA_DIGEST_ANNOTATION = 'tresor.io/init-data-digest';

export type Component = 'trust' | 'gateway' | 'serving' | 'redis';

export function labels(values: DeploymentValues, component: Component): Record<string, string> {
  return {
    'app.kubernetes.io/name': `tresor-${component}`,
    'app.kubernetes.io/component': component,
    'app.kubernetes.io/part-of': 'tresor',
    'app.kubernetes.io/version': values.release,
  };
}

/** The labels a selector matches on: stable across releases, so a rollout keeps its pods. */
export function selectorLabels(component: Component): Record<string, string> {
  return { 'app.kubernetes.io/name': `tresor-${component}`, 'app.kubernetes.io/part-of': 'tresor' };
}

/** Init data of one component's pods. */
export function componentInitData(
  values: DeploymentValues,
  component: Component,
  tee: TeeKind,
  image: string,
): InitData {
  return buildInitData({
    component,
    tee,
    imageDigest: imageDigest(image),
    release: values.release,
    kbsUrl: trustUrl(values),
    kbsCertificate: values.trust.kbsCertificate,
    tenant: component === 'serving' ? values.serving.tenant : undefined,
    agentPolicy: values.coco.agentPolicy ?? DEFAULT_AGENT_POLICY,
  });
}

/**
 * The container hardening every Tresor container gets: non-root, no privilege escalation, read-only
 * root file system, no capabilities, the runtime's default seccomp profile.
 */
export function containerSecurityContext(uid: number): IIoK8sApiCoreV1SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    allowPrivilegeEscalation: false,
    privileged: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'] },
    seccompProfile: { type: 'RuntimeDefault' },
  };
}

/**
 * Writable scratch space. medium: Memory keeps it inside the confidential guest (tmpfs in the VM);
 * a disk-backed emptyDir would be a host directory shared into the guest.
 */
export function memoryVolume(name: string, sizeLimit: string): IIoK8sApiCoreV1Volume {
  return { name, emptyDir: { medium: 'Memory', sizeLimit } };
}

export interface ConfidentialPodOptions {
  readonly values: DeploymentValues;
  readonly component: Component;
  readonly tee: TeeKind;
  readonly runtimeClassName: string;
  readonly initData: InitData;
  readonly containers: IIoK8sApiCoreV1Container[];
  readonly volumes: IIoK8sApiCoreV1Volume[];
  readonly uid: number;
  /** Spread replicas over hosts (preferred, so a small cluster still schedules). */
  readonly spread: boolean;
}

/** A pod template that can only run inside a CoCo TEE, only in a Swiss region, with no host access. */
export function confidentialPodTemplate(options: ConfidentialPodOptions): IIoK8sApiCoreV1PodTemplateSpec {
  const { values, component } = options;
  const spec: IIoK8sApiCoreV1PodSpec = {
    runtimeClassName: options.runtimeClassName,
    serviceAccountName: `tresor-${component}`,
    // No Kubernetes API token inside the TEE: Tresor services never call the API server, and the
    // token is host-provided material the workload has no use for.
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    hostNetwork: false,
    hostPID: false,
    hostIPC: false,
    securityContext: {
      runAsNonRoot: true,
      runAsUser: options.uid,
      runAsGroup: options.uid,
      fsGroup: options.uid,
      seccompProfile: { type: 'RuntimeDefault' },
    },
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: [
            { matchExpressions: [{ key: REGION_LABEL, operator: 'In', values: [...values.regions] }] },
          ],
        },
      },
      ...(options.spread
        ? {
            podAntiAffinity: {
              preferredDuringSchedulingIgnoredDuringExecution: [
                {
                  weight: 100,
                  podAffinityTerm: {
                    labelSelector: { matchLabels: selectorLabels(component) },
                    topologyKey: 'kubernetes.io/hostname',
                  },
                },
              ],
            },
          }
        : {}),
    },
    containers: options.containers,
    volumes: options.volumes,
  };
  return {
    metadata: {
      labels: { ...labels(values, component), 'tresor.io/tee': options.tee },
      annotations: {
        [INIT_DATA_ANNOTATION]: options.initData.annotation,
        [INIT_DATA_DIGEST_ANNOTATION]: `${options.initData.algorithm}:${options.initData.digest}`,
      },
    },
    spec,
  };
}

export interface ServiceContainerOptions {
  readonly values: DeploymentValues;
  readonly component: Exclude<Component, 'redis'>;
  readonly image: string;
  readonly resources: { readonly cpu: string; readonly memory: string };
  readonly env: IIoK8sApiCoreV1EnvVar[];
  readonly extraMounts?: IIoK8sApiCoreV1VolumeMount[];
  /** Extended resources (a GPU), requested and limited alike. */
  readonly extraResources?: Record<string, string>;
}

/** A Tresor service container: `tresor <component> serve --config /etc/tresor/config.json`. */
export function serviceContainer(options: ServiceContainerOptions): IIoK8sApiCoreV1Container {
  const probe = (path: string) => ({
    httpGet: { path, port: 'https', scheme: 'HTTPS' as const },
    periodSeconds: 10,
    timeoutSeconds: 3,
    failureThreshold: 3,
  });
  return {
    name: options.component,
    image: options.image,
    imagePullPolicy: 'IfNotPresent',
    args: [options.component, 'serve', '--config', '/etc/tresor/config.json'],
    ports: [{ name: 'https', containerPort: SERVICE_PORT, protocol: 'TCP' }],
    env: [
      { name: 'NODE_ENV', value: 'production' },
      { name: 'TRESOR_COMPONENT', value: options.component },
      { name: 'TRESOR_TRUST_URL', value: trustUrl(options.values) },
      ...options.env,
    ],
    resources: {
      requests: { cpu: options.resources.cpu, memory: options.resources.memory, ...options.extraResources },
      limits: { memory: options.resources.memory, ...options.extraResources },
    },
    securityContext: containerSecurityContext(TRESOR_UID),
    startupProbe: { ...probe('/healthz'), failureThreshold: 60 },
    livenessProbe: probe('/healthz'),
    readinessProbe: probe('/readyz'),
    volumeMounts: [
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'config', mountPath: '/etc/tresor', readOnly: true },
      ...(options.extraMounts ?? []),
    ],
  };
}

/** Volumes every Tresor service pod has: in-guest /tmp and its (non-secret) configuration. */
export function serviceVolumes(component: Component): IIoK8sApiCoreV1Volume[] {
  return [
    memoryVolume('tmp', '64Mi'),
    { name: 'config', configMap: { name: `tresor-${component}-config`, defaultMode: 0o444 } },
  ];
}
