import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import type { IIoK8sApiNetworkingV1NetworkPolicyEgressRule } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyEgressRule';
import type { IIoK8sApiNetworkingV1NetworkPolicyIngressRule } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyIngressRule';
import type { IIoK8sApiNetworkingV1NetworkPolicyPeer } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicyPeer';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ClusterRole } from 'kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole';
import { RoleBinding } from 'kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { InitData } from './init-data.js';
import type { KubeObject } from './kube-objects.js';
import type { TeeKind } from './runtime-classes.js';
import { redisUrl, type DeploymentValues } from './values.js';
import {
  componentInitData,
  confidentialPodTemplate,
  containerSecurityContext,
  labels,
  memoryVolume,
  REDIS_PORT,
  REDIS_UID,
  selectorLabels,
  SERVICE_PORT,
  serviceContainer,
  serviceVolumes,
  TRESOR_UID,
  type Component,
} from './workloads.js';

/** One chart: a file of the rendered output. */
export interface ChartObjects {
  readonly name: string;
  readonly objects: KubeObject[];
}

/** Init data per component, for the reference values. */
export interface ComponentInitData {
  readonly component: Component;
  readonly tee: TeeKind;
  readonly image: string;
  readonly initData: InitData;
}

const json = (model: { toJSON(): unknown }): KubeObject => model.toJSON() as KubeObject;

function cpuRuntimeClass(values: DeploymentValues, tee: TeeKind): string {
  return tee === 'snp' ? values.runtimeClasses.snp : values.runtimeClasses.tdx;
}

function gpuRuntimeClass(values: DeploymentValues, tee: TeeKind): string {
  return tee === 'snp' ? values.runtimeClasses.gpuSnp : values.runtimeClasses.gpuTdx;
}

function namespaceOf(values: DeploymentValues, component: Component): string {
  if (component === 'redis') return values.namespaces.data;
  return values.namespaces[component];
}

function serviceAccount(values: DeploymentValues, component: Component): KubeObject {
  return json(
    new ServiceAccount({
      metadata: {
        name: `tresor-${component}`,
        namespace: namespaceOf(values, component),
        labels: labels(values, component),
      },
      automountServiceAccountToken: false,
    }),
  );
}

function configMap(values: DeploymentValues, component: Exclude<Component, 'redis'>): KubeObject {
  return json(
    new ConfigMap({
      metadata: {
        name: `tresor-${component}-config`,
        namespace: namespaceOf(values, component),
        labels: labels(values, component),
      },
      data: { 'config.json': `${JSON.stringify(values[component].config, null, 2)}\n` },
    }),
  );
}

function clusterService(
  values: DeploymentValues,
  component: Component,
  options: {
    port: number;
    targetPort: number | string;
    type?: 'ClusterIP' | 'LoadBalancer';
    headless?: boolean;
    name?: string;
  },
): KubeObject {
  return json(
    new Service({
      metadata: {
        name: options.name ?? `tresor-${component}`,
        namespace: namespaceOf(values, component),
        labels: labels(values, component),
      },
      spec: {
        type: options.type ?? 'ClusterIP',
        ...(options.headless === true ? { clusterIP: 'None', publishNotReadyAddresses: false } : {}),
        selector: selectorLabels(component),
        ports: [
          {
            name: component === 'redis' ? 'redis' : 'https',
            port: options.port,
            targetPort: options.targetPort,
            protocol: 'TCP',
          },
        ],
      },
    }),
  );
}

export function namespacesChart(values: DeploymentValues): ChartObjects {
  const objects = Object.values(values.namespaces).map((name) =>
    json(
      new Namespace({
        metadata: {
          name,
          labels: {
            'app.kubernetes.io/part-of': 'tresor',
            // Pod Security Admission: the strictest profile; every Tresor pod meets it.
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
          },
        },
      }),
    ),
  );
  return { name: '00-namespaces', objects };
}

