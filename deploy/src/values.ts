import { z } from 'zod';
import { parse as parseYaml } from 'yaml';
import { TresorError } from '@tresor/protocol';
import { CONFIDENTIAL_RUNTIME_CLASSES, DEFAULT_RUNTIME_CLASSES, TEE_KINDS } from './runtime-classes.js';

/**
 * The deployment values: everything `tresor deploy render` lets an operator choose. Validated once,
 * here, into a typed and frozen value; the charts never see unchecked input. Nothing in here is a
 * secret: URLs carry no password (refused), and images are pinned by digest.
 */

/** Stands for "not built yet": the all-zero digest cannot be pulled, so it fails closed. */
export const PLACEHOLDER_DIGEST = `sha256:${'0'.repeat(64)}`;
const placeholderImage = (repository: string) => `${repository}@${PLACEHOLDER_DIGEST}`;

/**
 * Region label values of Swiss cloud regions: Azure Switzerland North (Zurich) and West (Geneva),
 * Google Cloud europe-west6 (Zurich), AWS eu-central-2 (Zurich), Oracle eu-zurich-1. On bare metal,
 * label the nodes yourself and list your values.
 */
export const DEFAULT_SWISS_REGIONS = [
  'switzerlandnorth',
  'switzerlandwest',
  'europe-west6',
  'eu-central-2',
  'eu-zurich-1',
] as const;

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_VALUE = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const RELEASE = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;
const TENANT = /^[a-z0-9][a-z0-9-]{0,62}$/;
const HOSTNAME =
  /^(?=.{1,253}$)[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?)*$/;
const MEASUREMENT_NAME = /^[a-z][a-z0-9_.]{0,63}$/;
const HEX = /^(?:[0-9a-f]{2}){1,128}$/;
const CPU_QUANTITY = /^(?:[1-9][0-9]{0,4}m|[0-9]{1,3}(?:\.[0-9]{1,3})?)$/;
const MEMORY_QUANTITY = /^[1-9][0-9]{0,5}(?:Ki|Mi|Gi|Ti)$/;
const CIDR =
  /^(?:(?:25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})\.){3}(?:25[0-5]|2[0-4][0-9]|1?[0-9]{1,2})\/(?:3[0-2]|[12]?[0-9])$/;
/**
 * An OCI reference pinned by digest: `[registry[:port]/]repository[:tag]@sha256:<64 hex>`. A tag
 * alone can be moved to other bytes by whoever controls the registry; the digest cannot.
 */
const IMAGE_REF =
  /^(?:[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::[0-9]{1,5})?\/)?[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?@sha256:[0-9a-f]{64}$/;
const PEM_CERTIFICATE =
  /^-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\r?\n?$/;
/** Keys that would put secret material into a ConfigMap (matched case-insensitively, anywhere in a name). */
const SECRET_KEY_NAMES = /(password|passwd|secret|private|token|apikey|api_key|credential|passphrase)/i;

export const imageRef = z
  .string()
  .regex(IMAGE_REF, 'an image reference pinned by digest: <repository>[:tag]@sha256:<64 hex digits>')
  .refine(
    (ref) => !ref.includes(':latest@'),
    'the tag "latest" is not allowed; pin a release tag and digest',
  );

function urlWithoutSecrets(protocols: readonly string[], what: string) {
  return z
    .string()
    .max(2048)
    .superRefine((text, ctx) => {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        ctx.addIssue({ code: 'custom', message: `a ${what} URL` });
        return;
      }
      if (!protocols.includes(url.protocol)) {
        ctx.addIssue({ code: 'custom', message: `a ${what} URL starting with ${protocols.join(' or ')}//` });
      }
      if (url.password !== '' || url.searchParams.has('password')) {
        ctx.addIssue({
          code: 'custom',
          message: `a URL without a password: credentials never go into manifests (docs/deploy.md "Credentials")`,
        });
      }
    });
}

