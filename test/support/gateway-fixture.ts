import { request as httpsRequest } from 'node:https';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DestinationStream } from 'pino';
import { parseReferenceValueSet } from '@tresor/attestation';
import { FileKeyStore, SecretKeyBytes, type KeyMetadata } from '@tresor/keystore';
import {
  documentPlugin,
  ephemeralDocumentSigner,
  generateAdminKey,
  InventoryStore,
  MemoryDocumentRepository,
  ReferenceValueStore,
  signAdminRequest,
  ADMIN_MEDIA_TYPE,
  type AdminSigningKey,
} from '@tresor/trust';
import { parseGatewayConfig, startGatewayService, type RunningGateway } from '@tresor/gateway';
import { startFakeReplica, type FakeReplica } from './fake-serving-replica.js';
import { createTestCa, issueTestCertificate } from './test-pki.js';
import { startTrustFixture, type TrustFixture } from './trust-fixture.js';

/**
 * TEST-ONLY: a gateway in local mode (sample TEE) in front of fake serving replicas, with a real
 * trust service publishing signed reference values (the replicas' measurement) and a residency
 * inventory (the sample machine), a file keystore, SQLite metadata and a signed-admin key.
 */
export const REPLICA_MEASUREMENT = 'ab'.repeat(48);
const PASSPHRASE_ENV = 'TRESOR_TEST_GATEWAY_PASSPHRASE';

export interface GatewayFixture {
  readonly gateway: RunningGateway;
  readonly url: string;
  readonly ca: string;
  readonly trust: TrustFixture;
  readonly replicas: FakeReplica[];
  readonly admin: AdminSigningKey;
  readonly stateDir: string;
  /** Shifts the gateway's clock. */
  advance(ms: number): void;
  /** Stops the gateway's clock (until `thaw`), so tests of rate limits do not depend on timing. */
  freeze(): void;
  thaw(): void;
  now(): Date;
  /** Sends a signed admin request and returns status and JSON answer. */
  adminCall(operation: string, request: unknown): Promise<{ status: number; json: Record<string, unknown> }>;
  /** An HTTPS request to the gateway (TLS 1.3, HTTP/1.1). */
  fetch(
    method: string,
    path: string,
    body?: { type: string; bytes: Uint8Array },
  ): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }>;
  close(): Promise<void>;
}

export interface GatewayFixtureOptions {
  readonly replicas?: number;
  readonly logDestination?: DestinationStream;
  readonly limits?: Record<string, number>;
}

/**
 * The gateway's development file keystore in `dir/keys.tresor`, its passphrase put in the environment
 * variable the gateway config will name, with its audit signing key and tenant KEK.
 */