export function trustChart(values: DeploymentValues, initData: ComponentInitData[]): ChartObjects {
  const { trust } = values;
  const data = componentInitData(values, 'trust', trust.tee, trust.image);
  initData.push({ component: 'trust', tee: trust.tee, image: trust.image, initData: data });
  const container = serviceContainer({
    values,
    component: 'trust',
    image: trust.image,
    resources: trust.resources,
    env: [
      // The URL names the database, the user and sslmode only. The password (or client key) comes
      // from the trust service's own sealed configuration or the platform's workload identity,
      // never from a Kubernetes Secret (docs/deploy.md "Credentials").
      { name: 'TRESOR_DATABASE_URL', value: values.postgres.url },
      { name: 'TRESOR_STATE_DIR', value: '/var/lib/tresor' },
    ],
    extraMounts: [{ name: 'state', mountPath: '/var/lib/tresor' }],
  });
  const statefulSet = new StatefulSet({
    metadata: { name: 'tresor-trust', namespace: values.namespaces.trust, labels: labels(values, 'trust') },
    spec: {
      serviceName: 'tresor-trust-headless',
      replicas: trust.replicas,
      podManagementPolicy: 'OrderedReady',
      selector: { matchLabels: selectorLabels('trust') },
      template: confidentialPodTemplate({
        values,
        component: 'trust',
        tee: trust.tee,
        runtimeClassName: cpuRuntimeClass(values, trust.tee),
        initData: data,
        containers: [container],
        volumes: serviceVolumes('trust'),
        uid: TRESOR_UID,
        spread: true,
      }),
      // Everything the trust service writes here is sealed under a keystore KEK or signed
      // (docs/trust.md), so host-provided storage sees ciphertext and detectable signatures only.
      volumeClaimTemplates: [
        {
          metadata: { name: 'state' },
          spec: {
            accessModes: ['ReadWriteOnce'],
            ...(trust.storageClassName === undefined ? {} : { storageClassName: trust.storageClassName }),
            resources: { requests: { storage: trust.stateStorage } },
          },
        },
      ],
    },
  });
  return {
    name: '10-trust',
    objects: [
      serviceAccount(values, 'trust'),
      configMap(values, 'trust'),
      clusterService(values, 'trust', { port: SERVICE_PORT, targetPort: 'https' }),
      clusterService(values, 'trust', {
        port: SERVICE_PORT,
        targetPort: 'https',
        headless: true,
        name: 'tresor-trust-headless',
      }),
      json(statefulSet),
    ],
  };
}

export function redisChart(values: DeploymentValues, initData: ComponentInitData[]): ChartObjects {
  const { redis } = values;
  const data = componentInitData(values, 'redis', redis.tee, redis.image);
  initData.push({ component: 'redis', tee: redis.tee, image: redis.image, initData: data });
  const deployment = new Deployment({
    metadata: { name: 'tresor-redis', namespace: values.namespaces.data, labels: labels(values, 'redis') },
    spec: {
      replicas: 1,
      // Rate-limit windows and quota counters only (usage records live in PostgreSQL): kept in
      // guest memory, never on host storage.
      strategy: { type: 'Recreate' },
      selector: { matchLabels: selectorLabels('redis') },
      template: confidentialPodTemplate({
        values,
        component: 'redis',
        tee: redis.tee,
        runtimeClassName: cpuRuntimeClass(values, redis.tee),
        initData: data,
        uid: REDIS_UID,
        spread: false,
        volumes: [memoryVolume('data', '256Mi'), memoryVolume('tmp', '16Mi')],
        containers: [
          {
            name: 'redis',
            image: redis.image,
            imagePullPolicy: 'IfNotPresent',
            args: [
              'redis-server',
              '--port',
              String(REDIS_PORT),
              '--save',
              '',
              '--appendonly',
              'no',
              '--protected-mode',
              'no',
              '--dir',
              '/data',
            ],
            ports: [{ name: 'redis', containerPort: REDIS_PORT, protocol: 'TCP' }],
            resources: {
              requests: { cpu: redis.resources.cpu, memory: redis.resources.memory },
              limits: { memory: redis.resources.memory },
            },
            securityContext: containerSecurityContext(REDIS_UID),
            readinessProbe: { tcpSocket: { port: 'redis' }, periodSeconds: 5 },
            livenessProbe: { tcpSocket: { port: 'redis' }, periodSeconds: 10 },
            volumeMounts: [
              { name: 'data', mountPath: '/data' },
              { name: 'tmp', mountPath: '/tmp' },
            ],
          },
        ],
      }),
    },
  });
  return {
    name: '20-redis',
    objects: [
      serviceAccount(values, 'redis'),
      clusterService(values, 'redis', { port: REDIS_PORT, targetPort: 'redis' }),
      json(deployment),
    ],
  };
}