/** Arbitrary JSON configuration handed to a service through a ConfigMap; refused if it names a secret. */
const serviceConfig = z.record(z.string(), z.json()).superRefine((config, ctx) => {
  const visit = (value: unknown, path: (string | number)[]): void => {
    if (Array.isArray(value)) {
      value.forEach((item, i) => {
        visit(item, [...path, i]);
      });
    } else if (value !== null && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        if (SECRET_KEY_NAMES.test(key)) {
          ctx.addIssue({
            code: 'custom',
            path: [...path, key],
            message:
              'secret material may not go into a ConfigMap; services receive secrets from the trust service after attestation',
          });
        }
        visit(inner, [...path, key]);
      }
    }
  };
  visit(config, []);
});

const teeKind = z.enum(TEE_KINDS as [string, ...string[]]).transform((t) => t as 'snp' | 'tdx');

const resources = (cpu: string, memory: string) =>
  z
    .strictObject({
      cpu: z.string().regex(CPU_QUANTITY, 'a CPU quantity such as "500m" or "2"').default(cpu),
      memory: z.string().regex(MEMORY_QUANTITY, 'a memory quantity such as "512Mi" or "4Gi"').default(memory),
    })
    .prefault({});

/** Launch measurements of a component's guest (e.g. SNP `measurement`, TDX `mrtd`, `rtmr0`…) for its reference values. */
const measurements = z
  .record(
    z.string().regex(MEASUREMENT_NAME, 'a measurement name such as "measurement" or "mrtd"'),
    z.array(z.string().regex(HEX, 'lowercase hex digits')).min(1).max(64),
  )
  .default({});

function component(defaults: {
  readonly image: string;
  readonly replicas: number;
  readonly cpu: string;
  readonly memory: string;
}) {
  return {
    image: imageRef.default(defaults.image),
    tee: teeKind.default('snp'),
    replicas: z.int().min(1).max(64).default(defaults.replicas),
    resources: resources(defaults.cpu, defaults.memory),
    config: serviceConfig.default({}),
    measurements,
  };
}

