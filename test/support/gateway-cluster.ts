import { randomBytes } from 'node:crypto';
import { createHash } from 'node:crypto';
import { Agent, request as httpsRequest } from 'node:https';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { TLSSocket } from 'node:tls';
import type { FetchFunction, TlsBinding } from '@tresor/sdk';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DestinationStream } from 'pino';
import { ModelKey } from '@tresor/crypto';
import { sealModelFile } from '@tresor/crypto/node';
import { ADMIN_MEDIA_TYPE, generateAdminKey, signAdminRequest, type AdminSigningKey } from '@tresor/trust';
import { parseGatewayConfig, startGatewayService, type RunningGateway } from '@tresor/gateway';
import { startServingService, type RunningServingService } from '@tresor/serving';
import {
  GATEWAY_MEASUREMENT,
  SERVING_MEASUREMENT,
  startServingTrust,
  type ServingTrust,
} from './serving-trust.js';
import { createGatewayKeyStore } from './gateway-fixture.js';
import { createTestCa, issueTestCertificate, type TestCa } from './test-pki.js';

/**
 * TEST-ONLY: the real platform in one process — a trust service (KBS, mesh CA, signed reference
 * values and inventory), real serving replicas (sealed model released through the KBS, echo
 * engine, sample TEE, mesh certificates) and real gateways (mesh identity attested to trust,
 * replicas verified by the SDK verifier) — for gateway tests, the scale-out test and the bench.
 */
export const CLUSTER_MODEL = 'echo-small';
const MODEL_KEY_PATH = `models/key/${CLUSTER_MODEL}`;
const PASSPHRASE_ENV = 'TRESOR_TEST_CLUSTER_PASSPHRASE';

export interface GatewayCluster {
  readonly trust: ServingTrust;
  readonly dir: string;
  readonly admin: AdminSigningKey;
  /** CA of every gateway's listener certificate. */
  readonly gatewayCa: string;
  /** The model key the trust service releases (canary tests search for it). */
  readonly modelKey: Uint8Array;
  /** Starts a serving replica (echo engine); resolves once it is ready. */
  startServing(options?: {
    readonly responseTokens?: number;
    readonly maxConcurrent?: number;
    readonly logDestination?: DestinationStream;
    readonly logLevel?: 'silent' | 'info';
  }): Promise<RunningServingService>;
  /**
   * Starts a gateway in front of `replicaUrls` (all sharing one keystore, so several gateways on
   * one PostgreSQL can open each tenant's data key); resolves once its replicas were attested once.
   */
  startGateway(options: GatewayOptions): Promise<RunningGateway>;
  close(): Promise<void>;
}

export interface GatewayOptions {
  readonly replicaUrls: readonly string[];
  readonly databaseUrl?: string;
  readonly databaseSchema?: string;
  readonly redisUrl?: string;
  readonly limits?: Record<string, number>;
  readonly logDestination?: DestinationStream;
  readonly logLevel?: 'silent' | 'info';
  readonly reverifyIntervalSeconds?: number;
  /** A clock for the gateway (default: the real one). */
  readonly now?: () => Date;
  /** `server.requestTimeoutMs` (slow-body tests). */
  readonly requestTimeoutMs?: number;
}

