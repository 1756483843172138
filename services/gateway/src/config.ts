import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { isKeyId, parseKeyStoreConfig, type KeyId, type KeyStoreConfig } from '@tresor/keystore';
import { configInvalid, deepFreeze } from '@tresor/server-kit';
import { AdminKeySet } from '@tresor/trust';

/**
 * The gateway configuration (`tresor gateway serve --config <file>`, docs/gateway.md lists every
 * setting): validated by a schema at start-up, files read, relative paths resolved against the
 * config file's directory, then frozen. Secrets are never in it: the keystore config names the
 * environment variable holding its passphrase or PIN, and key files are referenced by path.
 */

const KIB = 1024;
const MIB = 1024 * KIB;
const keyId = z.string().refine(isKeyId, 'a keystore key id (see `tresor keys list`)');
const file = z.string().min(1).max(4096);
const httpsUrl = z
  .url()
  .refine((u) => u.startsWith('https://'), 'an https:// URL (every Tresor listener speaks TLS 1.3)');

export const gatewayConfigSchema = z.strictObject({
  /** `production` refuses the sample TEE, for the gateway itself and for the replicas it routes to. */
  mode: z.enum(['local', 'production']).default('local'),
  server: z.strictObject({
    host: z.string().min(1).max(255).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535).default(8444),
    /** The gateway's TLS certificate chain and key (PEM files; `tresor up` issues them from its local CA). */
    tls: z.strictObject({ certFile: file, keyFile: file }),
    /** HTTP/2 with HTTP/1.1 through ALPN; on by default. */
    http2: z.boolean().default(true),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    shutdownGraceMs: z.number().int().nonnegative().max(600_000).default(10_000),
    requestTimeoutMs: z.number().int().positive().max(600_000).default(120_000),
  }),
  /** Directory of the metadata database (SQLite, unless `database.url` names PostgreSQL) and the audit key. */
  stateDir: file,
  database: z
    .strictObject({
      url: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// URL'),
      schema: z.string().optional(),
    })
    .optional(),
  /** The keystore holding the audit checkpoint key and the KEK that wraps each tenant's data key. */
  keystore: z.record(z.string(), z.unknown()),
  keys: z.strictObject({
    /** ES256 or ES384 key signing audit checkpoints. */
    auditCheckpoint: keyId,
    /** AES-256 KEK wrapping the data key each tenant's sealed metadata columns use. */
    tenantKek: keyId,
  }),
  /** The trust service: signed reference values and residency inventory for the bundle and for routing. */
  trust: z.strictObject({ url: httpsUrl, caFile: file.optional() }),
  /** Redis for rate limits and quotas shared by gateway replicas; in memory when absent. */
  redis: z.strictObject({ url: z.string().regex(/^rediss?:\/\//, 'a redis:// or rediss:// URL') }).optional(),
  serving: z.strictObject({
    /** Serving replicas (their mesh URLs); each is attested before it gets a request. */
    replicas: z
      .array(z.strictObject({ url: httpsUrl }))
      .min(1)
      .max(256),
    /** CA certificates of the mesh; with `mesh.source: "trust"` the mesh CA's certificate when omitted. */
    meshCaFile: file.optional(),
    /**
     * The gateway's mTLS client identity towards serving: `{"source": "trust"}` attests the gateway
     * to the trust service (KBS) and has its mesh CA certify a key generated in memory, renewed
     * before expiry; or a certificate and key from files (the local CA, tests).
     */
    mesh: z.union([
      z.strictObject({ certFile: file, keyFile: file }),
      z.strictObject({ source: z.literal('trust') }),
    ]),
    /** The sample TEE public key the replicas' sample evidence is checked with (local mode). */
    sampleVerifyKeyFile: file.optional(),
    /** What replicas must prove beyond the signed reference values (checked by the SDK's verifier). */
    policy: z
      .strictObject({
        /** ISO 3166-1 alpha-2 codes the replicas' hardware may stand in, per the signed inventory. */
        jurisdictions: z
          .array(z.string().regex(/^[A-Z]{2}$/, 'an ISO 3166-1 alpha-2 code such as "CH"'))
          .min(1)
          .max(32)
          .default(['CH']),
        /** Minimum TCB per TEE kind, as in the client trust policy (docs/client.md). */
        minimumTcb: z
          .array(
            z.strictObject({
              tee: z.enum(['snp', 'tdx', 'nvidia', 'sample']),
              product: z.string().min(1).max(64).optional(),
              components: z.record(
                z.string().regex(/^[a-z][a-z0-9_.]{0,63}$/),
                z.number().int().nonnegative(),
              ),
            }),
          )
          .max(64)
          .default([]),
        /** Replicas must present NVIDIA GPU evidence in confidential-computing mode. */
        requireGpu: z.boolean().default(false),
      })
      .prefault({}),
    /** How often each replica's evidence is fetched with a fresh nonce and verified again. */
    reverifyIntervalSeconds: z.number().int().min(1).max(3600).default(30),
    /** Evidence older than this is expired: the replica leaves the rotation until it attests again. */
    evidenceMaxAgeSeconds: z.number().int().min(5).max(86_400).default(300),
    /** Upstream requests waiting for a replica's first byte at most this long. */
    upstreamTimeoutMs: z.number().int().min(100).max(600_000).default(60_000),
  }),
  /** Where the gateway's own evidence comes from. */
  tee: z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('sample'),
      signingKeyFile: file,
      svn: z.number().int().nonnegative().default(1),
      /** 96 hex digits: what the gateway reports as its measurement (reference values match it). */
      measurement: z
        .string()
        .regex(/^[0-9a-f]{96}$/)
        .optional(),
    }),
    z.strictObject({ kind: z.literal('configfs-tsm'), path: file.default('/sys/kernel/config/tsm/report') }),
  ]),
  limits: z
    .strictObject({
      /** Largest encapsulated request (`/v1/ohttp` body). */
      ohttpBodyBytes: z
        .number()
        .int()
        .min(KIB)
        .max(64 * MIB)
        .default(2 * MIB),
      /** Largest inner (decrypted) request body. */
      innerBodyBytes: z
        .number()
        .int()
        .min(KIB)
        .max(32 * MIB)
        .default(MIB),
      requestsPerMinutePerKey: z.number().int().min(1).default(600),
      requestsPerMinutePerTenant: z.number().int().min(1).default(6000),
      tokensPerDayPerKey: z.number().int().min(1).default(2_000_000),
      tokensPerDayPerTenant: z.number().int().min(1).default(20_000_000),
      /** Encapsulated keys (`enc`) are remembered this long; a request repeated within it is refused. */
      replayWindowSeconds: z.number().int().min(10).max(86_400).default(600),
      replayCacheEntries: z.number().int().min(1000).max(10_000_000).default(1_000_000),
      /** Attestation bundles per second (burst as large): each signs fresh evidence and asks every replica for some. */
      attestationPerSecond: z.number().int().min(1).max(10_000).default(20),
    })
    .prefault({}),
  usage: z
    .strictObject({
      /**
       * What a usage record acknowledged before the answer's last byte survives. `process-crash`:
       * the gateway being killed at any point (the record is committed without a WAL fsync: a power
       * cut or kernel crash of the database host may lose the last few); `power-loss`: that too, at
       * one fsync per commit (SQLite; PostgreSQL: synchronous_commit as the server sets it).
       * API keys, tenants, policies and the audit log are always written at `power-loss`.
       */
      durability: z.enum(['process-crash', 'power-loss']).default('process-crash'),
    })
    .prefault({}),
  /** The web console (apps/console build, `npm run build -w apps/console`) served at /console/. */
  console: z.strictObject({ dir: file }).optional(),
  admin: z
    .strictObject({
      keys: z.array(z.unknown()).max(100).default([]),
      /** The `aud` admin requests must carry. */
      audience: z.string().min(1).max(200).default('tresor-gateway'),
      requestWindowSeconds: z.number().int().min(30).max(3600).default(300),
    })
    .prefault({}),
});

