import { randomBytes } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DestinationStream } from 'pino';
import { TresorError, ATTESTATION_BUNDLE_PATH } from '@tresor/protocol';
import {
  createGatewayKey,
  encodeKeyConfigList,
  gatewayKeysById,
  HpkeKeyPair,
  OHTTP_KEYS_MEDIA_TYPE,
  type OhttpKeyConfig,
} from '@tresor/crypto';
import { SampleVerifyKey } from '@tresor/attestation';
import { EnvelopeCipher, openKeyStore, parseWrappedKey, type KeyStore } from '@tresor/keystore';
import { createServer, TokenBucket, type TresorServer } from '@tresor/server-kit';
import {
  AuditLog,
  keyStoreCheckpointSigner,
  openMetadataDatabase,
  publishAuditPublicKey,
  SqlApiKeyRepository,
  SqlAuditRepository,
  SqlPolicyRepository,
  SqlTenantRepository,
  STATE_DB_FILE,
  timerScheduler,
  type FieldCipher,
  type Scheduler,
  type SqlClient,
} from '@tresor/storage';
import { ADMIN_PREFIX, adminRoutes, httpsTransport, ReplayGuard, type KbsTransport } from '@tresor/trust';
import { gatewayAdminOperations } from './admin/gateway-admin-operations.js';
import { CONSOLE_PREFIX, consolePlugin, loadConsoleBuild } from './console/console-plugin.js';
import { InnerApi } from './api/inner-api.js';
import { AttestationBundleBuilder, parseNonce } from './attestation/attestation-bundle.js';
import { attesterFromConfig, kbsAttesterOf, type TeeAttester } from './attestation/gateway-attester.js';
import { spkiSha256OfPem } from './attestation/tls-spki.js';
import { HttpsTrustDocumentSource, type TrustDocumentSource } from './attestation/trust-documents.js';
import { ApiKeyAuthenticator } from './auth/api-key-authenticator.js';
import { GatewayAuthorizer } from './auth/gateway-policy.js';
import type { GatewayConfig } from './config.js';
import { MemoryCounterStore, type CounterStore } from './limits/counter-store.js';
import { RedisCounterStore } from './limits/redis-counter-store.js';
import { UsageLimiter } from './limits/usage-limiter.js';
import { ReplayCache } from './ohttp/replay-cache.js';
import { gatewayOpenApi, OPENAPI_PATH } from './openapi/gateway-openapi.js';
import { PolicyReplicaVerifier, type ReplicaVerifier } from './replicas/replica-verifier.js';
import type { MeshTls } from './replicas/mesh-client.js';
import { TrustMeshIdentity } from './replicas/mesh-identity.js';
import { ReplicaPool } from './replicas/replica-pool.js';
import { ohttpRoute } from './routes/ohttp-route.js';
import { limitSlowRequests } from './slow-requests.js';
import { BatchedUsageRepository } from './usage/batched-usage-repository.js';

/** What the environment supplies; tests and `tresor up` inject what they need to fix. */
export interface GatewayDependencies {
  /** Where the keystore passphrase / PIN variables are read from. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly now?: () => Date;
  readonly logDestination?: DestinationStream;
  /** The replica verifier; the SDK-based PolicyReplicaVerifier with `serving.policy` unless given. */
  readonly replicaVerifier?: ReplicaVerifier;
  /** The trust documents; fetched from `trust.url` unless given. */
  readonly documents?: TrustDocumentSource;
  /** Rate-limit counters; Redis when configured, else in memory, unless given. */
  readonly counters?: CounterStore;
  readonly attester?: TeeAttester;
  /** The HTTPS transport to the trust service's KBS and mesh CA (mesh identity from trust). */
  readonly trustTransport?: KbsTransport;
  /** Drives periodic re-attestation of replicas; timers unless given. */
  readonly scheduler?: Scheduler;
}