export async function startGatewayCluster(
  options: { readonly trustLogDestination?: DestinationStream } = {},
): Promise<GatewayCluster> {
  const modelKey = new Uint8Array(randomBytes(32));
  const trust = await startServingTrust({
    resources: { [MODEL_KEY_PATH]: modelKey },
    ...(options.trustLogDestination === undefined ? {} : { logDestination: options.trustLogDestination }),
  });
  const dir = await mkdtemp(join(tmpdir(), 'tresor-cluster-'));
  const input = join(dir, 'model.bin');
  const sealedModel = join(dir, `${CLUSTER_MODEL}.tresor`);
  await writeFile(input, randomBytes(4096));
  await sealModelFile({
    input,
    output: sealedModel,
    key: await ModelKey.import(modelKey),
    keyId: `kbs:///${MODEL_KEY_PATH}`,
    chunkSize: 4096,
    durable: false,
  });

  const tlsCa: TestCa = await createTestCa('gateway-listener');
  const gatewayCa = tlsCa.cert.toString('pem');
  const listener = await issueTestCertificate(tlsCa, 'localhost', 'server', '30');
  const { auditKey, tenantKek } = await createGatewayKeyStore(
    dir,
    PASSPHRASE_ENV,
    'cluster test passphrase only',
  );
  const files: Record<string, string> = {
    'tls.crt': listener.cert,
    'tls.key': listener.key,
    'sample.pub': trust.sampleKey.verifyKey.hex,
  };
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text, { mode: 0o600 });
  const admin = await generateAdminKey('ops', 'EdDSA');

  const servings: RunningServingService[] = [];
  const gateways: RunningGateway[] = [];
  let counter = 0;
  return {
    trust,
    dir,
    admin,
    gatewayCa,
    modelKey,
    async startServing(options = {}) {
      const n = counter++;
      const serving = await startServingService(
        {
          mode: 'local',
          replicaId: `serving-${n}`,
          listen: { host: '127.0.0.1', port: 0 },
          trust: { url: trust.url, caFile: trust.caFile },
          tee: { source: 'sample', signingKeyFile: trust.sampleKeyFile, measurement: SERVING_MEASUREMENT },
          models: [{ id: CLUSTER_MODEL, file: sealedModel, key: `kbs:///${MODEL_KEY_PATH}` }],
          engine: {
            kind: 'echo',
            ...(options.responseTokens === undefined ? {} : { responseTokens: options.responseTokens }),
          },
          concurrency: { maxConcurrent: options.maxConcurrent ?? 16, maxQueue: 1024 },
          workDir: join(dir, `work-${n}`),
          logLevel: options.logLevel ?? 'silent',
          shutdownGraceMs: 0,
        },
        options.logDestination === undefined ? {} : { logDestination: options.logDestination },
      );
      servings.push(serving);
      await serving.ready;
      return serving;
    },
    async startGateway(options) {
      const n = counter++;
      const stateDir = join(dir, `gateway-${n}`);
      await mkdir(stateDir, { recursive: true });
      const config = await parseGatewayConfig(
        {
          mode: 'local',
          server: {
            port: 0,
            tls: { certFile: 'tls.crt', keyFile: 'tls.key' },
            logLevel: options.logLevel ?? 'silent',
            shutdownGraceMs: 0,
            ...(options.requestTimeoutMs === undefined ? {} : { requestTimeoutMs: options.requestTimeoutMs }),
          },
          stateDir,
          ...(options.databaseUrl === undefined
            ? {}
            : {
                database: {
                  url: options.databaseUrl,
                  ...(options.databaseSchema === undefined ? {} : { schema: options.databaseSchema }),
                },
              }),
          ...(options.redisUrl === undefined ? {} : { redis: { url: options.redisUrl } }),
          keystore: { backend: 'file', path: 'keys.tresor', passphraseEnv: PASSPHRASE_ENV, scryptLog2N: 14 },
          keys: { auditCheckpoint: auditKey.id, tenantKek: tenantKek.id },
          trust: { url: trust.url, caFile: trust.caFile },
          serving: {
            replicas: options.replicaUrls.map((url) => ({ url })),
            mesh: { source: 'trust' },
            sampleVerifyKeyFile: 'sample.pub',
            reverifyIntervalSeconds: options.reverifyIntervalSeconds ?? 3600,
            upstreamTimeoutMs: 10_000,
          },
          tee: { kind: 'sample', signingKeyFile: trust.sampleKeyFile, measurement: GATEWAY_MEASUREMENT },
          limits: options.limits ?? {},
          admin: { keys: [{ id: admin.id, jwk: admin.publicJwk }] },
        },
        dir,
      );
      const gateway = await startGatewayService(config, {
        env: process.env,
        ...(options.now === undefined ? {} : { now: options.now }),
        ...(options.logDestination === undefined ? {} : { logDestination: options.logDestination }),
        scheduler: { every: () => () => undefined },
      });
      gateways.push(gateway);
      await gateway.ready;
      return gateway;
    },
    async close() {
      for (const g of gateways) await g.close().catch(() => undefined);
      for (const s of servings) await s.close().catch(() => undefined);
      await trust.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** The trust service's document-signing keys (JWKs), fetched over TLS with the fixture's own CA. */
export function trustDocumentKeys(
  trust: Pick<ServingTrust, 'url' | 'caPem'>,
): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(`${trust.url}/trust/v0/document-keys`, { ca: trust.caPem }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (p: Buffer) => parts.push(p));
      res.on('end', () => {
        resolve(
          (JSON.parse(Buffer.concat(parts).toString('utf8')) as { keys: Record<string, unknown>[] }).keys,
        );
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** A signed admin request to a gateway; status and JSON answer. */
/**
 * Creates `tenant` through the gateway's signed admin API with the given limits, a policy permitting
 * the tenant everything, and an API key with the same limits; answers the key.
 */
export async function provisionTenant(
  gatewayUrl: string,
  cluster: Pick<GatewayCluster, 'gatewayCa' | 'admin'>,
  tenant: string,
  limits: { requestsPerMinute: number; tokensPerDay: number },
): Promise<string> {
  const admin = async (operation: string, request: unknown): Promise<Record<string, unknown>> => {
    const answer = await gatewayAdminCall(gatewayUrl, cluster.gatewayCa, cluster.admin, operation, request);
    if (answer.status !== 200) throw new Error(`${operation}: ${JSON.stringify(answer.json)}`);
    return answer.json;
  };
  await admin('tenants/create', { id: tenant, ...limits });
  await admin('policies/set', {
    tenant,
    policy: `permit(principal in Gateway::Tenant::"${tenant}", action, resource);`,
  });
  return (await admin('api-keys/create', { tenant, ...limits })).key as string;
}

export async function gatewayAdminCall(
  gatewayUrl: string,
  ca: string,
  admin: AdminSigningKey,
  operation: string,
  request: unknown,
): Promise<{ status: number; json: Record<string, unknown> }> {
  const path = `/admin/v0/${operation}`;
  const jws = await signAdminRequest(admin, { audience: 'tresor-gateway', path, request, now: new Date() });
  const body = Buffer.from(jws);
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      new URL(path, gatewayUrl),
      {
        method: 'POST',
        ca,
        minVersion: 'TLSv1.3',
        agent: false,
        headers: { 'content-type': ADMIN_MEDIA_TYPE, 'content-length': body.length },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          resolve({
            status: res.statusCode ?? 0,
            json: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * TEST-ONLY: a fetch over node:https with kept-alive connections (createNodeTransport opens one
 * connection per request, which dominates a run of thousands of requests on two cores), reporting
 * each connection's TLS key so the SDK still compares it with the attested one.
 */
export function keepAliveTransport(ca: string): { fetch: FetchFunction; tls: TlsBinding; close(): void } {
  const agent = new Agent({ keepAlive: true, maxSockets: 64, ca, minVersion: 'TLSv1.3' });
  const spkiOf = new WeakMap<TLSSocket, string>();
  const observed = new WeakMap<Response, string>();
  const pins = new Map<string, string>();
  const fetch: FetchFunction = async (input, init) => {
    const request = new Request(input, init);
    const body = request.body === null ? null : Buffer.from(await request.arrayBuffer());
    const headers: Record<string, string> = {};
    request.headers.forEach((value, name) => (headers[name] = value));
    if (body !== null) headers['content-length'] = String(body.length);
    return new Promise<Response>((resolve, reject) => {
      const req = httpsRequest(
        request.url,
        { method: request.method, headers, agent },
        (res: IncomingMessage) => {
          const out = new Headers();
          for (const [name, value] of Object.entries(res.headers)) {
            if (Array.isArray(value)) for (const v of value) out.append(name, v);
            else if (value !== undefined) out.set(name, value);
          }
          const response = new Response(Readable.toWeb(res) as ReadableStream<Uint8Array>, {
            status: res.statusCode ?? 502,
            headers: out,
          });
          const socket = res.socket;
          if (socket instanceof TLSSocket) {
            let spki = spkiOf.get(socket);
            if (spki === undefined) {
              const cert = socket.getPeerX509Certificate();
              spki =
                cert === undefined
                  ? undefined
                  : createHash('sha256')
                      .update(cert.publicKey.export({ type: 'spki', format: 'der' }))
                      .digest('hex');
              if (spki !== undefined) spkiOf.set(socket, spki);
            }
            if (spki !== undefined) observed.set(response, spki);
          }
          resolve(response);
        },
      );
      req.on('error', reject);
      req.end(body ?? undefined);
    });
  };
  return {
    fetch,
    tls: {
      observed: (response) => observed.get(response),
      pin: (origin, key) => {
        pins.set(origin, key.toLowerCase());
      },
    },
    close: () => {
      agent.destroy();
    },
  };
}