export type GatewayConfigInput = z.input<typeof gatewayConfigSchema>;
type Parsed = z.output<typeof gatewayConfigSchema>;

/** A validated configuration with every file read. */
export interface GatewayConfig {
  readonly mode: 'local' | 'production';
  readonly server: Omit<Parsed['server'], 'tls'> & {
    readonly tls: { readonly cert: string; readonly key: string };
  };
  readonly stateDir: string;
  readonly database?: { readonly url: string; readonly schema?: string };
  readonly keystore: KeyStoreConfig;
  readonly keys: { readonly auditCheckpoint: KeyId; readonly tenantKek: KeyId };
  readonly trust: { readonly url: string; readonly ca?: string };
  readonly redis?: { readonly url: string };
  readonly serving: {
    readonly replicas: readonly { readonly url: string }[];
    /** PEM CA certificates of the mesh; undefined with a mesh identity from trust (its CA then). */
    readonly meshCa?: string;
    readonly mesh:
      | { readonly source: 'files'; readonly cert: string; readonly key: string }
      | { readonly source: 'trust' };
    readonly sampleVerifyKey?: string;
    readonly policy: Parsed['serving']['policy'];
    readonly reverifyIntervalSeconds: number;
    readonly evidenceMaxAgeSeconds: number;
    readonly upstreamTimeoutMs: number;
  };
  readonly tee:
    | {
        readonly kind: 'sample';
        readonly signingKey: string;
        readonly svn: number;
        readonly measurement?: string;
      }
    | { readonly kind: 'configfs-tsm'; readonly path: string };
  readonly limits: Parsed['limits'];
  readonly usage: Parsed['usage'];
  /** The console build directory (resolved); its manifest is checked when the gateway starts. */
  readonly console?: { readonly dir: string };
  readonly admin: {
    readonly keys: AdminKeySet;
    readonly audience: string;
    readonly requestWindowSeconds: number;
  };
}

