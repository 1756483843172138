import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { parse as parseYamlAll, parseAllDocuments } from 'yaml';
import { isTresorError } from '@tresor/protocol';
import { parseInitDataToml, parseReferenceValueSet } from '@tresor/trust';
import { initDataDigest } from './init-data.js';
import { validateKubeObject, type KubeObject } from './kube-objects.js';
import { referenceValuesJson, renderDeployment, type RenderedDeployment } from './render.js';
import { CONFIDENTIAL_RUNTIME_CLASSES, INIT_DATA_ANNOTATION } from './runtime-classes.js';
import { parseDeploymentValues } from './values.js';

const DIGEST = (byte: string) => `sha256:${byte.repeat(32)}`;
const defaults = renderDeployment(parseDeploymentValues({}));
const production = renderDeployment(
  parseDeploymentValues({
    release: '1.4.0',
    trust: {
      image: `ghcr.io/acme/trust:1.4.0@${DIGEST('11')}`,
      measurements: { measurement: ['aa'.repeat(48)] },
    },
    gateway: {
      image: `ghcr.io/acme/gateway:1.4.0@${DIGEST('22')}`,
      tee: 'tdx',
      measurements: { mrtd: ['bb'.repeat(48)] },
    },
    serving: {
      image: `ghcr.io/acme/serving:1.4.0@${DIGEST('33')}`,
      tenant: 'acme',
      measurements: { measurement: ['cc'.repeat(48)] },
    },
    redis: { image: `docker.io/library/redis:7.4@${DIGEST('44')}` },
    openshift: { enabled: true, gatewayHost: 'api.tresor.example.ch' },
    runtimeClasses: {
      snp: 'kata-cc',
      tdx: 'kata-cc',
      gpuSnp: 'kata-cc-nvidia-gpu',
      gpuTdx: 'kata-cc-nvidia-gpu',
    },
  }),
);

function all(rendered: RenderedDeployment): KubeObject[] {
  return rendered.files.flatMap((f) => f.objects);
}

function find(rendered: RenderedDeployment, kind: string, name: string): KubeObject {
  const object = all(rendered).find((o) => o.kind === kind && o.metadata?.name === name);
  if (object === undefined) throw new Error(`${kind} ${name} not rendered`);
  return object;
}

type Pod = {
  metadata: { annotations: Record<string, string> };
  spec: {
    runtimeClassName: string;
    affinity: {
      nodeAffinity: {
        requiredDuringSchedulingIgnoredDuringExecution: {
          nodeSelectorTerms: { matchExpressions: { key: string; values: string[] }[] }[];
        };
      };
    };
    containers: { resources: { requests: Record<string, string>; limits: Record<string, string> } }[];
  };
};
const podOf = (o: KubeObject) => (o.spec as { template: Pod }).template;