export function servingChart(values: DeploymentValues, initData: ComponentInitData[]): ChartObjects {
  const { serving } = values;
  const data = componentInitData(values, 'serving', serving.tee, serving.image);
  initData.push({ component: 'serving', tee: serving.tee, image: serving.image, initData: data });
  const gpus = String(serving.gpu.count);
  const container = serviceContainer({
    values,
    component: 'serving',
    image: serving.image,
    resources: serving.resources,
    env: [{ name: 'TRESOR_MODEL_DIR', value: '/models' }],
    extraMounts: [{ name: 'models', mountPath: '/models', readOnly: true }],
    // Extended resources: request and limit must be equal (the GPU is passed through whole).
    extraResources: { [serving.gpu.resourceName]: gpus },
  });
  const deployment = new Deployment({
    metadata: {
      name: 'tresor-serving',
      namespace: values.namespaces.serving,
      labels: labels(values, 'serving'),
    },
    spec: {
      replicas: serving.replicas,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
      selector: { matchLabels: selectorLabels('serving') },
      template: confidentialPodTemplate({
        values,
        component: 'serving',
        tee: serving.tee,
        runtimeClassName: gpuRuntimeClass(values, serving.tee),
        initData: data,
        containers: [container],
        // Sealed models (AES-256-GCM STREAM, digest in the header): the host-provided volume holds
        // ciphertext only; the model key comes from the trust service after attestation.
        volumes: [
          ...serviceVolumes('serving'),
          { name: 'models', persistentVolumeClaim: { claimName: serving.modelsClaimName, readOnly: true } },
        ],
        uid: TRESOR_UID,
        spread: true,
      }),
    },
  });
  return {
    name: '30-serving',
    objects: [
      serviceAccount(values, 'serving'),
      configMap(values, 'serving'),
      // Headless: the gateway resolves every serving replica and attests each one itself.
      clusterService(values, 'serving', { port: SERVICE_PORT, targetPort: 'https', headless: true }),
      json(deployment),
      json(
        new PodDisruptionBudget({
          metadata: {
            name: 'tresor-serving',
            namespace: values.namespaces.serving,
            labels: labels(values, 'serving'),
          },
          spec: { maxUnavailable: 1, selector: { matchLabels: selectorLabels('serving') } },
        }),
      ),
    ],
  };
}

export function gatewayChart(values: DeploymentValues, initData: ComponentInitData[]): ChartObjects {
  const { gateway } = values;
  const data = componentInitData(values, 'gateway', gateway.tee, gateway.image);
  initData.push({ component: 'gateway', tee: gateway.tee, image: gateway.image, initData: data });
  const container = serviceContainer({
    values,
    component: 'gateway',
    image: gateway.image,
    resources: gateway.resources,
    env: [
      { name: 'TRESOR_DATABASE_URL', value: values.postgres.url },
      { name: 'TRESOR_REDIS_URL', value: redisUrl(values) },
      {
        name: 'TRESOR_SERVING_SERVICE',
        value: `tresor-serving.${values.namespaces.serving}.svc.cluster.local:${SERVICE_PORT}`,
      },
    ],
  });
  const deployment = new Deployment({
    metadata: {
      name: 'tresor-gateway',
      namespace: values.namespaces.gateway,
      labels: labels(values, 'gateway'),
    },
    spec: {
      replicas: gateway.replicas,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      selector: { matchLabels: selectorLabels('gateway') },
      template: confidentialPodTemplate({
        values,
        component: 'gateway',
        tee: gateway.tee,
        runtimeClassName: cpuRuntimeClass(values, gateway.tee),
        initData: data,
        containers: [container],
        volumes: serviceVolumes('gateway'),
        uid: TRESOR_UID,
        spread: true,
      }),
    },
  });
  const meta = { namespace: values.namespaces.gateway, labels: labels(values, 'gateway') };
  return {
    name: '40-gateway',
    objects: [
      serviceAccount(values, 'gateway'),
      configMap(values, 'gateway'),
      // TLS terminates inside the gateway enclave: the Service (and an OpenShift Route) pass TCP through.
      clusterService(values, 'gateway', {
        port: 443,
        targetPort: 'https',
        type: values.openshift.enabled ? 'ClusterIP' : gateway.serviceType,
      }),
      json(deployment),
      json(
        new HorizontalPodAutoscaler({
          metadata: { name: 'tresor-gateway', ...meta },
          spec: {
            scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'tresor-gateway' },
            minReplicas: gateway.replicas,
            maxReplicas: gateway.autoscaling.maxReplicas,
            metrics: [
              {
                type: 'Resource',
                resource: {
                  name: 'cpu',
                  target: { type: 'Utilization', averageUtilization: gateway.autoscaling.cpuUtilization },
                },
              },
            ],
          },
        }),
      ),
      json(
        new PodDisruptionBudget({
          metadata: { name: 'tresor-gateway', ...meta },
          spec: { minAvailable: gateway.minAvailable, selector: { matchLabels: selectorLabels('gateway') } },
        }),
      ),
    ],
  };
}

