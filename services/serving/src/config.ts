import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { configInvalid, deepFreeze } from '@tresor/server-kit';

/**
 * The serving enclave's configuration (`tresor serving serve --config <file>`): validated once at
 * start-up (CONFIG_INVALID names the field), relative paths resolved against the file's folder,
 * then frozen. docs/serving.md lists every setting.
 */

const KBS_URI = /^kbs:\/\/\/[A-Za-z0-9._-]{1,128}\/[A-Za-z0-9._-]{1,128}\/[A-Za-z0-9._-]{1,128}$/;
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const SPIFFE = /^spiffe:\/\/[a-z0-9._-]+\/[^/]+\/[^/]+$/;
const HEX_48 = /^[0-9a-f]{96}$/;

const modelSchema = z.strictObject({
  /** The id clients name in `model`. */
  id: z.string().regex(MODEL_ID, 'a model id: letters, digits and . _ : / - (at most 128)'),
  /** The sealed `.tresor` file. */
  file: z.string().min(1),
  /** Where the trust service releases its key: `kbs:///<repository>/<type>/<tag>`. */
  key: z.string().regex(KBS_URI, 'kbs:///<repository>/<type>/<tag>'),
});

const teeSchema = z.discriminatedUnion('source', [
  z.strictObject({
    /** The software stand-in (local mode only): evidence signed with the installation key. */
    source: z.literal('sample'),
    /** The sample TEE's private JWK (`tresor up` writes it, mode 0600). */
    signingKeyFile: z.string().min(1),
    /** 48 bytes (96 hex digits) the sample TEE reports as its measurement. */
    measurement: z.string().regex(HEX_48, '96 lowercase hex digits').optional(),
    svn: z.number().int().nonnegative().default(1),
  }),
  z.strictObject({
    /** AMD SEV-SNP or Intel TDX through the kernel's configfs-tsm report interface. */
    source: z.literal('configfs-tsm'),
    root: z.string().min(1).default('/sys/kernel/config/tsm'),
  }),
  z.strictObject({
    /** configfs-tsm when the kernel offers it, else the sample TEE when configured (local mode only). */
    source: z.literal('auto'),
    root: z.string().min(1).default('/sys/kernel/config/tsm'),
    signingKeyFile: z.string().min(1).optional(),
    measurement: z.string().regex(HEX_48, '96 lowercase hex digits').optional(),
    svn: z.number().int().nonnegative().default(1),
  }),
]);

const upstreamRestartSchema = z
  .strictObject({
    /** Delay before the first restart; doubled for each failure in a row. */
    initialDelayMs: z.number().int().positive().max(600_000).default(500),
    /** Ceiling of the doubled delay. */
    maxDelayMs: z.number().int().positive().max(3_600_000).default(30_000),
    /** A child serving this long without dying resets the failure count and the delay. */
    stableAfterSeconds: z.number().int().nonnegative().max(86_400).default(60),
    /** Restarts in a row without a stable run before giving up for good; 0 never restarts. */
    maxRapidRestarts: z.number().int().nonnegative().max(1000).default(5),
    /** Between health probes (GET /v1/models naming the model); 0 turns probing off. */
    healthIntervalSeconds: z.number().int().nonnegative().max(3600).default(10),
    /** A probe not answered within this long failed. */
    healthTimeoutSeconds: z.number().int().positive().max(600).default(5),
    /** Failed probes in a row after which the child is killed and restarted. */
    healthFailures: z.number().int().positive().max(100).default(3),
  })
  .refine((r) => r.maxDelayMs >= r.initialDelayMs, {
    message: 'maxDelayMs must be at least initialDelayMs',
    path: ['maxDelayMs'],
  });

