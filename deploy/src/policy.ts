import { TresorError } from '@tresor/protocol';
import { objectName, type KubeObject } from './kube-objects.js';
import { INIT_DATA_ANNOTATION, isConfidentialRuntimeClass } from './runtime-classes.js';

/**
 * The deployment policy every rendered manifest must meet before anything is written. The
 * confidentiality promise holds only for code in a TEE, so a pod outside a confidential runtime
 * class, a container running as root, a Kubernetes Secret (key material handed out by the cluster
 * instead of released by the trust service after attestation) or a host path is refused.
 */
export type DeploymentPolicyRule =
  'runtime-class' | 'init-data' | 'root' | 'secret' | 'host-path' | 'host-namespace' | 'unchecked-kind';

export interface DeploymentPolicyViolation {
  readonly rule: DeploymentPolicyRule;
  /** `Kind namespace/name`, and the container where the violation is in one. */
  readonly object: string;
  readonly container?: string;
  readonly message: string;
}

/** Kinds with no pod template, checked only for being a Secret. */
const PODLESS_KINDS = new Set([
  'Namespace',
  'ServiceAccount',
  'Service',
  'ConfigMap',
  'HorizontalPodAutoscaler',
  'PodDisruptionBudget',
  'NetworkPolicy',
  'ClusterRole',
  'Role',
  'ClusterRoleBinding',
  'RoleBinding',
  'SecurityContextConstraints',
  'Route',
  'PersistentVolumeClaim',
]);

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function member(value: unknown, key: string): unknown {
  return isObject(value) ? value[key] : undefined;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/** The pod template (metadata + spec) of a workload, or undefined when the kind has none. */
function podTemplate(object: KubeObject): { metadata: unknown; spec: unknown } | undefined {
  switch (object.kind) {
    case 'Pod':
      return { metadata: object.metadata, spec: object.spec };
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'ReplicationController':
    case 'Job': {
      const template = member(object.spec, 'template');
      return { metadata: member(template, 'metadata'), spec: member(template, 'spec') };
    }
    case 'CronJob': {
      const template = member(member(member(object.spec, 'jobTemplate'), 'spec'), 'template');
      return { metadata: member(template, 'metadata'), spec: member(template, 'spec') };
    }
    default:
      return undefined;
  }
}

function containersOf(spec: unknown): Json[] {
  return ['initContainers', 'containers', 'ephemeralContainers'].flatMap((key) =>
    list(member(spec, key)).filter(isObject),
  );
}

function checkPod(
  object: KubeObject,
  metadata: unknown,
  spec: unknown,
  out: DeploymentPolicyViolation[],
): void {
  const where = objectName(object);
  const add = (rule: DeploymentPolicyRule, message: string, container?: string) =>
    out.push(
      container === undefined
        ? { rule, object: where, message }
        : { rule, object: where, container, message },
    );

  const runtimeClass = member(spec, 'runtimeClassName');
  if (!isConfidentialRuntimeClass(runtimeClass)) {
    add(
      'runtime-class',
      runtimeClass === undefined
        ? 'the pod has no runtimeClassName, so it would run as a plain container outside any TEE'
        : `runtimeClassName ${JSON.stringify(runtimeClass)} is not a Confidential Containers runtime class`,
    );
  }
  const annotation = member(member(metadata, 'annotations'), INIT_DATA_ANNOTATION);
  if (typeof annotation !== 'string' || annotation.length === 0) {
    add(
      'init-data',
      `the pod has no ${INIT_DATA_ANNOTATION} annotation, so its TEE cannot be bound to its policy`,
    );
  }

  for (const key of ['hostNetwork', 'hostPID', 'hostIPC'] as const) {
    if (member(spec, key) === true) add('host-namespace', `${key} shares the host's namespace with the pod`);
  }
  if (member(spec, 'automountServiceAccountToken') !== false) {
    add('secret', 'the service-account token would be mounted; set automountServiceAccountToken: false');
  }
  for (const volume of list(member(spec, 'volumes'))) {
    const name = String(member(volume, 'name'));
    if (member(volume, 'hostPath') !== undefined) add('host-path', `volume ${name} mounts a host path`);
    if (member(volume, 'secret') !== undefined) add('secret', `volume ${name} mounts a Kubernetes Secret`);
    for (const source of list(member(member(volume, 'projected'), 'sources'))) {
      if (member(source, 'secret') !== undefined)
        add('secret', `projected volume ${name} includes a Kubernetes Secret`);
      if (member(source, 'serviceAccountToken') !== undefined) {
        add('secret', `projected volume ${name} includes a service-account token`);
      }
    }
  }

  const podContext = member(spec, 'securityContext');
  for (const container of containersOf(spec)) {
    const name = String(container.name);
    const context = member(container, 'securityContext');
    const runAsNonRoot = member(context, 'runAsNonRoot') ?? member(podContext, 'runAsNonRoot');
    const runAsUser = member(context, 'runAsUser') ?? member(podContext, 'runAsUser');
    if (runAsNonRoot !== true) add('root', 'runAsNonRoot is not true, so the image may run as root', name);
    if (runAsUser === 0) add('root', 'runAsUser is 0 (root)', name);
    if (member(context, 'privileged') === true) add('root', 'the container is privileged', name);
    if (member(context, 'allowPrivilegeEscalation') !== false) {
      add('root', 'allowPrivilegeEscalation is not false (setuid binaries could become root)', name);
    }
    for (const env of list(container.env)) {
      if (member(member(env, 'valueFrom'), 'secretKeyRef') !== undefined) {
        add('secret', `environment variable ${String(member(env, 'name'))} reads a Kubernetes Secret`, name);
      }
    }
    for (const source of list(container.envFrom)) {
      if (member(source, 'secretRef') !== undefined) add('secret', 'envFrom reads a Kubernetes Secret', name);
    }
  }
}

/**
 * Checks rendered objects against the deployment policy and returns every violation (empty: the
 * manifests comply). Fails closed: a kind it does not know how to inspect is a violation too.
 */
export function checkDeploymentPolicy(objects: readonly KubeObject[]): DeploymentPolicyViolation[] {
  const violations: DeploymentPolicyViolation[] = [];
  for (const object of objects) {
    if (object.kind === 'Secret') {
      violations.push({
        rule: 'secret',
        object: objectName(object),
        message: 'a Kubernetes Secret; secrets come from the trust service after attestation',
      });
      continue;
    }
    const template = podTemplate(object);
    if (template !== undefined) {
      checkPod(object, template.metadata, template.spec, violations);
    } else if (!PODLESS_KINDS.has(object.kind)) {
      violations.push({
        rule: 'unchecked-kind',
        object: objectName(object),
        message: `the policy cannot inspect kind ${object.kind}`,
      });
    }
  }
  return violations;
}

/** @throws TresorError DEPLOYMENT_POLICY_VIOLATION listing the violations, when there are any. */
export function assertDeploymentPolicy(objects: readonly KubeObject[]): void {
  const violations = checkDeploymentPolicy(objects);
  if (violations.length === 0) return;
  const lines = violations
    .slice(0, 10)
    .map(
      (v) =>
        `${v.object}${v.container === undefined ? '' : ` container ${v.container}`}: [${v.rule}] ${v.message}`,
    );
  const more = violations.length > 10 ? `; and ${violations.length - 10} more` : '';
  throw new TresorError(
    'DEPLOYMENT_POLICY_VIOLATION',
    `the manifests break the deployment policy, nothing was written: ${lines.join('; ')}${more}`,
  );
}
