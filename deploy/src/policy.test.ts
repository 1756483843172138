import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import type { KubeObject } from './kube-objects.js';
import { assertDeploymentPolicy, checkDeploymentPolicy, type DeploymentPolicyRule } from './policy.js';
import { renderDeployment } from './render.js';
import { INIT_DATA_ANNOTATION } from './runtime-classes.js';
import { parseDeploymentValues } from './values.js';

const rendered = [
  renderDeployment(parseDeploymentValues({})),
  renderDeployment(parseDeploymentValues({ openshift: { enabled: true }, gateway: { tee: 'tdx' } })),
].flatMap((r) => r.files.flatMap((f) => f.objects));

interface Container {
  name: string;
  image?: string;
  env: unknown[];
  envFrom?: unknown[];
  securityContext: Record<string, unknown>;
}
interface PodTemplate {
  metadata: { annotations: Record<string, string> };
  spec: {
    runtimeClassName?: string;
    automountServiceAccountToken?: boolean;
    hostNetwork?: boolean;
    hostPID?: boolean;
    securityContext: Record<string, unknown>;
    containers: Container[];
    initContainers?: Partial<Container>[];
    volumes: unknown[];
  };
}
type Workload = KubeObject & { spec: { template: PodTemplate } };

function gateway(): Workload {
  const deployment = rendered.find((o) => o.kind === 'Deployment' && o.metadata?.name === 'tresor-gateway');
  return structuredClone(deployment) as Workload;
}

/** A copy of the rendered gateway Deployment with `change` applied to its pod template. */
function gatewayWith(change: (pod: PodTemplate) => void): Workload {
  const deployment = gateway();
  change(deployment.spec.template);
  return deployment;
}

const main = (pod: PodTemplate): Container => pod.spec.containers[0]!;

function rulesOf(objects: KubeObject[]): DeploymentPolicyRule[] {
  return checkDeploymentPolicy(objects).map((v) => v.rule);
}