export const deploymentValuesSchema = z.strictObject({
  /** Release label written into init data and the reference values (`tresor-release`). */
  release: z.string().regex(RELEASE, 'a release label such as "1.4.0"').default('0.1.0'),
  namespaces: z
    .strictObject({
      trust: z.string().regex(DNS_LABEL, 'a namespace name (DNS label)').default('tresor-trust'),
      gateway: z.string().regex(DNS_LABEL, 'a namespace name (DNS label)').default('tresor-gateway'),
      serving: z.string().regex(DNS_LABEL, 'a namespace name (DNS label)').default('tresor-serving'),
      data: z.string().regex(DNS_LABEL, 'a namespace name (DNS label)').default('tresor-data'),
    })
    .prefault({})
    .refine(
      (ns) => new Set(Object.values(ns)).size === 4,
      'trust, gateway, serving and data need four different namespaces (the network policies rely on it)',
    ),
  /** Node affinity on topology.kubernetes.io/region: defence in depth beside the attested inventory. */
  regions: z
    .array(z.string().regex(LABEL_VALUE, 'a label value'))
    .min(1)
    .max(32)
    .default([...DEFAULT_SWISS_REGIONS]),
  runtimeClasses: z
    .strictObject({
      snp: z.enum(CONFIDENTIAL_RUNTIME_CLASSES).default(DEFAULT_RUNTIME_CLASSES.snp),
      tdx: z.enum(CONFIDENTIAL_RUNTIME_CLASSES).default(DEFAULT_RUNTIME_CLASSES.tdx),
      gpuSnp: z.enum(CONFIDENTIAL_RUNTIME_CLASSES).default(DEFAULT_RUNTIME_CLASSES.gpuSnp),
      gpuTdx: z.enum(CONFIDENTIAL_RUNTIME_CLASSES).default(DEFAULT_RUNTIME_CLASSES.gpuTdx),
    })
    .prefault({}),
  trust: z
    .strictObject({
      ...component({ image: placeholderImage('ghcr.io/tresor/trust'), replicas: 1, cpu: '1', memory: '1Gi' }),
      /** The KBS / trust URL workloads attest to; default: the in-cluster Service. */
      url: urlWithoutSecrets(['https:'], 'trust service (https)').optional(),
      /** PEM certificate the attestation agent pins for the KBS (public, not a secret). */
      kbsCertificate: z.string().max(16384).regex(PEM_CERTIFICATE, 'a PEM certificate').optional(),
      /** Size of the state volume (sealed resources, signed documents). */
      stateStorage: z.string().regex(MEMORY_QUANTITY, 'a size such as "1Gi"').default('1Gi'),
      storageClassName: z.string().regex(DNS_LABEL, 'a storage class name').optional(),
      /** Networks allowed to reach the trust admin API (e.g. an operator VPN); none by default. */
      adminCidrs: z.array(z.string().regex(CIDR, 'an IPv4 CIDR such as 10.0.0.0/24')).max(32).default([]),
    })
    .prefault({}),
  gateway: z
    .strictObject({
      ...component({
        image: placeholderImage('ghcr.io/tresor/gateway'),
        replicas: 3,
        cpu: '1',
        memory: '1Gi',
      }),
      autoscaling: z
        .strictObject({
          maxReplicas: z.int().min(1).max(256).default(12),
          cpuUtilization: z.int().min(10).max(95).default(70),
        })
        .prefault({}),
      minAvailable: z.int().min(1).max(255).default(2),
      serviceType: z.enum(['LoadBalancer', 'ClusterIP']).default('LoadBalancer'),
    })
    .prefault({})
    .refine((g) => g.autoscaling.maxReplicas >= g.replicas, {
      message: 'autoscaling.maxReplicas must be at least replicas',
      path: ['autoscaling', 'maxReplicas'],
    })
    .refine((g) => g.minAvailable < g.replicas || g.replicas === 1, {
      message: 'minAvailable must be below replicas, or no node could ever be drained',
      path: ['minAvailable'],
    }),
  serving: z
    .strictObject({
      ...component({
        image: placeholderImage('ghcr.io/tresor/serving'),
        replicas: 2,
        cpu: '8',
        memory: '64Gi',
      }),
      gpu: z
        .strictObject({
          count: z.int().min(1).max(8).default(1),
          /** The extended resource the GPU device plugin advertises for CC-mode passthrough GPUs. */
          resourceName: z
            .string()
            .regex(/^nvidia\.com\/[A-Za-z0-9_.-]{1,63}$/, 'an nvidia.com/<name> extended resource')
            .default('nvidia.com/gpu'),
        })
        .prefault({}),
      /** The tenant whose models this serving pool loads (`tresor-tenant` in its init data). */
      tenant: z.string().regex(TENANT, 'a tenant id (a-z, 0-9, -)').optional(),
      /** An existing PersistentVolumeClaim (ReadOnlyMany) holding the sealed `.tresor` models. */
      modelsClaimName: z.string().regex(DNS_LABEL, 'a PersistentVolumeClaim name').default('tresor-models'),
    })
    .prefault({}),
  redis: z
    .strictObject({
      /** Deploy Redis in a confidential pod; false when `url` points at a Redis you run yourself. */
      deploy: z.boolean().default(true),
      image: imageRef.default(placeholderImage('docker.io/library/redis')),
      tee: teeKind.default('snp'),
      resources: resources('500m', '512Mi'),
      url: urlWithoutSecrets(['redis:', 'rediss:'], 'Redis').optional(),
      measurements,
    })
    .prefault({})
    .refine((r) => r.deploy || r.url !== undefined, {
      message: 'with redis.deploy false, give the URL of your Redis',
      path: ['url'],
    }),
  postgres: z
    .strictObject({
      url: urlWithoutSecrets(['postgres:', 'postgresql:'], 'PostgreSQL').default(
        'postgresql://tresor@postgres.tresor-data.svc.cluster.local:5432/tresor?sslmode=verify-full',
      ),
      /** Networks outside the cluster where PostgreSQL runs (egress is otherwise only to the data namespace). */
      cidrs: z.array(z.string().regex(CIDR, 'an IPv4 CIDR such as 10.0.0.0/24')).max(32).default([]),
    })
    .prefault({}),
  coco: z
    .strictObject({
      /**
       * A Kata agent policy (Rego) to use instead of Tresor's default, e.g. the output of `genpolicy`,
       * which pins each container's command, environment and image.
       */
      agentPolicy: z
        .string()
        .min(1)
        .max(200_000)
        .refine(
          (p) => !p.includes("'''"),
          "the agent policy may not contain ''' (it is embedded as a TOML literal)",
        )
        .optional(),
    })
    .prefault({}),
  openshift: z
    .strictObject({
      enabled: z.boolean().default(false),
      /** Host name of the gateway Route (TLS passthrough); default: the cluster's generated name. */
      gatewayHost: z.string().regex(HOSTNAME, 'a DNS host name').optional(),
    })
    .prefault({}),
});