describe('rendered manifests', () => {
  it('writes one file per chart, the OpenShift one only when enabled', () => {
    expect(defaults.files.map((f) => f.name)).toEqual([
      '00-namespaces.yaml',
      '10-trust.yaml',
      '20-redis.yaml',
      '30-serving.yaml',
      '40-gateway.yaml',
      '50-network-policies.yaml',
    ]);
    expect(production.files.map((f) => f.name).at(-1)).toBe('60-openshift.yaml');
  });

  it('validates every object against the Kubernetes or OpenShift schema, from the YAML as written', () => {
    for (const rendered of [defaults, production]) {
      for (const file of rendered.files) {
        const documents = parseAllDocuments(file.yaml).map((d) => d.toJS() as KubeObject);
        expect(documents).toEqual(file.objects);
        for (const object of documents)
          expect(() => {
            validateKubeObject(object);
          }).not.toThrow();
      }
    }
  });

  it('catches schema violations and unknown kinds in the validator', () => {
    const deployment = find(defaults, 'Deployment', 'tresor-gateway');
    const broken = structuredClone(deployment) as { spec: { replicas: unknown } } & KubeObject;
    broken.spec.replicas = 'three';
    expect(() => {
      validateKubeObject(broken);
    }).toThrow(/does not validate/);
    expect(() => {
      validateKubeObject({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' } });
    }).toThrow(/no schema/);
    const route = structuredClone(find(production, 'Route', 'tresor-gateway')) as KubeObject & {
      spec: Record<string, unknown>;
    };
    route.spec.tls = { termination: 'none' };
    expect(() => {
      validateKubeObject(route);
    }).toThrow(/does not validate/);
  });

  it('matches the snapshots (default values)', async () => {
    for (const file of defaults.files) {
      await expect(file.yaml).toMatchFileSnapshot(`./__snapshots__/default/${file.name}`);
    }
    await expect(referenceValuesJson(defaults.referenceValues)).toMatchFileSnapshot(
      './__snapshots__/default/reference-values.json',
    );
  });

  it('matches the snapshots (OpenShift, TDX gateway, pinned images)', async () => {
    for (const file of production.files) {
      await expect(file.yaml).toMatchFileSnapshot(`./__snapshots__/openshift/${file.name}`);
    }
    await expect(referenceValuesJson(production.referenceValues)).toMatchFileSnapshot(
      './__snapshots__/openshift/reference-values.json',
    );
  });

  it('puts each component in its TEE: runtime class per TEE, GPU variant for serving', () => {
    expect(podOf(find(defaults, 'StatefulSet', 'tresor-trust')).spec.runtimeClassName).toBe('kata-qemu-snp');
    expect(podOf(find(defaults, 'Deployment', 'tresor-serving')).spec.runtimeClassName).toBe(
      'kata-qemu-nvidia-gpu-snp',
    );
    const tdx = renderDeployment(parseDeploymentValues({ gateway: { tee: 'tdx' }, serving: { tee: 'tdx' } }));
    expect(podOf(find(tdx, 'Deployment', 'tresor-gateway')).spec.runtimeClassName).toBe('kata-qemu-tdx');
    expect(podOf(find(tdx, 'Deployment', 'tresor-serving')).spec.runtimeClassName).toBe(
      'kata-qemu-nvidia-gpu-tdx',
    );
    for (const rendered of [defaults, production, tdx]) {
      for (const object of all(rendered).filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')) {
        expect(CONFIDENTIAL_RUNTIME_CLASSES).toContain(podOf(object).spec.runtimeClassName);
      }
    }
  });

  it('requests the GPU and pins every pod to Swiss regions', () => {
    const serving = podOf(find(defaults, 'Deployment', 'tresor-serving'));
    expect(serving.spec.containers[0]?.resources.limits['nvidia.com/gpu']).toBe('1');
    expect(serving.spec.containers[0]?.resources.requests['nvidia.com/gpu']).toBe('1');
    const regions = renderDeployment(parseDeploymentValues({ regions: ['ch-zrh'] }));
    for (const object of all(regions).filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')) {
      const term =
        podOf(object).spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution
          .nodeSelectorTerms[0]?.matchExpressions[0];
      expect(term).toEqual({ key: 'topology.kubernetes.io/region', operator: 'In', values: ['ch-zrh'] });
    }
  });

  it('renders no Secret and no secret material anywhere', () => {
    for (const rendered of [defaults, production]) {
      expect(all(rendered).map((o) => o.kind)).not.toContain('Secret');
      const text = rendered.files.map((f) => f.yaml).join('\n');
      expect(text).not.toMatch(/secretKeyRef|secretRef|BEGIN [A-Z ]*PRIVATE KEY|password/i);
    }
  });

  it('gives the gateway an HPA and a PDB, and passes TLS through on OpenShift', () => {
    const hpa = find(defaults, 'HorizontalPodAutoscaler', 'tresor-gateway') as KubeObject & {
      spec: { minReplicas: number; maxReplicas: number };
    };
    expect([hpa.spec.minReplicas, hpa.spec.maxReplicas]).toEqual([3, 12]);
    expect(
      (find(defaults, 'PodDisruptionBudget', 'tresor-gateway').spec as { minAvailable: number }).minAvailable,
    ).toBe(2);
    const route = find(production, 'Route', 'tresor-gateway').spec as {
      tls: { termination: string };
      host: string;
    };
    expect(route.tls.termination).toBe('passthrough');
    expect(route.host).toBe('api.tresor.example.ch');
    const scc = find(production, 'SecurityContextConstraints', 'tresor-confidential') as KubeObject & {
      volumes: string[];
      allowHostDirVolumePlugin: boolean;
    };
    expect(scc.volumes).not.toContain('secret');
    expect(scc.volumes).not.toContain('hostPath');
    expect(scc.allowHostDirVolumePlugin).toBe(false);
  });

  it('allows only client→gateway, gateway→serving, workloads→trust, gateway→Redis, DNS and PostgreSQL', () => {
    const policies = all(defaults).filter((o) => o.kind === 'NetworkPolicy');
    const denyAll = policies.filter((p) => p.metadata?.name === 'tresor-default-deny');
    expect(denyAll.map((p) => p.metadata?.namespace).sort()).toEqual([
      'tresor-data',
      'tresor-gateway',
      'tresor-serving',
      'tresor-trust',
    ]);
    const ingressFrom = (name: string) =>
      (
        find(defaults, 'NetworkPolicy', name).spec as {
          ingress: { from?: { podSelector?: { matchLabels: Record<string, string> } }[] }[];
        }
      ).ingress.flatMap((rule) =>
        (rule.from ?? [{ podSelector: { matchLabels: { any: 'client' } } }]).map(
          (peer) =>
            peer.podSelector?.matchLabels['app.kubernetes.io/name'] ?? peer.podSelector?.matchLabels.any,
        ),
      );
    expect(ingressFrom('tresor-gateway')).toEqual(['client']);
    expect(ingressFrom('tresor-serving')).toEqual(['tresor-gateway']);
    expect(ingressFrom('tresor-trust')).toEqual(['tresor-gateway', 'tresor-serving']);
    expect(ingressFrom('tresor-redis')).toEqual(['tresor-gateway']);
  });

  it('registers each pod’s init-data digest as its reference value, in the trust service’s shape', () => {
    for (const rendered of [defaults, production]) {
      expect(rendered.referenceValues.referenceValues.map((s) => s.component)).toEqual([
        'trust',
        'serving',
        'gateway',
      ]);
      for (const set of rendered.referenceValues.referenceValues) {
        expect(parseReferenceValueSet(set)).toEqual(set);
        const pod = podOf(
          find(rendered, set.component === 'trust' ? 'StatefulSet' : 'Deployment', `tresor-${set.component}`),
        );
        const toml = gunzipSync(
          Buffer.from(pod.metadata.annotations[INIT_DATA_ANNOTATION]!, 'base64'),
        ).toString('utf8');
        const document = parseInitDataToml(toml);
        expect(document.algorithm).toBe(set.tee === 'snp' ? 'sha256' : 'sha384');
        const digest = initDataDigest(toml, document.algorithm as 'sha256' | 'sha384');
        expect(set.initDataHashes).toEqual([digest]);
        expect(set.measurements[set.tee === 'snp' ? 'host_data' : 'mrconfigid']).toEqual([digest]);
        expect(set.imageDigests).toEqual([document.data['tresor-image']]);
        expect(document.data['tresor-component']).toBe(set.component);
      }
    }
  });

  it('warns about placeholder digests and missing launch measurements, and not once they are set', () => {
    expect(defaults.warnings).toHaveLength(7);
    expect(defaults.warnings[0]).toMatch(/^trust\.image is a placeholder digest/);
    expect(production.warnings).toEqual([]);
  });

  it('renders the same bytes for the same values', () => {
    const again = renderDeployment(parseDeploymentValues({}));
    expect(again.files.map((f) => f.yaml)).toEqual(defaults.files.map((f) => f.yaml));
    expect(parseYamlAll(defaults.files[0]!.yaml.split('---')[0]!)).toMatchObject({ kind: 'Namespace' });
  });

  it('leaves Redis out when an external one is configured', () => {
    const external = renderDeployment(
      parseDeploymentValues({ redis: { deploy: false, url: 'rediss://redis.example:6380' } }),
    );
    expect(external.files.map((f) => f.name)).not.toContain('20-redis.yaml');
    const gateway = podOf(find(external, 'Deployment', 'tresor-gateway')) as unknown as {
      spec: { containers: { env: { name: string; value: string }[] }[] };
    };
    expect(gateway.spec.containers[0]?.env).toContainEqual({
      name: 'TRESOR_REDIS_URL',
      value: 'rediss://redis.example:6380',
    });
    expect(() => renderDeployment(parseDeploymentValues({}))).not.toThrow();
    expect(isTresorError(new Error('x'))).toBe(false);
  });
});