describe('deployment policy', () => {
  it('passes everything the charts render', () => {
    expect(checkDeploymentPolicy(rendered)).toEqual([]);
    expect(() => {
      assertDeploymentPolicy(rendered);
    }).not.toThrow();
  });

  const negatives: [string, (pod: PodTemplate) => void, DeploymentPolicyRule][] = [
    [
      'no runtime class',
      (p) => {
        delete p.spec.runtimeClassName;
      },
      'runtime-class',
    ],
    [
      'the non-confidential kata class',
      (p) => {
        p.spec.runtimeClassName = 'kata-qemu';
      },
      'runtime-class',
    ],
    [
      'runc',
      (p) => {
        p.spec.runtimeClassName = 'runc';
      },
      'runtime-class',
    ],
    [
      'no init-data annotation',
      (p) => {
        p.metadata.annotations = Object.fromEntries(
          Object.entries(p.metadata.annotations).filter(([key]) => key !== INIT_DATA_ANNOTATION),
        );
      },
      'init-data',
    ],
    [
      'runAsUser 0',
      (p) => {
        main(p).securityContext.runAsUser = 0;
      },
      'root',
    ],
    [
      'runAsNonRoot left unset on pod and container',
      (p) => {
        delete p.spec.securityContext.runAsNonRoot;
        delete main(p).securityContext.runAsNonRoot;
      },
      'root',
    ],
    [
      'runAsNonRoot false on the container',
      (p) => {
        main(p).securityContext.runAsNonRoot = false;
      },
      'root',
    ],
    [
      'a privileged container',
      (p) => {
        main(p).securityContext.privileged = true;
      },
      'root',
    ],
    [
      'privilege escalation',
      (p) => {
        delete main(p).securityContext.allowPrivilegeEscalation;
      },
      'root',
    ],
    [
      'a root init container',
      (p) => {
        p.spec.initContainers = [{ name: 'init', image: 'x@sha256:00', securityContext: { runAsUser: 0 } }];
      },
      'root',
    ],
    [
      'a Secret volume',
      (p) => {
        p.spec.volumes.push({ name: 'k', secret: { secretName: 'keys' } });
      },
      'secret',
    ],
    [
      'a projected Secret',
      (p) => {
        p.spec.volumes.push({ name: 'k', projected: { sources: [{ secret: { name: 'keys' } }] } });
      },
      'secret',
    ],
    [
      'a projected service-account token',
      (p) => {
        p.spec.volumes.push({
          name: 't',
          projected: { sources: [{ serviceAccountToken: { path: 'token' } }] },
        });
      },
      'secret',
    ],
    [
      'an env var from a Secret',
      (p) => {
        main(p).env.push({ name: 'K', valueFrom: { secretKeyRef: { name: 'keys', key: 'k' } } });
      },
      'secret',
    ],
    [
      'envFrom a Secret',
      (p) => {
        main(p).envFrom = [{ secretRef: { name: 'keys' } }];
      },
      'secret',
    ],
    [
      'the service-account token mounted',
      (p) => {
        delete p.spec.automountServiceAccountToken;
      },
      'secret',
    ],
    [
      'a hostPath volume',
      (p) => {
        p.spec.volumes.push({ name: 'h', hostPath: { path: '/var/run' } });
      },
      'host-path',
    ],
    [
      'the host network',
      (p) => {
        p.spec.hostNetwork = true;
      },
      'host-namespace',
    ],
    [
      'the host PID namespace',
      (p) => {
        p.spec.hostPID = true;
      },
      'host-namespace',
    ],
  ];
  it.each(negatives)('refuses a pod with %s', (_what, change, rule) => {
    const objects = [
      ...rendered.filter((o) => o.metadata?.name !== 'tresor-gateway' || o.kind !== 'Deployment'),
      gatewayWith(change),
    ];
    expect(rulesOf(objects)).toContain(rule);
    expect(
      checkDeploymentPolicy(objects).every((v) => v.object.startsWith('Deployment tresor-gateway/')),
    ).toBe(true);
  });

  it('refuses a Kubernetes Secret object outright', () => {
    const secret: KubeObject = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'model-key', namespace: 'x' },
    };
    expect(checkDeploymentPolicy([secret])).toEqual([
      expect.objectContaining({ rule: 'secret', object: 'Secret x/model-key' }),
    ]);
  });

  it('checks bare Pods, Jobs and CronJobs too', () => {
    const template = gatewayWith((p) => {
      p.spec.runtimeClassName = 'runc';
    });
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: template.spec.template.spec };
    const job = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name: 'j' },
      spec: { template: template.spec.template },
    };
    const cron = {
      apiVersion: 'batch/v1',
      kind: 'CronJob',
      metadata: { name: 'c' },
      spec: { jobTemplate: { spec: { template: template.spec.template } } },
    };
    for (const object of [pod, job, cron]) expect(rulesOf([object as KubeObject])).toContain('runtime-class');
  });

  it('fails closed on kinds it cannot inspect', () => {
    expect(
      rulesOf([{ apiVersion: 'example.com/v1', kind: 'InferencePool', metadata: { name: 'x' } }]),
    ).toEqual(['unchecked-kind']);
  });

  it('throws DEPLOYMENT_POLICY_VIOLATION (exit 1) naming the object, the container and the rule', () => {
    const bad = gatewayWith((p) => {
      main(p).securityContext.runAsUser = 0;
    });
    try {
      assertDeploymentPolicy([bad]);
      expect.fail('expected a refusal');
    } catch (err) {
      expect(isTresorError(err) && err.code).toBe('DEPLOYMENT_POLICY_VIOLATION');
      expect(isTresorError(err) && err.exit).toBe(1);
      expect((err as Error).message).toContain(
        'Deployment tresor-gateway/tresor-gateway container gateway: [root] runAsUser is 0 (root)',
      );
    }
  });
});