const engineSchema = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('llama'), threads: z.number().int().positive().max(256).optional() }),
  z
    .strictObject({
      kind: z.literal('openai-upstream'),
      /** An upstream already running in the pod (it loads its own weights). */
      url: z.url({ protocol: /^https?$/ }).optional(),
      socketPath: z.string().min(1).optional(),
      /**
       * Or: the upstream the replica starts itself on the decrypted sealed model, as argv with
       * `{model}`, `{modelId}` and `{port}` or `{socket}` (engines/upstream-process.ts).
       */
      command: z.array(z.string().min(1).max(4096)).min(1).max(256).optional(),
      readyTimeoutSeconds: z.number().int().positive().max(7200).default(600),
      /** How long the plaintext stays in the child's folder: until it exits, or until it answers. */
      keepModelFile: z.enum(['while-running', 'until-ready']).default('while-running'),
      modelFileName: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, 'a file name')
        .default('model.gguf'),
      env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), z.string()).optional(),
      /**
       * Supervision of the started upstream (engine.command): a child that exits or fails its
       * health probe is restarted on a fresh decryption, with exponential back-off, and given up
       * on (the replica stays not-ready) after `maxRapidRestarts` restarts in a row that did not
       * last `stableAfterSeconds`.
       */
      restart: upstreamRestartSchema.prefault({}),
    })
    .refine((e) => [e.url, e.socketPath, e.command].filter((value) => value !== undefined).length === 1, {
      message: 'name exactly one of url, socketPath and command',
    }),
  z.strictObject({
    kind: z.literal('echo'),
    responseTokens: z.number().int().positive().optional(),
  }),
]);

const tlsSchema = z.discriminatedUnion('source', [
  /** The TLS key is generated in memory and certified by the trust service's mesh CA. */
  z.strictObject({ source: z.literal('mesh') }),
  /** A certificate and key from files (`tresor up` in local mode). */
  z.strictObject({ source: z.literal('files'), certFile: z.string().min(1), keyFile: z.string().min(1) }),
]);

export const servingConfigSchema = z
  .strictObject({
    mode: z.enum(['production', 'local']),
    /** A stable name for this replica (receipts and evidence name it); random when omitted. */
    replicaId: z
      .string()
      .regex(/^[A-Za-z0-9._-]{1,64}$/)
      .optional(),
    listen: z
      .strictObject({
        host: z.string().min(1).max(255).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8444),
      })
      .prefault({}),
    tls: tlsSchema.prefault({ source: 'mesh' }),
    mtls: z
      .strictObject({
        /** Require a mesh client certificate naming an allowed peer on /v1/ohttp. */
        required: z.boolean().default(true),
        /** CA of client certificates; the trust service's mesh CA when omitted. */
        clientCaFile: z.string().min(1).optional(),
        /** SPIFFE ids allowed to call /v1/ohttp; the gateway's (`spiffe://<domain>/gateway/_`) when omitted. */
        allowedPeers: z
          .array(z.string().regex(SPIFFE, 'a spiffe://<domain>/<component>/<tenant> id'))
          .optional(),
        trustDomain: z.string().min(1).default('tresor.local'),
      })
      .prefault({}),
    trust: z.strictObject({
      url: z.url({ protocol: /^https$/ }),
      /** CA certificate (PEM) of the trust service's TLS certificate; the system store when omitted. */
      caFile: z.string().min(1).optional(),
    }),
    tee: teeSchema,
    gpu: z
      .strictObject({
        /** Refuse to become ready without a GPU in confidential-computing mode. */
        requireGpu: z.boolean().default(false),
        /** `none`: no GPU evidence; `command`: a local attestation command (evidence/gpu-command-source.ts). */
        source: z.enum(['none', 'command']).default('none'),
        /** argv with `{nonce}`, e.g. nvattest collect-evidence --device gpu --nonce {nonce} --format json. */
        command: z.array(z.string().min(1).max(4096)).min(1).max(64).optional(),
        timeoutSeconds: z.number().int().positive().max(600).default(60),
      })
      .refine((gpu) => (gpu.source === 'command') === (gpu.command !== undefined), {
        message: 'source "command" needs command (with {nonce}); source "none" takes none',
      })
      .refine((gpu) => gpu.command === undefined || gpu.command.some((part) => part.includes('{nonce}')), {
        message: 'the GPU attestation command must pass {nonce}',
        path: ['command'],
      })
      .prefault({}),
    models: z.array(modelSchema).max(64).default([]),
    /** Every `*.tresor` file here is served, its id the file name, its key the header's key id. */
    modelDirectory: z.string().min(1).optional(),
    engine: engineSchema,
    concurrency: z
      .strictObject({
        maxConcurrent: z.number().int().positive().max(1024).default(4),
        maxQueue: z.number().int().nonnegative().max(100_000).default(32),
        retryAfterSeconds: z.number().int().positive().max(3600).default(1),
      })
      .prefault({}),
    /**
     * Where decrypted models are written before the engine loads them: a tmpfs inside the TEE in
     * production; in local mode a private folder (0700) under the system temp dir by default.
     * Wiped at start and at exit.
     */
    workDir: z.string().min(1).optional(),
    /** Fresh evidence requests per second at /attestation (each signs a report). */
    attestationRatePerSecond: z.number().int().positive().max(10_000).default(20),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    shutdownGraceMs: z.number().int().nonnegative().max(600_000).default(10_000),
  })
  .superRefine((config, ctx) => {
    const teeSource = config.tee.source;
    if (config.mode === 'production') {
      if (teeSource === 'sample') {
        ctx.addIssue({
          code: 'custom',
          path: ['tee', 'source'],
          message: 'production refuses the sample TEE; use configfs-tsm (or auto)',
        });
      }
      if (config.tee.source === 'auto' && config.tee.signingKeyFile !== undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['tee', 'signingKeyFile'],
          message: 'production never falls back to the sample TEE; remove signingKeyFile',
        });
      }
      if (!config.mtls.required) {
        ctx.addIssue({ code: 'custom', path: ['mtls', 'required'], message: 'production requires mTLS' });
      }
      if (config.tls.source !== 'mesh') {
        ctx.addIssue({
          code: 'custom',
          path: ['tls', 'source'],
          message: 'production serves with a mesh certificate for its attested key',
        });
      }
      if (config.workDir === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: ['workDir'],
          message: 'production needs a workDir on a tmpfs inside the TEE (e.g. /dev/shm/tresor)',
        });
      }
    }
    if (config.models.length > 0 && config.modelDirectory !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['modelDirectory'],
        message: 'name models or modelDirectory, not both',
      });
    }
    const ids = new Set<string>();
    for (const [index, model] of config.models.entries()) {
      if (ids.has(model.id)) {
        ctx.addIssue({
          code: 'custom',
          path: ['models', index, 'id'],
          message: `duplicate model id ${model.id}`,
        });
      }
      ids.add(model.id);
    }
  });