export type DeploymentValues = z.output<typeof deploymentValuesSchema>;
export type ComponentName = 'trust' | 'gateway' | 'serving' | 'redis';

/** The largest values file read: a few kilobytes is typical, an agent policy adds at most 200 KB. */
export const MAX_VALUES_BYTES = 1024 * 1024;

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

function describePath(path: readonly PropertyKey[]): string {
  return path.length === 0 ? '(top level)' : path.map((p) => String(p)).join('.');
}

/**
 * Validates values (already parsed from YAML/JSON) and fills in the defaults.
 * @throws TresorError CONFIG_INVALID naming the first offending path.
 */
export function parseDeploymentValues(input: unknown, source = 'values'): DeploymentValues {
  const parsed = deploymentValuesSchema.safeParse(input ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined ? '(top level)' : describePath(issue.path);
    throw new TresorError(
      'CONFIG_INVALID',
      `${source}: ${where}: ${issue?.message ?? 'invalid'} (docs/deploy.md lists every value)`,
    );
  }
  return deepFreeze(parsed.data);
}

/**
 * Parses a values file (YAML 1.2; JSON is valid YAML) and validates it.
 * @throws TresorError CONFIG_INVALID for text that is not YAML or values that do not fit the schema.
 */
export function loadDeploymentValues(text: string, source: string): DeploymentValues {
  if (text.length > MAX_VALUES_BYTES) {
    throw new TresorError('CONFIG_INVALID', `${source}: larger than ${MAX_VALUES_BYTES} bytes`);
  }
  let document: unknown;
  try {
    // uniqueKeys: a repeated key is a mistake, not "the last one wins"; maxAliasCount bounds
    // alias expansion ("billion laughs").
    document = parseYaml(text, { uniqueKeys: true, maxAliasCount: 100, prettyErrors: false });
  } catch (cause) {
    const message = cause instanceof Error ? cause.message.split('\n')[0] : 'unreadable';
    throw new TresorError('CONFIG_INVALID', `${source}: not YAML or JSON: ${message ?? ''}`, { cause });
  }
  if (
    document !== null &&
    document !== undefined &&
    (typeof document !== 'object' || Array.isArray(document))
  ) {
    throw new TresorError('CONFIG_INVALID', `${source}: (top level): a mapping of values`);
  }
  return parseDeploymentValues(document, source);
}

/** The trust (KBS) URL workloads attest to. */
export function trustUrl(values: DeploymentValues): string {
  return values.trust.url ?? `https://tresor-trust.${values.namespaces.trust}.svc.cluster.local:8443`;
}

/** The Redis URL the gateways share rate limits and quotas through. */
export function redisUrl(values: DeploymentValues): string {
  return values.redis.url ?? `redis://tresor-redis.${values.namespaces.data}.svc.cluster.local:6379`;
}

/** Image references still at the placeholder digest, by values path. */
export function placeholderImages(values: DeploymentValues): string[] {
  const images: [string, string][] = [
    ['trust.image', values.trust.image],
    ['gateway.image', values.gateway.image],
    ['serving.image', values.serving.image],
  ];
  if (values.redis.deploy) images.push(['redis.image', values.redis.image]);
  return images.filter(([, ref]) => ref.endsWith(PLACEHOLDER_DIGEST)).map(([path]) => path);
}

/** The `sha256:<hex>` digest of a pinned reference. */
export function imageDigest(ref: string): string {
  const at = ref.lastIndexOf('@');
  return ref.slice(at + 1);
}