// ── Network policies ──────────────────────────────────────────────────────────────────────────

const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

function podsOf(values: DeploymentValues, component: Component): IIoK8sApiNetworkingV1NetworkPolicyPeer {
  return {
    namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: namespaceOf(values, component) } },
    podSelector: { matchLabels: selectorLabels(component) },
  };
}

const tcp = (port: number | string) => ({ protocol: 'TCP' as const, port });

/** DNS to the cluster resolver only (kube-dns / CoreDNS in kube-system, or OpenShift's openshift-dns). */
function dnsEgress(values: DeploymentValues): IIoK8sApiNetworkingV1NetworkPolicyEgressRule {
  const resolverNamespace = values.openshift.enabled ? 'openshift-dns' : 'kube-system';
  return {
    to: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: resolverNamespace } } }],
    ports: [
      { protocol: 'UDP' as const, port: 53 },
      tcp(53),
      // OpenShift's DNS pods listen on 5353 behind the 53 Service port.
      ...(values.openshift.enabled ? [{ protocol: 'UDP' as const, port: 5353 }, tcp(5353)] : []),
    ],
  };
}

function postgresEgress(values: DeploymentValues): IIoK8sApiNetworkingV1NetworkPolicyEgressRule {
  const port = Number(new URL(values.postgres.url).port || 5432);
  return {
    to: [
      { namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: values.namespaces.data } } },
      ...values.postgres.cidrs.map((cidr) => ({ ipBlock: { cidr } })),
    ],
    ports: [tcp(port)],
  };
}

function trustEgress(values: DeploymentValues): IIoK8sApiNetworkingV1NetworkPolicyEgressRule {
  return { to: [podsOf(values, 'trust')], ports: [tcp(SERVICE_PORT)] };
}

function policy(
  values: DeploymentValues,
  component: Component,
  name: string,
  spec: {
    ingress: IIoK8sApiNetworkingV1NetworkPolicyIngressRule[];
    egress: IIoK8sApiNetworkingV1NetworkPolicyEgressRule[];
  },
): KubeObject {
  return json(
    new NetworkPolicy({
      metadata: { name, namespace: namespaceOf(values, component), labels: labels(values, component) },
      spec: {
        podSelector: { matchLabels: selectorLabels(component) },
        policyTypes: ['Ingress', 'Egress'],
        ingress: spec.ingress,
        egress: spec.egress,
      },
    }),
  );
}

/**
 * Default deny in every namespace, then only: clients → gateway, gateway → serving, workloads →
 * trust, gateway → Redis, gateway and trust → PostgreSQL, and DNS. Pod-to-pod traffic is TLS between
 * attested endpoints anyway; these policies keep everything else from even connecting.
 */
export function networkPoliciesChart(values: DeploymentValues): ChartObjects {
  const denyAll = Object.entries(values.namespaces).map(([, namespace]) =>
    json(
      new NetworkPolicy({
        metadata: {
          name: 'tresor-default-deny',
          namespace,
          labels: { 'app.kubernetes.io/part-of': 'tresor' },
        },
        spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
      }),
    ),
  );
  const dns = dnsEgress(values);
  const objects: KubeObject[] = [
    ...denyAll,
    policy(values, 'gateway', 'tresor-gateway', {
      // Clients connect from anywhere: the gateway is the public endpoint.
      ingress: [{ ports: [tcp(SERVICE_PORT)] }],
      egress: [
        dns,
        { to: [podsOf(values, 'serving')], ports: [tcp(SERVICE_PORT)] },
        trustEgress(values),
        ...(values.redis.deploy ? [{ to: [podsOf(values, 'redis')], ports: [tcp(REDIS_PORT)] }] : []),
        postgresEgress(values),
      ],
    }),
    policy(values, 'serving', 'tresor-serving', {
      ingress: [{ from: [podsOf(values, 'gateway')], ports: [tcp(SERVICE_PORT)] }],
      egress: [dns, trustEgress(values)],
    }),
    policy(values, 'trust', 'tresor-trust', {
      ingress: [
        {
          from: [
            podsOf(values, 'gateway'),
            podsOf(values, 'serving'),
            ...values.trust.adminCidrs.map((cidr) => ({ ipBlock: { cidr } })),
          ],
          ports: [tcp(SERVICE_PORT)],
        },
      ],
      egress: [dns, postgresEgress(values)],
    }),
  ];
  if (values.redis.deploy) {
    objects.push(
      policy(values, 'redis', 'tresor-redis', {
        ingress: [{ from: [podsOf(values, 'gateway')], ports: [tcp(REDIS_PORT)] }],
        egress: [],
      }),
    );
  }
  return { name: '50-network-policies', objects };
}