export type ServingConfig = Readonly<z.output<typeof servingConfigSchema>>;
export type ServingConfigInput = z.input<typeof servingConfigSchema>;
export type ServingModelConfig = ServingConfig['models'][number];
export type ServingTeeConfig = ServingConfig['tee'];
export type ServingEngineConfig = ServingConfig['engine'];

const PATH_FIELDS = [
  ['tee', 'signingKeyFile'],
  ['tee', 'root'],
  ['tls', 'certFile'],
  ['tls', 'keyFile'],
  ['mtls', 'clientCaFile'],
  ['trust', 'caFile'],
  ['modelDirectory'],
  ['workDir'],
] as const;

/** Validates and freezes a configuration; relative paths resolve against `baseDir` when given. */
export function parseServingConfig(value: unknown, baseDir?: string): ServingConfig {
  const parsed = servingConfigSchema.safeParse(value);
  if (!parsed.success) throw configInvalid('serving configuration', parsed.error);
  const config = parsed.data;
  if (baseDir !== undefined) {
    const absolute = (path: string): string => (isAbsolute(path) ? path : resolve(baseDir, path));
    for (const [section, field] of PATH_FIELDS) {
      if (field === undefined) {
        const holder = config as unknown as Record<string, unknown>;
        const path = holder[section];
        if (typeof path === 'string') holder[section] = absolute(path);
        continue;
      }
      const holder = (config as unknown as Record<string, Record<string, unknown>>)[section];
      const path = holder?.[field];
      if (holder !== undefined && typeof path === 'string') holder[field] = absolute(path);
    }
    for (const model of config.models) (model as { file: string }).file = absolute(model.file);
  }
  return deepFreeze(config);
}

/** Reads a JSON configuration file. CONFIG_INVALID when it cannot be read or parsed. */
export async function loadServingConfig(file: string): Promise<ServingConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (cause) {
    throw new TresorError('CONFIG_INVALID', `cannot read the serving configuration ${file}`, { cause });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new TresorError('CONFIG_INVALID', `the serving configuration ${file} is not JSON`, { cause });
  }
  return parseServingConfig(value, dirname(resolve(file)));
}
