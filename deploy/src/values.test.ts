import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError, TresorError } from '@tresor/protocol';
import {
  DEFAULT_SWISS_REGIONS,
  loadDeploymentValues,
  parseDeploymentValues,
  placeholderImages,
  PLACEHOLDER_DIGEST,
  redisUrl,
  trustUrl,
} from './values.js';

const DIGEST = `sha256:${'ab'.repeat(32)}`;

function configError(run: () => unknown): TresorError {
  try {
    run();
  } catch (err) {
    if (isTresorError(err)) return err;
    throw err;
  }
  throw new Error('expected a TresorError');
}

describe('deployment values', () => {
  it('fills every default when no values are given', () => {
    const values = parseDeploymentValues(undefined);
    expect(values.namespaces).toEqual({
      trust: 'tresor-trust',
      gateway: 'tresor-gateway',
      serving: 'tresor-serving',
      data: 'tresor-data',
    });
    expect(values.gateway.replicas).toBe(3);
    expect(values.serving.gpu).toEqual({ count: 1, resourceName: 'nvidia.com/gpu' });
    expect(values.regions).toEqual([...DEFAULT_SWISS_REGIONS]);
    expect(values.runtimeClasses.gpuTdx).toBe('kata-qemu-nvidia-gpu-tdx');
    expect(values.trust.image.endsWith(PLACEHOLDER_DIGEST)).toBe(true);
    expect(trustUrl(values)).toBe('https://tresor-trust.tresor-trust.svc.cluster.local:8443');
    expect(redisUrl(values)).toBe('redis://tresor-redis.tresor-data.svc.cluster.local:6379');
    expect(placeholderImages(values)).toEqual([
      'trust.image',
      'gateway.image',
      'serving.image',
      'redis.image',
    ]);
    expect(Object.isFrozen(values.gateway.autoscaling)).toBe(true);
  });

  it('reads YAML and JSON files alike and keeps the defaults beside what they set', () => {
    const yaml = loadDeploymentValues(
      `release: 1.4.0\ngateway:\n  image: ghcr.io/acme/gw:1.4.0@${DIGEST}\n  tee: tdx\nserving:\n  tenant: acme\n`,
      'values.yaml',
    );
    const json = loadDeploymentValues(
      JSON.stringify({
        release: '1.4.0',
        gateway: { image: `ghcr.io/acme/gw:1.4.0@${DIGEST}`, tee: 'tdx' },
        serving: { tenant: 'acme' },
      }),
      'values.json',
    );
    expect(yaml).toEqual(json);
    expect(yaml.gateway.tee).toBe('tdx');
    expect(yaml.gateway.replicas).toBe(3);
    expect(placeholderImages(yaml)).toEqual(['trust.image', 'serving.image', 'redis.image']);
  });

  it('accepts an empty file as the defaults', () => {
    expect(loadDeploymentValues('', 'empty.yaml')).toEqual(parseDeploymentValues({}));
  });

  const invalid: [string, unknown, string][] = [
    ['a tag without digest', { gateway: { image: 'ghcr.io/acme/gw:1.4.0' } }, 'gateway.image'],
    ['the latest tag', { trust: { image: `ghcr.io/acme/trust:latest@${DIGEST}` } }, 'trust.image'],
    ['a short digest', { serving: { image: 'ghcr.io/acme/s@sha256:abcd' } }, 'serving.image'],
    ['an unknown TEE', { serving: { tee: 'sev' } }, 'serving.tee'],
    ['zero replicas', { serving: { replicas: 0 } }, 'serving.replicas'],
    ['a fractional replica count', { trust: { replicas: 1.5 } }, 'trust.replicas'],
    ['an unknown key', { gateway: { replica: 3 } }, 'gateway'],
    ['an unknown top-level key', { sercets: {} }, '(top level)'],
    [
      'a password in the PostgreSQL URL',
      { postgres: { url: 'postgresql://u:pw@db:5432/t' } },
      'postgres.url',
    ],
    ['a password query parameter', { postgres: { url: 'postgresql://u@db/t?password=x' } }, 'postgres.url'],
    ['a password in the Redis URL', { redis: { url: 'redis://:pw@redis:6379' } }, 'redis.url'],
    ['a plain-HTTP trust URL', { trust: { url: 'http://trust:8080' } }, 'trust.url'],
    ['a non-PostgreSQL URL', { postgres: { url: 'mysql://db/t' } }, 'postgres.url'],
    ['an uppercase namespace', { namespaces: { trust: 'Tresor' } }, 'namespaces.trust'],
    ['two components in one namespace', { namespaces: { trust: 'x', gateway: 'x' } }, 'namespaces'],
    ['no regions', { regions: [] }, 'regions'],
    ['a region that is no label value', { regions: ['zürich'] }, 'regions.0'],
    ['a non-confidential runtime class', { runtimeClasses: { snp: 'kata-qemu' } }, 'runtimeClasses.snp'],
    ['runc', { runtimeClasses: { gpuSnp: 'runc' } }, 'runtimeClasses.gpuSnp'],
    [
      'a GPU resource outside nvidia.com',
      { serving: { gpu: { resourceName: 'amd.com/gpu' } } },
      'serving.gpu.resourceName',
    ],
    [
      'a secret in a service config',
      { gateway: { config: { db: { password: 'x' } } } },
      'gateway.config.db.password',
    ],
    [
      'a private key in a service config',
      { trust: { config: { tls: { privateKeyPem: 'x' } } } },
      'trust.config.tls.privateKeyPem',
    ],
    [
      'maxReplicas below replicas',
      { gateway: { replicas: 5, autoscaling: { maxReplicas: 4 } } },
      'gateway.autoscaling.maxReplicas',
    ],
    ['a PDB that blocks every drain', { gateway: { replicas: 2, minAvailable: 2 } }, 'gateway.minAvailable'],
    ['no Redis at all', { redis: { deploy: false } }, 'redis.url'],
    [
      'an agent policy with a TOML delimiter',
      { coco: { agentPolicy: "package x\n'''" } },
      'coco.agentPolicy',
    ],
    ['a KBS certificate that is not PEM', { trust: { kbsCertificate: 'hello' } }, 'trust.kbsCertificate'],
    ['a bad CIDR', { trust: { adminCidrs: ['10.0.0.0/33'] } }, 'trust.adminCidrs.0'],
    ['a bad memory quantity', { serving: { resources: { memory: '64GB' } } }, 'serving.resources.memory'],
  ];
  it.each(invalid)('refuses %s with CONFIG_INVALID naming the path', (_what, input, path) => {
    const err = configError(() => parseDeploymentValues(input, 'v.yaml'));
    expect(err.code).toBe('CONFIG_INVALID');
    expect(err.exit).toBe(2);
    expect(err.message).toContain(`v.yaml: ${path}:`);
  });

  it('refuses text that is not YAML, duplicate keys and a top level that is not a mapping', () => {
    expect(configError(() => loadDeploymentValues('a: [1, 2', 'x.yaml')).code).toBe('CONFIG_INVALID');
    expect(configError(() => loadDeploymentValues('release: a\nrelease: b\n', 'x.yaml')).message).toContain(
      'x.yaml: not YAML',
    );
    expect(configError(() => loadDeploymentValues('- 1\n- 2\n', 'x.yaml')).message).toContain('a mapping');
    expect(configError(() => loadDeploymentValues('"text"', 'x.yaml')).code).toBe('CONFIG_INVALID');
  });

  it('refuses alias bombs instead of expanding them', () => {
    const lines = ['l0: &l0 [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i <= 8; i++) {
      lines.push(`l${i}: &l${i} [${Array.from({ length: 10 }, () => `*l${i - 1}`).join(', ')}]`);
    }
    expect(configError(() => loadDeploymentValues(lines.join('\n'), 'bomb.yaml')).code).toBe(
      'CONFIG_INVALID',
    );
  });

  it('answers arbitrary input with values or CONFIG_INVALID, never another error', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.jsonValue().map((v) => JSON.stringify(v)),
        ),
        (text) => {
          try {
            loadDeploymentValues(text, 'fuzz');
          } catch (err) {
            expect(isTresorError(err) && err.code).toBe('CONFIG_INVALID');
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
