import type { DestinationStream } from 'pino';
import 'reflect-metadata';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { SampleSigningKey, sampleMachineId } from '@tresor/attestation';
import {
  AdminKeySet,
  ephemeralDocumentSigner,
  generateAdminKey,
  InventoryStore,
  MemoryDocumentRepository,
  MeshCa,
  parseHardwareEntries,
  parseReferenceValueSet,
  ReferenceValueStore,
  trustPlugins,
  exportAdminKey,
  type AdminSigningKey,
  type CaSigner,
} from '@tresor/trust';
import type { JWK } from 'jose';
import { startTrustFixture, type TrustFixture } from './trust-fixture.js';

x509.cryptoProvider.set(globalThis.crypto);

/**
 * TEST-ONLY: a trust service as a serving replica meets it in a deployment — KBS with a Cedar
 * resource policy, reference values and a residency inventory (published as signed documents and
 * enforced at attestation), the mesh CA and the signed admin API — on loopback TLS, with a sample
 * TEE installation key whose key file a serving configuration can name.
 */
export interface ServingTrust {
  readonly trust: TrustFixture;
  readonly url: string;
  /** PEM CA of the trust service's TLS certificate, and a file holding it. */
  readonly caPem: string;
  readonly caFile: string;
  /** The sample TEE key file (private JWK) serving configs name. */
  readonly sampleKeyFile: string;
  readonly sampleKey: SampleSigningKey;
  readonly referenceValues: ReferenceValueStore;
  readonly inventory: InventoryStore;
  readonly meshCa: MeshCa;
  readonly admin: AdminSigningKey;
  readonly adminKeyFile: string;
  readonly dir: string;
  /** A mesh certificate for a workload released as `component` (a gateway, by default). */
  meshClient(component?: string): Promise<{ readonly cert: string; readonly key: string }>;
  close(): Promise<void>;
}

/** The measurement serving replicas report in these tests (96 hex digits). */
export const SERVING_MEASUREMENT = 'a5'.repeat(48);
export const GATEWAY_MEASUREMENT = 'b6'.repeat(48);
export const PERMIT_ALL = 'permit(principal, action, resource);';

export interface ServingTrustOptions {
  /** Resources stored before start, by `repository/type/tag`. */
  readonly resources?: Readonly<Record<string, Uint8Array>>;
  readonly resourcePolicy?: string;
  /** Model digests the serving release may load; empty = any. */
  readonly modelDigests?: readonly string[];
  /** List the sample machine in the residency inventory (default true). */
  readonly resident?: boolean;
  /** The serving measurement the reference values release (default SERVING_MEASUREMENT). */
  readonly releasedMeasurement?: string;
  /** Where the trust service logs (default: its fixture's). */
  readonly logDestination?: DestinationStream;
}

/** A fresh P-256 key and a CSR for it, as a mesh workload would make them. */
async function certificationRequestFor(): Promise<{ csr: string; keyPem: string; teePublicKey: JWK }> {
  const algorithm = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
  const keys = await crypto.subtle.generateKey(algorithm, true, ['sign', 'verify']);
  const jwk = await crypto.subtle.exportKey('jwk', keys.publicKey);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=client',
    keys,
    signingAlgorithm: algorithm,
  });
  const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey)).toString('base64');
  return {
    csr: csr.toString('pem'),
    keyPem: `-----BEGIN PRIVATE KEY-----\n${der.replace(/.{64}/g, '$&\n')}\n-----END PRIVATE KEY-----\n`,
    teePublicKey: { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: jwk.x ?? '', y: jwk.y ?? '' },
  };
}

async function testCaSigner(): Promise<CaSigner> {
  const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
    'sign',
    'verify',
  ]);
  const jwk = await crypto.subtle.exportKey('jwk', keys.publicKey);
  return {
    keyId: 'test-mesh-ca',
    publicJwk: { kty: 'EC', crv: 'P-256', x: jwk.x ?? '', y: jwk.y ?? '' },
    sign: async (message) =>
      new Uint8Array(
        await crypto.subtle.sign(
          { name: 'ECDSA', hash: 'SHA-256' },
          keys.privateKey,
          new Uint8Array(message),
        ),
      ),
  } as CaSigner;
}

