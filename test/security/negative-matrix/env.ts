import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair } from 'jose';
import { createSampleEvidence, SampleSigningKey } from '@tresor/attestation';
import { FileKeyStore, SecretKeyBytes, type KeyId } from '@tresor/keystore';
import {
  adminPlugin,
  AdminKeySet,
  ephemeralDocumentSigner,
  expectedReportData,
  generateAdminKey,
  InventoryStore,
  MemoryDocumentRepository,
  MemoryResourceRepository,
  primaryRuntimeData,
  ReferenceValueStore,
  requireReleasedWorkload,
  requireResident,
  resourcePath,
  ResourceStore,
  type AdminSigningKey,
  type TeePublicKeyJwk,
} from '@tresor/trust';
import { kbsWire, sessionCookieOf, type KbsWire, type WireResponse } from '../../support/kbs-wire.js';
import { startTrustFixture, type TrustFixture } from '../../support/trust-fixture.js';
import { startPlatform, type PlatformEnv } from './platform-env.js';

/**
 * What the attacks run against, built once for the whole matrix and only when a row needs it:
 * a trust service on loopback TLS (KBS, attestation service, Cedar resource policy, reference
 * values, residency inventory, signed admin API) with an injected clock, and a keystore-backed
 * resource store for key-state attacks. Everything is generated at run time.
 */

export const MEASUREMENT = new Uint8Array(48).fill(0x5a);
const MEASUREMENT_HEX = '5a'.repeat(48);
export const AUDIENCE = 'tresor-trust';
export const ADMIN_LIST = '/admin/v0/inventory/list';

/** Init-data naming a tenant: the TEE binds its digest, the token carries the tenant. */
export function initDataFor(tenant: string): string {
  return `algorithm = "sha384"\nversion = "0.1.0"\n\n[data]\ntresor-tenant = "${tenant}"\n`;
}

export interface TrustEnv {
  readonly fx: TrustFixture;
  readonly wire: KbsWire;
  /** The installation key the trust service trusts, and whose machine is in the inventory. */
  readonly sampleKey: SampleSigningKey;
  readonly admin: AdminSigningKey;
  /** Holds alice's key id with another key. */
  readonly impostor: AdminSigningKey;
  /** Moves the service's clock by `ms` (attacks that need time to pass move it, then move it back). */
  advance(ms: number): void;
  now(): Date;
  /** Removes every machine from the residency inventory until `restore` runs. */
  withEmptyInventory<T>(f: () => Promise<T>): Promise<T>;
  auth(tee?: string): Promise<{ cookie: string; nonce: string }>;
  attestation(options: {
    nonce: string;
    key?: TeePublicKeyJwk;
    boundKey?: TeePublicKeyJwk;
    signingKey?: SampleSigningKey;
    measurement?: Uint8Array;
  }): Promise<Record<string, unknown>>;
  attest(cookie: string, body: Record<string, unknown> | string): Promise<WireResponse>;
  /** auth + attest with good evidence. */
  attested(): Promise<{ cookie: string; token: string }>;
}

export interface KeyStateEnv {
  readonly keyStore: FileKeyStore;
  readonly kekId: KeyId;
  readonly resources: ResourceStore;
}

export interface MatrixEnv {
  trust(): Promise<TrustEnv>;
  keyState(): Promise<KeyStateEnv>;
  /** Trust, a real serving replica and a real gateway (platform-env.ts). */
  platform(): Promise<PlatformEnv>;
  close(): Promise<void>;
}