async function readText(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (cause) {
    throw new TresorError('INPUT_UNREADABLE', `cannot read ${what} ${path}`, { cause });
  }
}

/**
 * Validates a gateway configuration and reads the files it names (relative to `baseDir`).
 *
 * @throws TresorError CONFIG_INVALID naming the field; INPUT_UNREADABLE for a file that cannot be read
 */
export async function parseGatewayConfig(value: unknown, baseDir: string): Promise<GatewayConfig> {
  const parsed = gatewayConfigSchema.safeParse(value);
  if (!parsed.success) throw configInvalid('gateway configuration', parsed.error);
  const c = parsed.data;
  const path = (p: string): string => (isAbsolute(p) ? p : resolve(baseDir, p));
  if (c.mode === 'production' && c.tee.kind === 'sample') {
    throw new TresorError(
      'CONFIG_INVALID',
      'gateway configuration field tee.kind: production mode refuses the sample TEE (use configfs-tsm)',
    );
  }
  if (c.mode === 'production' && c.serving.sampleVerifyKeyFile !== undefined) {
    throw new TresorError(
      'CONFIG_INVALID',
      'gateway configuration field serving.sampleVerifyKeyFile: production mode routes to hardware TEEs only',
    );
  }
  if (!('source' in c.serving.mesh) && c.serving.meshCaFile === undefined) {
    throw new TresorError(
      'CONFIG_INVALID',
      'gateway configuration field serving.meshCaFile: a mesh certificate from files needs the mesh CA file',
    );
  }
  const tee: GatewayConfig['tee'] =
    c.tee.kind === 'sample'
      ? {
          kind: 'sample',
          signingKey: await readText(path(c.tee.signingKeyFile), 'the sample TEE signing key'),
          svn: c.tee.svn,
          ...(c.tee.measurement === undefined ? {} : { measurement: c.tee.measurement }),
        }
      : { kind: 'configfs-tsm', path: c.tee.path };
  const config: GatewayConfig = {
    mode: c.mode,
    server: {
      ...c.server,
      tls: {
        cert: await readText(path(c.server.tls.certFile), 'the TLS certificate'),
        key: await readText(path(c.server.tls.keyFile), 'the TLS key'),
      },
    },
    stateDir: path(c.stateDir),
    ...(c.database === undefined
      ? {}
      : {
          database: {
            url: c.database.url,
            ...(c.database.schema === undefined ? {} : { schema: c.database.schema }),
          },
        }),
    keystore: parseKeyStoreConfig(c.keystore, baseDir),
    keys: c.keys,
    trust: {
      url: c.trust.url,
      ...(c.trust.caFile === undefined ? {} : { ca: await readText(path(c.trust.caFile), 'the trust CA') }),
    },
    ...(c.redis === undefined ? {} : { redis: c.redis }),
    serving: {
      replicas: c.serving.replicas,
      ...(c.serving.meshCaFile === undefined
        ? {}
        : { meshCa: await readText(path(c.serving.meshCaFile), 'the mesh CA') }),
      mesh:
        'source' in c.serving.mesh
          ? { source: 'trust' }
          : {
              source: 'files',
              cert: await readText(path(c.serving.mesh.certFile), 'the mesh certificate'),
              key: await readText(path(c.serving.mesh.keyFile), 'the mesh key'),
            },
      ...(c.serving.sampleVerifyKeyFile === undefined
        ? {}
        : {
            sampleVerifyKey: await readText(path(c.serving.sampleVerifyKeyFile), 'the sample TEE public key'),
          }),
      policy: c.serving.policy,
      reverifyIntervalSeconds: c.serving.reverifyIntervalSeconds,
      evidenceMaxAgeSeconds: c.serving.evidenceMaxAgeSeconds,
      upstreamTimeoutMs: c.serving.upstreamTimeoutMs,
    },
    tee,
    limits: c.limits,
    usage: c.usage,
    ...(c.console === undefined ? {} : { console: { dir: path(c.console.dir) } }),
    admin: {
      keys: await AdminKeySet.parse(c.admin.keys),
      audience: c.admin.audience,
      requestWindowSeconds: c.admin.requestWindowSeconds,
    },
  };
  // AdminKeySet holds CryptoKeys, which freezing would not change; everything else is plain data.
  const { admin, ...rest } = config;
  deepFreeze(rest);
  return Object.freeze({ ...rest, admin: Object.freeze(admin) });
}

/** Reads and validates a gateway config file (JSON). */
export async function loadGatewayConfig(configFile: string): Promise<GatewayConfig> {
  const text = await readText(configFile, 'the gateway config');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new TresorError('INPUT_MALFORMED', `the gateway config ${configFile} is not JSON`, { cause });
  }
  return parseGatewayConfig(value, dirname(configFile));
}