// ── OpenShift ─────────────────────────────────────────────────────────────────────────────────

export const SCC_NAME = 'tresor-confidential';

/**
 * OpenShift admits pods through SecurityContextConstraints, not Pod Security alone: one SCC that
 * allows exactly what Tresor pods do (non-root, read-only root, no capabilities, RuntimeDefault
 * seccomp, configMap/emptyDir/PVC volumes only — no secret, no hostPath), granted to Tresor's service
 * accounts; and a Route passing TLS through to the gateway enclave.
 */
export function openshiftChart(values: DeploymentValues): ChartObjects {
  const components: Component[] = [
    'trust',
    'gateway',
    'serving',
    ...(values.redis.deploy ? (['redis'] as const) : []),
  ];
  const scc: KubeObject = {
    apiVersion: 'security.openshift.io/v1',
    kind: 'SecurityContextConstraints',
    metadata: {
      name: SCC_NAME,
      labels: { 'app.kubernetes.io/part-of': 'tresor' },
      annotations: {
        'kubernetes.io/description': 'Tresor confidential workloads: non-root, no host access, no secrets.',
      },
    },
    priority: null,
    allowHostDirVolumePlugin: false,
    allowHostIPC: false,
    allowHostNetwork: false,
    allowHostPID: false,
    allowHostPorts: false,
    allowPrivilegeEscalation: false,
    allowPrivilegedContainer: false,
    allowedCapabilities: [],
    defaultAddCapabilities: [],
    requiredDropCapabilities: ['ALL'],
    readOnlyRootFilesystem: true,
    runAsUser: { type: 'MustRunAsNonRoot' },
    seLinuxContext: { type: 'MustRunAs' },
    fsGroup: {
      type: 'MustRunAs',
      ranges: [
        { min: REDIS_UID, max: REDIS_UID },
        { min: TRESOR_UID, max: TRESOR_UID },
      ],
    },
    supplementalGroups: { type: 'RunAsAny' },
    seccompProfiles: ['runtime/default'],
    volumes: ['configMap', 'emptyDir', 'persistentVolumeClaim'],
    users: [],
    groups: [],
  };
  const role = json(
    new ClusterRole({
      metadata: { name: `${SCC_NAME}-scc`, labels: { 'app.kubernetes.io/part-of': 'tresor' } },
      rules: [
        {
          apiGroups: ['security.openshift.io'],
          resources: ['securitycontextconstraints'],
          resourceNames: [SCC_NAME],
          verbs: ['use'],
        },
      ],
    }),
  );
  const bindings = components.map((component) =>
    json(
      new RoleBinding({
        metadata: {
          name: `tresor-${component}-scc`,
          namespace: namespaceOf(values, component),
          labels: labels(values, component),
        },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${SCC_NAME}-scc` },
        subjects: [
          { kind: 'ServiceAccount', name: `tresor-${component}`, namespace: namespaceOf(values, component) },
        ],
      }),
    ),
  );
  const route: KubeObject = {
    apiVersion: 'route.openshift.io/v1',
    kind: 'Route',
    metadata: {
      name: 'tresor-gateway',
      namespace: values.namespaces.gateway,
      labels: labels(values, 'gateway'),
    },
    spec: {
      ...(values.openshift.gatewayHost === undefined ? {} : { host: values.openshift.gatewayHost }),
      to: { kind: 'Service', name: 'tresor-gateway', weight: 100 },
      port: { targetPort: 'https' },
      // passthrough: the router forwards the TLS stream by SNI; only the gateway enclave holds the key.
      tls: { termination: 'passthrough', insecureEdgeTerminationPolicy: 'None' },
      wildcardPolicy: 'None',
    },
  };
  return { name: '60-openshift', objects: [scc, role, ...bindings, route] };
}
