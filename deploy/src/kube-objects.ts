import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';

/** A rendered Kubernetes object as it goes into the YAML: plain JSON. */
export interface KubeObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata?: {
    readonly name?: string;
    readonly namespace?: string;
    readonly [key: string]: unknown;
  };
  readonly [key: string]: unknown;
}

/**
 * OpenShift's own kinds are not in kubernetes-models (which covers the upstream API only); these
 * schemas follow the OpenShift 4 API reference for security.openshift.io/v1 SecurityContextConstraints
 * and route.openshift.io/v1 Route, restricted to the fields Tresor renders, and strict, so a typo fails.
 */
const idRange = z.strictObject({ min: z.int().min(0), max: z.int().min(0) });
const sccStrategy = (types: readonly [string, ...string[]]) =>
  z.strictObject({ type: z.enum(types), ranges: z.array(idRange).optional() });
const objectMeta = z.looseObject({
  name: z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/),
  namespace: z.string().optional(),
  labels: z.record(z.string(), z.string()).optional(),
  annotations: z.record(z.string(), z.string()).optional(),
});

export const securityContextConstraintsSchema = z.strictObject({
  apiVersion: z.literal('security.openshift.io/v1'),
  kind: z.literal('SecurityContextConstraints'),
  metadata: objectMeta,
  priority: z.int().nullable().optional(),
  allowHostDirVolumePlugin: z.boolean(),
  allowHostIPC: z.boolean(),
  allowHostNetwork: z.boolean(),
  allowHostPID: z.boolean(),
  allowHostPorts: z.boolean(),
  allowPrivilegeEscalation: z.boolean().optional(),
  allowPrivilegedContainer: z.boolean(),
  allowedCapabilities: z.array(z.string()).nullable(),
  defaultAddCapabilities: z.array(z.string()).nullable(),
  requiredDropCapabilities: z.array(z.string()).nullable(),
  readOnlyRootFilesystem: z.boolean(),
  runAsUser: z.strictObject({
    type: z.enum(['MustRunAs', 'MustRunAsRange', 'MustRunAsNonRoot', 'RunAsAny']),
    uid: z.int().optional(),
    uidRangeMin: z.int().optional(),
    uidRangeMax: z.int().optional(),
  }),
  seLinuxContext: z.strictObject({ type: z.enum(['MustRunAs', 'RunAsAny']) }),
  fsGroup: sccStrategy(['MustRunAs', 'RunAsAny']),
  supplementalGroups: sccStrategy(['MustRunAs', 'RunAsAny']),
  seccompProfiles: z.array(z.string()).optional(),
  volumes: z.array(z.string()),
  users: z.array(z.string()),
  groups: z.array(z.string()),
});

export const routeSchema = z.strictObject({
  apiVersion: z.literal('route.openshift.io/v1'),
  kind: z.literal('Route'),
  metadata: objectMeta,
  spec: z.strictObject({
    host: z.string().optional(),
    to: z.strictObject({ kind: z.literal('Service'), name: z.string(), weight: z.int().optional() }),
    port: z.strictObject({ targetPort: z.union([z.string(), z.int()]) }),
    tls: z.strictObject({
      termination: z.enum(['edge', 'passthrough', 'reencrypt']),
      insecureEdgeTerminationPolicy: z.enum(['None', 'Allow', 'Redirect']).optional(),
    }),
    wildcardPolicy: z.enum(['None', 'Subdomain']).optional(),
  }),
});

type Validator = (object: KubeObject) => void;

/** kubernetes-models validates against the Kubernetes OpenAPI schema and throws on a mismatch. */
function model(build: (data: never) => { validate(): void }): Validator {
  return (object) => {
    build(object as never).validate();
  };
}

function zodValidator(schema: z.ZodType): Validator {
  return (object) => {
    const parsed = schema.safeParse(object);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new Error(`${issue?.path.join('/') ?? ''} ${issue?.message ?? 'invalid'}`);
    }
  };
}

const VALIDATORS: Readonly<Record<string, Validator>> = {
  'v1/Namespace': model((d) => new Namespace(d)),
  'v1/ServiceAccount': model((d) => new ServiceAccount(d)),
  'v1/Service': model((d) => new Service(d)),
  'v1/ConfigMap': model((d) => new ConfigMap(d)),
  'apps/v1/Deployment': model((d) => new Deployment(d)),
  'apps/v1/StatefulSet': model((d) => new StatefulSet(d)),
  'autoscaling/v2/HorizontalPodAutoscaler': model((d) => new HorizontalPodAutoscaler(d)),
  'policy/v1/PodDisruptionBudget': model((d) => new PodDisruptionBudget(d)),
  'networking.k8s.io/v1/NetworkPolicy': model((d) => new NetworkPolicy(d)),
  'rbac.authorization.k8s.io/v1/ClusterRole': model((d) => new ClusterRole(d)),
  'rbac.authorization.k8s.io/v1/RoleBinding': model((d) => new RoleBinding(d)),
  'security.openshift.io/v1/SecurityContextConstraints': zodValidator(securityContextConstraintsSchema),
  'route.openshift.io/v1/Route': zodValidator(routeSchema),
};

export function objectName(object: KubeObject): string {
  const ns = object.metadata?.namespace;
  return `${object.kind} ${ns === undefined ? '' : `${ns}/`}${object.metadata?.name ?? '(unnamed)'}`;
}

/**
 * Validates one object against its schema. Fails closed: a kind without a schema here is refused,
 * not waved through.
 * @throws TresorError CONFIG_INVALID naming the object and the first schema violation.
 */
export function validateKubeObject(object: KubeObject): void {
  const validator = VALIDATORS[`${object.apiVersion}/${object.kind}`];
  if (validator === undefined) {
    throw new TresorError(
      'CONFIG_INVALID',
      `${objectName(object)}: no schema for ${object.apiVersion} ${object.kind}, so it cannot be validated`,
    );
  }
  try {
    validator(object);
  } catch (cause) {
    throw new TresorError(
      'CONFIG_INVALID',
      `${objectName(object)} does not validate against the Kubernetes schema: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}