export async function createGatewayKeyStore(
  dir: string,
  passphraseEnv: string,
  passphrase: string,
): Promise<{ auditKey: KeyMetadata; tenantKek: KeyMetadata }> {
  process.env[passphraseEnv] = passphrase;
  const keyStore = await FileKeyStore.open({
    path: join(dir, 'keys.tresor'),
    passphrase: SecretKeyBytes.copyOf(new TextEncoder().encode(passphrase)),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
  try {
    const auditKey = await keyStore.createSigningKey('ES256', { label: 'gateway audit' });
    const tenantKek = await keyStore.createKek({ label: 'gateway tenants' });
    return { auditKey, tenantKek };
  } finally {
    await keyStore.close();
  }
}

export async function startGatewayFixture(options: GatewayFixtureOptions = {}): Promise<GatewayFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'tresor-gateway-'));
  const clock: { offsetMs: number; frozenAt: number | undefined } = { offsetMs: 0, frozenAt: undefined };
  const now = (): Date => new Date((clock.frozenAt ?? Date.now()) + clock.offsetMs);
  const signer = await ephemeralDocumentSigner('documents-1');
  const documents = { signer, issuer: 'tresor-trust', clock: { now: () => new Date() } };
  const referenceValues = await ReferenceValueStore.open({
    ...documents,
    repository: new MemoryDocumentRepository(),
  });
  const inventory = await InventoryStore.open({ ...documents, repository: new MemoryDocumentRepository() });
  const trust = await startTrustFixture({ plugins: [documentPlugin(referenceValues, inventory)] });
  await referenceValues.put(
    parseReferenceValueSet({
      component: 'serving',
      release: '1.0.0',
      tee: 'sample',
      measurements: { measurement: [REPLICA_MEASUREMENT] },
    }),
  );
  await inventory.put([
    { id: trust.sampleKey.verifyKey.hex, kind: 'sample-machine', jurisdiction: 'CH', site: 'test' },
  ]);

  const mesh = await createTestCa('mesh');
  const meshCa = mesh.cert.toString('pem');
  const replicas: FakeReplica[] = [];
  for (let i = 0; i < (options.replicas ?? 2); i++) {
    const tls = await issueTestCertificate(mesh, 'localhost', 'server', `1${i}`);
    replicas.push(
      await startFakeReplica({
        ...tls,
        clientCa: meshCa,
        sampleKey: trust.sampleKey,
        measurement: REPLICA_MEASUREMENT,
        id: `serving-${i}`,
      }),
    );
  }
  const meshClient = await issueTestCertificate(mesh, 'gateway', 'client', '20');
  const gatewayTls = await issueTestCertificate(mesh, 'localhost', 'server', '21');

  const { auditKey, tenantKek } = await createGatewayKeyStore(
    dir,
    PASSPHRASE_ENV,
    'gateway test passphrase only',
  );

  const files: Record<string, string> = {
    'tls.crt': gatewayTls.cert,
    'tls.key': gatewayTls.key,
    'mesh-ca.pem': meshCa,
    'mesh.crt': meshClient.cert,
    'mesh.key': meshClient.key,
    'trust-ca.pem': trust.pki.ca,
    'sample.jwk': JSON.stringify(trust.sampleKey.exportJwk()),
    'sample.pub': trust.sampleKey.verifyKey.hex,
  };
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text, { mode: 0o600 });
  const admin = await generateAdminKey('ops', 'EdDSA');
  const config = await parseGatewayConfig(
    {
      mode: 'local',
      server: {
        port: 0,
        tls: { certFile: 'tls.crt', keyFile: 'tls.key' },
        logLevel: 'info',
        shutdownGraceMs: 100,
      },
      stateDir: 'state',
      keystore: { backend: 'file', path: 'keys.tresor', passphraseEnv: PASSPHRASE_ENV, scryptLog2N: 14 },
      keys: { auditCheckpoint: auditKey.id, tenantKek: tenantKek.id },
      trust: { url: trust.url, caFile: 'trust-ca.pem' },
      serving: {
        replicas: replicas.map((r) => ({ url: r.url })),
        meshCaFile: 'mesh-ca.pem',
        mesh: { certFile: 'mesh.crt', keyFile: 'mesh.key' },
        sampleVerifyKeyFile: 'sample.pub',
        reverifyIntervalSeconds: 3600,
        upstreamTimeoutMs: 5000,
      },
      tee: { kind: 'sample', signingKeyFile: 'sample.jwk', measurement: 'cd'.repeat(48) },
      limits: options.limits ?? {},
      admin: { keys: [{ id: admin.id, jwk: admin.publicJwk }] },
    },
    dir,
  );
  const gateway = await startGatewayService(config, {
    env: process.env,
    now,
    ...(options.logDestination === undefined ? {} : { logDestination: options.logDestination }),
    // Tests drive re-attestation themselves.
    scheduler: { every: () => () => undefined },
  });
  await gateway.ready;
  const fetchGateway: GatewayFixture['fetch'] = (method, path, body) =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(
        new URL(path, gateway.url),
        {
          method,
          ca: meshCa,
          minVersion: 'TLSv1.3',
          headers:
            body === undefined ? {} : { 'content-type': body.type, 'content-length': body.bytes.length },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body === undefined ? undefined : Buffer.from(body.bytes));
    });
  return {
    gateway,
    url: gateway.url,
    ca: meshCa,
    trust,
    replicas,
    admin,
    stateDir: join(dir, 'state'),
    advance(ms) {
      clock.offsetMs += ms;
    },
    freeze() {
      clock.frozenAt = Date.now();
    },
    thaw() {
      clock.frozenAt = undefined;
    },
    now,
    async adminCall(operation, request) {
      const path = `/admin/v0/${operation}`;
      const jws = await signAdminRequest(admin, { audience: 'tresor-gateway', path, request, now: now() });
      const answer = await fetchGateway('POST', path, {
        type: ADMIN_MEDIA_TYPE,
        bytes: new TextEncoder().encode(jws),
      });
      return {
        status: answer.status,
        json: JSON.parse(answer.body.toString('utf8')) as Record<string, unknown>,
      };
    },
    fetch: fetchGateway,
    async close() {
      await gateway.close();
      for (const r of replicas) await r.close();
      await trust.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