export async function startServingTrust(options: ServingTrustOptions = {}): Promise<ServingTrust> {
  const dir = await mkdtemp(join(tmpdir(), 'tresor-serving-trust-'));
  const sampleKey = SampleSigningKey.generate();
  const clock = { now: () => new Date() };
  const documents = {
    signer: await ephemeralDocumentSigner('test-documents'),
    issuer: 'tresor-trust',
    clock,
  };
  const referenceValues = await ReferenceValueStore.open({
    ...documents,
    repository: new MemoryDocumentRepository(),
  });
  const inventory = await InventoryStore.open({ ...documents, repository: new MemoryDocumentRepository() });
  await referenceValues.put(
    parseReferenceValueSet({
      component: 'serving',
      release: '1.0.0',
      tee: 'sample',
      measurements: { measurement: [options.releasedMeasurement ?? SERVING_MEASUREMENT] },
      modelDigests: [...(options.modelDigests ?? [])],
    }),
  );
  await referenceValues.put(
    parseReferenceValueSet({
      component: 'gateway',
      release: '1.0.0',
      tee: 'sample',
      measurements: { measurement: [GATEWAY_MEASUREMENT] },
    }),
  );
  const machine = sampleMachineId(sampleKey.verifyKey);
  await inventory.replace(
    parseHardwareEntries([
      {
        id: options.resident === false ? 'f00d'.repeat(16) : machine,
        kind: 'sample-machine',
        jurisdiction: 'CH',
      },
    ]),
  );
  const meshCa = await MeshCa.open({
    signer: await testCaSigner(),
    policy: {
      requireReleased: (workload, component) => referenceValues.requireReleased(workload, component),
      requireResident: (ids) => inventory.requireResident(ids),
    },
    audit: { append: () => Promise.resolve() },
    clock,
    trustDomain: 'tresor.local',
    certificateLifetimeSeconds: 3600,
  });
  const admin = await generateAdminKey('test-admin');
  const trust = await startTrustFixture({
    sampleKey,
    referenceValues,
    residency: inventory,
    ...(options.resources === undefined ? {} : { resources: options.resources }),
    ...(options.logDestination === undefined ? {} : { logDestination: options.logDestination }),
    config: { resourcePolicy: options.resourcePolicy ?? PERMIT_ALL },
    plugins: trustPlugins({
      referenceValues,
      inventory,
      meshCa,
      adminKeys: await AdminKeySet.parse([{ id: admin.id, jwk: admin.publicJwk }]),
      adminRequestWindowSeconds: 300,
    }),
  });
  const caFile = join(dir, 'trust-ca.pem');
  const sampleKeyFile = join(dir, 'sample-tee.jwk');
  const adminKeyFile = join(dir, 'admin.jwk');
  await writeFile(caFile, trust.pki.ca);
  await writeFile(sampleKeyFile, JSON.stringify(sampleKey.exportJwk()), { mode: 0o600 });
  await writeFile(adminKeyFile, JSON.stringify(await exportAdminKey(admin)), { mode: 0o600 });
  return {
    trust,
    url: trust.url,
    caPem: trust.pki.ca,
    caFile,
    sampleKeyFile,
    sampleKey,
    referenceValues,
    inventory,
    meshCa,
    admin,
    adminKeyFile,
    dir,
    async meshClient(component = 'gateway') {
      const request = await certificationRequestFor();
      const issued = await meshCa.issue(
        { csr: request.csr, component },
        {
          tee: 'sample',
          measurements: { measurement: component === 'gateway' ? GATEWAY_MEASUREMENT : SERVING_MEASUREMENT },
          teePublicKey: request.teePublicKey,
          hardwareIds: [machine],
          tenant: null,
        },
      );
      return { cert: issued.certificatePem, key: request.keyPem };
    },
    async close() {
      await trust.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
