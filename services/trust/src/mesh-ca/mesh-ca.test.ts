import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, connect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import fc from 'fast-check';
import type { JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { utf8Encode } from '@tresor/crypto';
import { FileKeyStore, SecretKeyBytes } from '@tresor/keystore';
import {
  AuditLog,
  SqlAuditRepository,
  keyStoreCheckpointSigner,
  openMetadataDatabase,
  type SqlClient,
  type StoredAuditRow,
} from '@tresor/storage';
import { parseHardwareEntries } from '../inventory/residency-inventory.js';
import { requireResident } from '../inventory/residency-check.js';
import { requireReleasedWorkload } from '../reference-values/match-reference-values.js';
import { parseReferenceValueSet } from '../reference-values/reference-value-set.js';
import type { AttestedWorkload } from './attested-workload.js';
import { keyStoreCaSigner } from './ca-signer.js';
import { MAX_CSR_LENGTH, parseCertificationRequest } from './certification-request.js';
import { MeshCa, type MeshCaPolicy } from './mesh-ca.js';
import { parseMeshSpiffeId } from './spiffe-id.js';

x509.cryptoProvider.set(globalThis.crypto);

const EC = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const NOW = new Date('2026-03-01T12:00:00Z');
const clock = { now: () => NOW };
const GATEWAY_MEASUREMENT = '11'.repeat(48);
const SERVING_MEASUREMENT = '22'.repeat(48);
const CHIP = 'c0ffee'.repeat(8);

const policy: MeshCaPolicy = {
  requireReleased: (workload, component) =>
    requireReleasedWorkload(
      [
        parseReferenceValueSet({
          component: 'gateway',
          release: '1.0.0',
          tee: 'snp',
          measurements: { measurement: [GATEWAY_MEASUREMENT] },
        }),
        parseReferenceValueSet({
          component: 'serving',
          release: '2.0.0',
          tee: 'snp',
          measurements: { measurement: [SERVING_MEASUREMENT] },
        }),
      ],
      workload,
      component,
    ),
  requireResident: (ids) =>
    requireResident(
      { hardware: parseHardwareEntries([{ id: CHIP, kind: 'snp-chip', jurisdiction: 'CH' }]) },
      ids,
    ),
};

interface Workload {
  readonly keys: CryptoKeyPair;
  readonly attested: AttestedWorkload;
  csr(keys?: CryptoKeyPair): Promise<string>;
  privateKeyPem(): Promise<string>;
}

/** A TEE as the KBS sees it: an EC key pair whose public half is the runtime data's `tee-pubkey`. */
async function workload(measurement: string, tenant: string | null = 'acme'): Promise<Workload> {
  const keys = await crypto.subtle.generateKey(EC, true, ['sign', 'verify']);
  const jwk = await crypto.subtle.exportKey('jwk', keys.publicKey);
  const teePublicKey: JWK = { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: jwk.x!, y: jwk.y! };
  return {
    keys,
    attested: { tee: 'snp', measurements: { measurement }, teePublicKey, hardwareIds: [CHIP], tenant },
    csr: async (with_ = keys) =>
      (
        await x509.Pkcs10CertificateRequestGenerator.create({
          name: 'CN=ignored',
          keys: with_,
          signingAlgorithm: EC,
        })
      ).toString('pem'),
    privateKeyPem: async () => {
      const der = Buffer.from(await crypto.subtle.exportKey('pkcs8', keys.privateKey));
      return `-----BEGIN PRIVATE KEY-----\n${der.toString('base64')}\n-----END PRIVATE KEY-----\n`;
    },
  };
}

let dir: string;
let store: FileKeyStore;
let db: SqlClient;
let audit: AuditLog;
let ca: MeshCa;

async function auditRows(): Promise<StoredAuditRow[]> {
  return new SqlAuditRepository(db).read((reader) => reader.records(0, 1000));
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'no error',
    (err: unknown) => (isTresorError(err) ? err.code : `not a TresorError: ${String(err)}`),
  );
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-mesh-'));
  store = await FileKeyStore.open({
    path: join(dir, 'keys.json'),
    passphrase: SecretKeyBytes.copyOf(utf8Encode('correct horse battery')),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
  const caKey = await store.createSigningKey('ES256', { label: 'mesh CA' });
  const auditKey = await store.createSigningKey('ES256', { label: 'audit' });
  db = await openMetadataDatabase({ kind: 'sqlite', file: ':memory:' });
  audit = new AuditLog(new SqlAuditRepository(db), {
    signer: await keyStoreCheckpointSigner(store, auditKey.id),
    clock,
  });
  ca = await MeshCa.open({
    signer: await keyStoreCaSigner(store, caKey.id),
    policy,
    audit,
    clock,
    trustDomain: 'tresor.local',
    certificateLifetimeSeconds: 900,
  });
});
afterAll(async () => {
  await db.close();
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

describe('MeshCa', () => {
  it('issues a short-lived certificate for the attested key, named by its released component and tenant', async () => {
    const gateway = await workload(GATEWAY_MEASUREMENT);
    const issued = await ca.issue({ csr: await gateway.csr() }, gateway.attested);
    expect(issued.spiffeId).toBe('spiffe://tresor.local/gateway/acme');
    expect(issued.release).toEqual({ component: 'gateway', release: '1.0.0', tee: 'snp' });
    expect(issued.notAfter.getTime() - NOW.getTime()).toBe(900_000);

    const cert = new x509.X509Certificate(issued.certificatePem);
    const caCert = new x509.X509Certificate(issued.caCertificatePem);
    expect(await cert.verify({ publicKey: caCert.publicKey, date: NOW })).toBe(true);
    expect(await caCert.verify({ date: NOW })).toBe(true);
    expect(cert.issuer).toBe(caCert.subject);
    expect(cert.serialNumber.toLowerCase()).toBe(issued.serialNumber);
    expect(cert.notBefore.getTime()).toBeLessThan(NOW.getTime());
    const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
    expect(san?.names.toJSON()).toEqual([{ type: 'url', value: 'spiffe://tresor.local/gateway/acme' }]);
    expect(parseMeshSpiffeId(issued.spiffeId)).toEqual({
      trustDomain: 'tresor.local',
      component: 'gateway',
      tenant: 'acme',
    });
    expect(cert.getExtension(x509.BasicConstraintsExtension)?.ca).toBe(false);
    expect(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages).toEqual([
      x509.ExtendedKeyUsage.serverAuth,
      x509.ExtendedKeyUsage.clientAuth,
    ]);
    // The certified key is the workload's own key.
    const certified = await crypto.subtle.exportKey('jwk', await cert.publicKey.export());
    expect([certified.x, certified.y]).toEqual([
      gateway.attested.teePublicKey.x,
      gateway.attested.teePublicKey.y,
    ]);
    expect(caCert.getExtension(x509.BasicConstraintsExtension)).toMatchObject({ ca: true, pathLength: 0 });
  });

  it('lets a gateway and a serving workload set up mutual TLS with their certificates', async () => {
    const gateway = await workload(GATEWAY_MEASUREMENT);
    const serving = await workload(SERVING_MEASUREMENT, null);
    // Real time for the handshake: the certificates must be valid now, so they are issued now.
    const liveCa = await MeshCa.open({
      signer: await keyStoreCaSigner(store, (await store.createSigningKey('ES384')).id),
      policy,
      audit,
      clock: { now: () => new Date() },
      trustDomain: 'tresor.local',
      certificateLifetimeSeconds: 300,
    });
    const g = await liveCa.issue({ csr: await gateway.csr(), component: 'gateway' }, gateway.attested);
    const s = await liveCa.issue({ csr: await serving.csr(), component: 'serving' }, serving.attested);
    expect(s.spiffeId).toBe('spiffe://tresor.local/serving/_');
    const server = createServer({
      cert: s.certificatePem,
      key: await serving.privateKeyPem(),
      ca: liveCa.caCertificatePem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    });
    const peerSeen = new Promise<string | undefined>((resolve) => {
      server.on('secureConnection', (socket: TLSSocket) => {
        resolve(socket.getPeerCertificate().subjectaltname);
        socket.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const serverSeenByClient = await handshake(
        port,
        g.certificatePem,
        await gateway.privateKeyPem(),
        liveCa.caCertificatePem,
        s.spiffeId,
      );
      expect(serverSeenByClient).toBe(`URI:${s.spiffeId}`);
      expect(await peerSeen).toBe(`URI:${g.spiffeId}`);
      // A certificate from another CA is refused by the serving side's mTLS check.
      const rogue = await MeshCa.open({
        signer: await keyStoreCaSigner(store, (await store.createSigningKey('ES256')).id),
        policy,
        audit,
        clock: { now: () => new Date() },
        trustDomain: 'tresor.local',
        certificateLifetimeSeconds: 300,
      });
      const forged = await rogue.issue({ csr: await gateway.csr() }, gateway.attested);
      await expect(
        handshake(
          port,
          forged.certificatePem,
          await gateway.privateKeyPem(),
          liveCa.caCertificatePem,
          s.spiffeId,
          true,
        ),
      ).rejects.toThrow();
    } finally {
      server.close();
    }
  });

  it('refuses a CSR for another key than the attested one, and audits the refusal', async () => {
    const gateway = await workload(GATEWAY_MEASUREMENT);
    const intruder = await crypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const before = (await auditRows()).length;
    expect(await codeOf(ca.issue({ csr: await gateway.csr(intruder) }, gateway.attested))).toBe(
      'MESH_KEY_NOT_ATTESTED',
    );
    const rows = await auditRows();
    expect(rows).toHaveLength(before + 1);
    expect(rows.at(-1)).toMatchObject({ action: 'mesh.certificate.issue', outcome: 'denied' });
  });

  it('refuses hardware outside the inventory, unreleased measurements and a component the workload is not', async () => {
    const gateway = await workload(GATEWAY_MEASUREMENT);
    const csr = await gateway.csr();
    expect(await codeOf(ca.issue({ csr }, { ...gateway.attested, hardwareIds: ['dead'.repeat(16)] }))).toBe(
      'RESIDENCY_VIOLATION',
    );
    expect(await codeOf(ca.issue({ csr }, { ...gateway.attested, hardwareIds: [] }))).toBe(
      'RESIDENCY_VIOLATION',
    );
    expect(
      await codeOf(
        ca.issue({ csr }, { ...gateway.attested, measurements: { measurement: '33'.repeat(48) } }),
      ),
    ).toBe('MEASUREMENT_NOT_ALLOWED');
    expect(await codeOf(ca.issue({ csr, component: 'serving' }, gateway.attested))).toBe(
      'MEASUREMENT_NOT_ALLOWED',
    );
    expect(await codeOf(ca.issue({ csr }, { ...gateway.attested, tenant: '_' }))).toBe('USAGE_INVALID');
  });

  it('logs every issued certificate in the audit log, which still verifies', async () => {
    const serving = await workload(SERVING_MEASUREMENT, 'tenant-7');
    const issued = await ca.issue({ csr: await serving.csr() }, serving.attested);
    const row = (await auditRows()).at(-1)!;
    expect(row).toMatchObject({
      action: 'mesh.certificate.issue',
      outcome: 'success',
      target: issued.spiffeId,
    });
    expect(JSON.stringify(row)).toContain(issued.serialNumber);
    expect((await audit.verify()).intact).toBe(true);
  });

  it('refuses a lifetime outside a minute to a day', async () => {
    for (const certificateLifetimeSeconds of [59, 86_401, 1.5]) {
      expect(
        await codeOf(
          MeshCa.open({
            signer: await keyStoreCaSigner(store, (await store.createSigningKey('ES256')).id),
            policy,
            audit,
            clock,
            trustDomain: 'tresor.local',
            certificateLifetimeSeconds,
          }),
        ),
      ).toBe('CONFIG_INVALID');
    }
  });
});

describe('parseCertificationRequest', () => {
  it('accepts P-384 and RSA-2048 requests and refuses weak or exotic keys', async () => {
    const p384 = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-384' }, true, [
      'sign',
      'verify',
    ]);
    const pem384 = (
      await x509.Pkcs10CertificateRequestGenerator.create({
        keys: p384,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-384' },
      })
    ).toString('pem');
    expect((await parseCertificationRequest(pem384)).publicJwk).toMatchObject({ kty: 'EC', crv: 'P-384' });
    const rsa = async (modulusLength: number) =>
      crypto.subtle.generateKey(
        {
          name: 'RSASSA-PKCS1-v1_5',
          modulusLength,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: 'SHA-256',
        },
        true,
        ['sign', 'verify'],
      );
    const csrOf = async (keys: CryptoKeyPair) =>
      (
        await x509.Pkcs10CertificateRequestGenerator.create({
          keys,
          signingAlgorithm: { name: 'RSASSA-PKCS1-v1_5' },
        })
      ).toString('pem');
    expect((await parseCertificationRequest(await csrOf(await rsa(2048)))).publicJwk.kty).toBe('RSA');
    expect(await codeOf(parseCertificationRequest(await csrOf(await rsa(1024))))).toBe('MESH_CSR_INVALID');
    const ed = await crypto.subtle.generateKey('Ed25519', true, ['sign', 'verify']);
    const edPem = (
      await x509.Pkcs10CertificateRequestGenerator.create({ keys: ed, signingAlgorithm: { name: 'Ed25519' } })
    ).toString('pem');
    expect(await codeOf(parseCertificationRequest(edPem))).toBe('MESH_CSR_INVALID');
  });

  it('refuses a request whose self-signature does not verify (tampered subject)', async () => {
    const keys = await crypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const csr = await x509.Pkcs10CertificateRequestGenerator.create({
      name: 'CN=aaaa',
      keys,
      signingAlgorithm: EC,
    });
    const der = new Uint8Array(csr.rawData);
    const at = Buffer.from(der).indexOf(Buffer.from('aaaa'));
    der[at] = 'b'.charCodeAt(0);
    const tampered = x509.PemConverter.encode(der.buffer, 'CERTIFICATE REQUEST');
    expect(await codeOf(parseCertificationRequest(tampered))).toBe('MESH_CSR_INVALID');
  });

  it('answers any text with MESH_CSR_INVALID, never another error (property)', async () => {
    const keys = await crypto.subtle.generateKey(EC, true, ['sign', 'verify']);
    const valid = (
      await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: EC })
    ).toString('pem');
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 200 }),
          fc.nat({ max: valid.length - 30 }).map((n) => valid.slice(0, n)),
          fc
            .tuple(fc.nat({ max: valid.length - 30 }), fc.constantFrom('A', 'z', '0', '+'))
            .map(([i, c]) => valid.slice(0, 28 + i) + c + valid.slice(29 + i)),
        ),
        async (text) => {
          const parsed = await parseCertificationRequest(text).catch((err: unknown) => err);
          if (isTresorError(parsed)) {
            expect(parsed.code).toBe('MESH_CSR_INVALID');
            return;
          }
          // DER leaves a little slack around the signature (the BIT STRING's unused-bits octet),
          // so an edit there may still parse; it never yields another key than the one proven.
          expect(parsed).toMatchObject({ thumbprint: (await parseCertificationRequest(valid)).thumbprint });
        },
      ),
      { numRuns: 1000 },
    );
    expect(await codeOf(parseCertificationRequest('A'.repeat(MAX_CSR_LENGTH + 1)))).toBe('MESH_CSR_INVALID');
  });
});

/** A TLS 1.3 client handshake; with `exchange`, also waits for the server to answer or hang up. */
async function handshake(
  port: number,
  cert: string,
  key: string,
  ca: string,
  expectedSpiffeId: string,
  exchange = false,
): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      cert,
      key,
      ca,
      minVersion: 'TLSv1.3',
      checkServerIdentity: (_host, peer) =>
        peer.subjectaltname === `URI:${expectedSpiffeId}`
          ? undefined
          : new Error('not the expected workload'),
    });
    socket.once('secureConnect', () => {
      const seen = socket.getPeerCertificate().subjectaltname;
      if (!exchange) {
        resolve(seen);
        socket.end();
        return;
      }
      // In TLS 1.3 the server judges the client certificate after the client's handshake is done.
      socket.once('data', () => {
        resolve(seen);
      });
      socket.once('end', () => {
        reject(new Error('the server closed the connection'));
      });
    });
    socket.once('error', reject);
  });
}