/** A running gateway. */
export interface RunningGateway {
  /** The https URL it listens on. */
  readonly url: string;
  /** Resolves once every replica was attested once (whether or not any passed). */
  readonly ready: Promise<void>;
  readonly server: TresorServer;
  readonly pool: ReplicaPool;
  readonly keyConfig: OhttpKeyConfig;
  readonly audit: AuditLog;
  /** The mesh identity when it comes from the trust service (`serving.mesh.source: "trust"`). */
  readonly mesh: TrustMeshIdentity | undefined;
  close(): Promise<void>;
}

/**
 * Opens everything the configuration names (keystore, metadata database, audit log, counters),
 * generates the OHTTP key (in enclave memory only; a restart publishes a new one), builds the
 * public, OHTTP and admin routes, starts listening and attests the replicas. Whatever was opened is
 * closed again when a step fails.
 */
export async function startGatewayService(
  config: GatewayConfig,
  deps: GatewayDependencies,
): Promise<RunningGateway> {
  const now = deps.now ?? (() => new Date());
  const cleanup: (() => Promise<unknown>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const step of cleanup.splice(0).reverse()) await step().catch(() => undefined);
  };
  try {
    await mkdir(config.stateDir, { recursive: true, mode: 0o700 }).catch((cause: unknown) => {
      throw new TresorError('STORAGE_UNAVAILABLE', `cannot create the state directory ${config.stateDir}`, {
        cause,
      });
    });
    const keyStore: KeyStore = await openKeyStore(config.keystore, {
      env: deps.env,
      mode: config.mode === 'production' ? 'production' : 'development',
    });
    cleanup.push(() => keyStore.close());
    const db: SqlClient = await openMetadataDatabase(
      config.database === undefined
        ? { kind: 'sqlite', file: join(config.stateDir, STATE_DB_FILE), thread: sqliteThreadFor(config) }
        : {
            kind: 'postgres',
            url: config.database.url,
            ...(config.database.schema === undefined ? {} : { schema: config.database.schema }),
          },
    );
    cleanup.push(() => db.close());
    const clock = { now };
    const signer = await keyStoreCheckpointSigner(keyStore, config.keys.auditCheckpoint);
    publishAuditPublicKey(config.stateDir, signer.publicJwk);
    const auditRecords = new SqlAuditRepository(db);
    const audit = new AuditLog(auditRecords, { signer, clock });

    const tenants = new SqlTenantRepository(db);
    const apiKeys = new SqlApiKeyRepository(db);
    const policies = new SqlPolicyRepository(db);
    const ciphers = new Map<string, FieldCipher>();
    // Usage records are group-committed: one transaction for the requests that finish together,
    // at config usage.durability (by default without an fsync: survives the gateway being killed).
    const usage = new BatchedUsageRepository(
      db,
      async (tenant) => {
        let cipher = ciphers.get(tenant);
        if (cipher === undefined) {
          const record = await tenants.get(tenant);
          if (record === undefined) throw new TresorError('TENANT_NOT_FOUND', `no tenant ${tenant}`);
          cipher = new EnvelopeCipher(keyStore, parseWrappedKey(record.wrappedDataKey));
          ciphers.set(tenant, cipher);
        }
        return cipher;
      },
      { durability: config.usage.durability },
    );
    const counters =
      deps.counters ??
      (config.redis === undefined
        ? new MemoryCounterStore()
        : await RedisCounterStore.connect(config.redis.url));
    cleanup.push(() => counters.close());
    const limiter = new UsageLimiter(counters, config.limits);
    const authenticator = new ApiKeyAuthenticator(apiKeys, now);
    const authorizer = new GatewayAuthorizer(policies, now);

    // A fresh random key id per generated key: a client still sealing to a previous process's key
    // then gets OHTTP_KEY_ID_UNKNOWN (and re-verifies) rather than OHTTP_DECRYPT_FAILED, 255 times in 256.
    const ohttpKey = createGatewayKey(randomBytes(1)[0] ?? 0, await HpkeKeyPair.generate());
    const keys = gatewayKeysById([ohttpKey]);
    const keyList = Buffer.from(encodeKeyConfigList([ohttpKey.config]));
    const attester = deps.attester ?? (await attesterFromConfig(config.tee));

    const server = createServer({
      service: 'gateway',
      config: {
        host: config.server.host,
        port: config.server.port,
        tls: { cert: config.server.tls.cert, key: config.server.tls.key },
        http2: config.server.http2,
        limits: { bodyBytes: config.limits.ohttpBodyBytes, requestTimeoutMs: config.server.requestTimeoutMs },
        shutdownGraceMs: config.server.shutdownGraceMs,
        logLevel: config.server.logLevel,
      },
      ...(deps.logDestination === undefined ? {} : { logDestination: deps.logDestination }),
    });
    limitSlowRequests(server.app.server, config.server.requestTimeoutMs);
    cleanup.push(() => server.close());
    const documents =
      deps.documents ??
      new HttpsTrustDocumentSource(config.trust.url, config.trust.ca, () => now().getTime());
    const verifier =
      deps.replicaVerifier ??
      new PolicyReplicaVerifier({
        ...config.serving.policy,
        maxEvidenceAgeSeconds: config.serving.evidenceMaxAgeSeconds,
        ...(config.serving.sampleVerifyKey === undefined || config.mode === 'production'
          ? {}
          : { sampleVerifyKey: SampleVerifyKey.parse(config.serving.sampleVerifyKey) }),
      });
    // The mTLS identity towards serving: attested and certified by the trust service's mesh CA, or
    // from files. Held before any replica is contacted; a gateway that cannot attest does not start.
    let meshIdentity: TrustMeshIdentity | undefined;
    const renewed: { pool?: ReplicaPool } = {};
    let meshTls: MeshTls;
    if (config.serving.mesh.source === 'trust') {
      const transport =
        deps.trustTransport ??
        httpsTransport(config.trust.url, config.trust.ca === undefined ? {} : { ca: config.trust.ca });
      if (deps.trustTransport === undefined)
        cleanup.push(() => {
          transport.close();
          return Promise.resolve();
        });
      meshIdentity = await TrustMeshIdentity.obtain({
        transport,
        attester: kbsAttesterOf(attester),
        ...(config.serving.meshCa === undefined ? {} : { ca: config.serving.meshCa }),
        now,
        logger: server.logger,
        onRenewed: (tls) => {
          renewed.pool?.setMesh(tls);
        },
      });
      const identity = meshIdentity;
      cleanup.push(() => {
        identity.close();
        return Promise.resolve();
      });
      meshTls = meshIdentity.tls;
    } else {
      meshTls = {
        ca: config.serving.meshCa ?? '',
        cert: config.serving.mesh.cert,
        key: config.serving.mesh.key,
      };
    }
    const pool = new ReplicaPool({
      urls: config.serving.replicas.map((r) => r.url),
      mesh: meshTls,
      verifier,
      documents,
      now,
      maxAgeMs: config.serving.evidenceMaxAgeSeconds * 1000,
      timeoutMs: config.serving.upstreamTimeoutMs,
      logger: server.logger,
    });
    renewed.pool = pool;
    cleanup.push(() => {
      pool.close();
      return Promise.resolve();
    });
    const bundles = new AttestationBundleBuilder({
      id: `gateway-${randomBytes(3).toString('hex')}`,
      attester,
      keyConfig: ohttpKey.config,
      tlsSpkiSha256: spkiSha256OfPem(config.server.tls.cert),
      pool,
      documents,
      trustUrl: config.trust.url,
      now,
    });
    const api = new InnerApi({
      authenticator,
      authorizer,
      limiter,
      tenants,
      usage,
      pool,
      now,
      logger: server.logger,
      innerBodyBytes: config.limits.innerBodyBytes,
      replayWindowMs: config.limits.replayWindowSeconds * 1000,
    });

    const app = server.app;
    app.get('/.well-known/ohttp-gateway', (_request, reply) =>
      reply.type(OHTTP_KEYS_MEDIA_TYPE).header('cache-control', 'public, max-age=60').send(keyList),
    );
    const attestationBucket = new TokenBucket(config.limits.attestationPerSecond, () => now().getTime());
    app.get(ATTESTATION_BUNDLE_PATH, async (request, reply) => {
      const nonce = parseNonce((request.query as Record<string, unknown>).nonce);
      if (!attestationBucket.take()) {
        void reply.header('retry-after', String(attestationBucket.retryAfterSeconds()));
        throw new TresorError('RATE_LIMITED', 'too many attestation requests; retry in a second');
      }
      return reply.header('cache-control', 'no-store').send(await bundles.build(nonce));
    });
    const openApi = JSON.stringify(gatewayOpenApi());
    app.get(OPENAPI_PATH, (_request, reply) =>
      reply.type('application/json').header('cache-control', 'public, max-age=300').send(openApi),
    );
    await ohttpRoute(app, {
      keys,
      replay: new ReplayCache(config.limits.replayWindowSeconds * 1000, config.limits.replayCacheEntries),
      api,
      now,
      bodyBytes: config.limits.ohttpBodyBytes,
      innerBodyBytes: config.limits.innerBodyBytes,
    });
    await app.register(adminRoutes, {
      prefix: ADMIN_PREFIX,
      keys: config.admin.keys,
      audience: config.admin.audience,
      windowSeconds: config.admin.requestWindowSeconds,
      clock,
      startedAt: now(),
      replay: new ReplayGuard(),
      audit,
      operations: gatewayAdminOperations({
        tenants,
        keys: apiKeys,
        policies,
        usage,
        keyStore,
        tenantKek: config.keys.tenantKek,
        authenticator,
        authorizer,
        now,
        status: { audit, auditRecords, keys: config.keys },
      }),
    });
    // The web console's static files at /console/, when the configuration names a build.
    if (config.console !== undefined) {
      await app.register(consolePlugin, {
        prefix: CONSOLE_PREFIX,
        build: await loadConsoleBuild(config.console.dir),
      });
    }
    server.addReadinessCheck('database', async () => {
      await db.query('SELECT 1 AS one');
    });
    server.addReadinessCheck('trust', async () => {
      await documents.current();
    });
    // Ready when a client's first request can be routed: an attested replica in rotation that
    // serves a model (a replica attested while still loading lists none until it is re-verified).
    server.addReadinessCheck('replicas', () =>
      pool.models().length > 0
        ? Promise.resolve()
        : Promise.reject(new Error('no attested replica serves a model yet')),
    );

    const url = await server.listen();
    const scheduler = deps.scheduler ?? timerScheduler;
    const ready = pool.verifyAll().then(() => undefined);
    const stopReverify = scheduler.every(config.serving.reverifyIntervalSeconds * 1000, async () => {
      await pool.verifyAll();
    });
    cleanup.push(() => {
      stopReverify();
      return Promise.resolve();
    });
    const stopCheckpoints = audit.scheduleCheckpoints(scheduler, (err) => {
      server.logger.error(
        { code: err instanceof TresorError ? err.code : 'INTERNAL_ERROR' },
        'audit checkpoint failed',
      );
    });
    cleanup.push(() => {
      stopCheckpoints();
      return Promise.resolve();
    });
    return {
      url,
      ready,
      server,
      pool,
      keyConfig: ohttpKey.config,
      audit,
      mesh: meshIdentity,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/**
 * Where the gateway's SQLite connection runs. The commits on the request path are the usage
 * records' group commits. At `usage.durability: power-loss` each one waits for a WAL fsync (0.5-2 ms
 * on a loaded machine), so the connection gets a worker thread of its own, as trust's does, and
 * the event loop serving requests never waits for the disk. At `process-crash` (the default) a
 * commit writes the WAL without an fsync, a few tens of microseconds for a batch of records; a
 * worker would cost more than it saves: a message each way per batch (about 0.1 ms of the event
 * loop's time) and a second V8 isolate (about 11 MiB of resident memory, bench/harness/notes.md
 * "Gateway memory"). Audit appends (administration only) fsync at either level.
 */
export function sqliteThreadFor(config: Pick<GatewayConfig, 'usage'>): 'inline' | 'worker' {
  return config.usage.durability === 'power-loss' ? 'worker' : 'inline';
}