export async function ephemeralTeeKey(): Promise<TeePublicKeyJwk> {
  const { publicKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
  const jwk = await exportJWK(publicKey);
  return { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: jwk.x!, y: jwk.y! };
}

async function startTrust(): Promise<{ env: TrustEnv; close: () => Promise<void> }> {
  const sampleKey = SampleSigningKey.generate();
  let inventory = [
    { id: sampleKey.verifyKey.hex, kind: 'sample-machine' as const, jurisdiction: 'CH', site: 'test' },
  ];
  const admin = await generateAdminKey('alice');
  const impostor = await generateAdminKey('alice');
  let skewMs = 0;
  const clock = { now: () => new Date(Date.now() + skewMs) };
  const documentSigner = await ephemeralDocumentSigner('matrix-documents');
  const stores = { signer: documentSigner, issuer: AUDIENCE, clock };
  const fx = await startTrustFixture({
    now: clock.now,
    sampleKey,
    resources: {
      'default/key/model': new TextEncoder().encode('secret-default'),
      'other/key/model': new TextEncoder().encode('secret-other'),
      'acme/key/model': new TextEncoder().encode('secret-acme'),
    },
    config: {
      tokens: { lifetimeSeconds: 60 },
      resourcePolicy: [
        'permit(principal, action, resource) when { resource.repository == "default" };',
        'permit(principal, action, resource) when { principal has tenant && principal.tenant == resource.repository };',
      ].join('\n'),
    },
    referenceValues: {
      requireReleased: (workload) =>
        requireReleasedWorkload(
          [
            {
              component: 'serving',
              release: '1.0.0',
              tee: 'sample',
              measurements: { measurement: [MEASUREMENT_HEX] },
              imageDigests: [],
              initDataHashes: [],
              modelDigests: [],
            },
          ],
          workload,
        ),
    },
    residency: { requireResident: (ids) => requireResident({ hardware: inventory }, ids, 'CH') },
    plugins: [
      adminPlugin({
        keys: await AdminKeySet.parse([{ id: admin.id, jwk: admin.publicJwk }]),
        referenceValues: await ReferenceValueStore.open({
          ...stores,
          repository: new MemoryDocumentRepository(),
        }),
        inventory: await InventoryStore.open({ ...stores, repository: new MemoryDocumentRepository() }),
      }),
    ],
  });
  const wire = kbsWire(fx.url, fx.pki.ca);
  const env: TrustEnv = {
    fx,
    wire,
    sampleKey,
    admin,
    impostor,
    advance: (ms) => {
      skewMs += ms;
    },
    now: () => clock.now(),
    async withEmptyInventory(f) {
      const kept = inventory;
      inventory = [];
      try {
        return await f();
      } finally {
        inventory = kept;
      }
    },
    async auth(tee = 'sample') {
      const res = await wire.post(
        '/kbs/v0/auth',
        JSON.stringify({ version: '0.4.0', tee, 'extra-params': '' }),
      );
      if (res.status !== 200) throw new Error(`matrix setup: /auth answered ${res.status}`);
      return { cookie: sessionCookieOf(res), nonce: (res.json() as { nonce: string }).nonce };
    },
    async attestation({ nonce, key, boundKey, signingKey, measurement }) {
      const sent = key ?? (await ephemeralTeeKey());
      const reportData = await expectedReportData(primaryRuntimeData(boundKey ?? sent, nonce, ''));
      const evidence = createSampleEvidence({
        reportData,
        svn: 1,
        signingKey: signingKey ?? sampleKey,
        measurement: measurement ?? MEASUREMENT,
      });
      return {
        'runtime-data': { nonce, 'tee-pubkey': sent },
        'tee-evidence': {
          primary_evidence: JSON.parse(new TextDecoder().decode(evidence)) as unknown,
          additional_evidence: '',
        },
      };
    },
    attest: (cookie, body) =>
      wire.post('/kbs/v0/attest', typeof body === 'string' ? body : JSON.stringify(body), {
        'content-type': 'application/json',
        cookie,
      }),
    async attested() {
      const { cookie, nonce } = await env.auth();
      const res = await env.attest(cookie, await env.attestation({ nonce }));
      if (res.status !== 200)
        throw new Error(`matrix setup: good attestation answered ${res.status}: ${res.text}`);
      return { cookie, token: (res.json() as { token: string }).token };
    },
  };
  return {
    env,
    close: async () => {
      await wire.close();
      await fx.close();
    },
  };
}

async function startKeyState(): Promise<{ env: KeyStateEnv; close: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'tresor-matrix-'));
  const keyStore = await FileKeyStore.open({
    path: join(dir, 'keys'),
    passphrase: SecretKeyBytes.copyOf(new TextEncoder().encode('negative matrix only')),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
  const kekId = (await keyStore.createKek()).id;
  const resources = await ResourceStore.open({ keyStore, kekId, repository: new MemoryResourceRepository() });
  await resources.put(resourcePath('default', 'key', 'model'), new Uint8Array(32).fill(7));
  return {
    env: { keyStore, kekId, resources },
    close: async () => {
      await keyStore.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Lazily started environments, each at most once, all closed by `close()`. */
export function matrixEnv(): MatrixEnv {
  const closers: (() => Promise<void>)[] = [];
  const once = <T>(start: () => Promise<{ env: T; close: () => Promise<void> }>): (() => Promise<T>) => {
    let started: Promise<T> | undefined;
    return () =>
      (started ??= start().then(({ env, close }) => {
        closers.push(close);
        return env;
      }));
  };
  return {
    trust: once(startTrust),
    keyState: once(startKeyState),
    platform: once(() => startPlatform({ slowClients: true })),
    async close() {
      for (const close of closers.reverse()) await close();
    },
  };
}
