import 'reflect-metadata';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { utf8Encode } from '@tresor/crypto';
import { SampleSigningKey } from '@tresor/attestation';
import { FileKeyStore, SecretKeyBytes } from '@tresor/keystore';
import {
  KBS_PREFIX,
  KBS_PROTOCOL_VERSION,
  KbsClient,
  expectedReportData,
  loadDeploymentConfig,
  primaryRuntimeData,
  sampleAttester,
  startTrustService,
  type RunningTrustService,
  type TeePublicKeyJwk,
} from '@tresor/trust';
import { captureIo } from '../../../../test/support/cli-io.js';
import { createTestPki, type TestPki } from '../../../../test/support/test-pki.js';
import { run } from '../index.js';

x509.cryptoProvider.set(globalThis.crypto);

const PASSPHRASE_ENV = 'TRESOR_TEST_TRUST_PASSPHRASE';
const env = { [PASSPHRASE_ENV]: 'test passphrase only' };
const MEASUREMENT = new Uint8Array(48).fill(0x5a);
const SECRET = utf8Encode('model key: 0123456789abcdef0123456789abcdef');

let dir: string;
let pki: TestPki;
let sampleKey: SampleSigningKey;
let service: RunningTrustService;
let configFile: string;

const io = (now = new Date()) => ({ ...captureIo(env), now: () => now });
const file = (name: string) => join(dir, name);

async function tresor(args: string[], now?: Date): Promise<{ code: number; out: string; err: string }> {
  const cli = io(now);
  const code = await run(args, cli);
  return { code, out: cli.out(), err: cli.err() };
}

function admin(...args: string[]): string[] {
  return [
    'trust',
    'admin',
    '--url',
    service.url,
    '--ca',
    file('ca.pem'),
    '--key',
    file('alice.jwk'),
    ...args,
  ];
}

/** Raw HTTPS for what the CLI never sends (unsigned requests, bearer calls). */
function https(
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; body: string; code: string | undefined; cookie: string }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, service.url), { method, ca: pki.ca, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const code = res.headers['tresor-error-code'];
        resolve({
          status: res.statusCode ?? 0,
          body: Buffer.concat(chunks).toString('utf8'),
          code: typeof code === 'string' ? code : undefined,
          cookie: res.headers['set-cookie']?.[0]?.split(';')[0] ?? '',
        });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-trust-cli-'));
  pki = await createTestPki('trust-cli');
  sampleKey = SampleSigningKey.generate();
  await writeFile(file('ca.pem'), pki.ca);
  await writeFile(file('secret.bin'), SECRET);
  const keystore = { backend: 'file', path: 'keys.tresor', passphraseEnv: PASSPHRASE_ENV, scryptLog2N: 14 };
  const store = await FileKeyStore.open({
    path: file('keys.tresor'),
    passphrase: SecretKeyBytes.copyOf(utf8Encode(env[PASSPHRASE_ENV])),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
  const keys = {
    tokenSigning: [(await store.createSigningKey('ES256')).id],
    documentSigning: (await store.createSigningKey('ES256')).id,
    meshCa: (await store.createSigningKey('ES384')).id,
    auditCheckpoint: (await store.createSigningKey('ES256')).id,
    resourceKek: (await store.createKek()).id,
  };
  await store.close();

  const keygen = await tresor(['trust', 'admin', 'keygen', '--id', 'alice', '--out', file('alice.jwk')]);
  expect(keygen.code).toBe(0);
  const adminEntry = JSON.parse(keygen.out) as unknown;
  configFile = file('trust-deployment.json');
  await writeFile(
    configFile,
    JSON.stringify({
      service: {
        issuer: 'trust.cli.test',
        server: { port: 0, tls: { cert: pki.server.cert, key: pki.server.key }, logLevel: 'warn' },
        attestation: { sampleVerifyKey: sampleKey.verifyKey.hex, policy: { allowSampleTee: true } },
      },
      keystore,
      stateDir: 'state',
      keys,
      admin: { keys: [adminEntry] },
      meshCa: { certificateLifetimeSeconds: 600 },
    }),
  );
  service = await startTrustService(await loadDeploymentConfig(configFile), { env });
});

afterAll(async () => {
  await service.close();
  await rm(dir, { recursive: true, force: true });
});

describe('tresor trust admin against a running trust service', () => {
  it('keygen writes a 0600 private key and refuses to overwrite it', async () => {
    const again = await tresor(['trust', 'admin', 'keygen', '--id', 'alice', '--out', file('alice.jwk')]);
    expect(again.code).toBe(2);
    expect(again.err).toMatch(/^error OUTPUT_UNWRITABLE/);
    const { stat } = await import('node:fs/promises');
    expect((await stat(file('alice.jwk'))).mode & 0o777).toBe(0o600);
  });

  it('sets reference values, inventory, a resource and the policy; a sample TEE then obtains the secret', async () => {
    await writeFile(
      file('rv.json'),
      JSON.stringify({
        component: 'serving',
        release: '1.0.0',
        tee: 'sample',
        measurements: { measurement: [Buffer.from(MEASUREMENT).toString('hex')] },
      }),
    );
    await writeFile(
      file('inventory.json'),
      JSON.stringify({
        hardware: [
          { id: sampleKey.verifyKey.hex, kind: 'sample-machine', jurisdiction: 'CH', site: 'laptop' },
        ],
      }),
    );
    await writeFile(
      file('policy.cedar'),
      'permit(principal, action == Tresor::Action::"read", resource) when { principal has component && principal.component == "serving" && principal has residency && principal.residency == "CH" && resource.repository == "tenant" };',
    );
    expect(await tresor(admin('reference-values', 'put', file('rv.json')))).toMatchObject({
      code: 0,
      out: 'reference values now version 2\n',
    });
    expect((await tresor(admin('inventory', 'set', file('inventory.json')))).out).toBe(
      'residency inventory now version 2 (1 machines)\n',
    );
    const stored = await tresor(
      admin('resource', 'set', 'tenant/key/model', '--from-file', file('secret.bin')),
    );
    expect(stored.out).toBe(`stored tenant/key/model (${SECRET.length} bytes)\n`);
    expect(stored.out + stored.err).not.toContain('0123456789abcdef');
    expect((await tresor(admin('policy', 'set', file('policy.cedar')))).code).toBe(0);

    const client = new KbsClient({
      url: service.url,
      attester: sampleAttester({ signingKey: sampleKey, measurement: MEASUREMENT }),
      tls: { ca: pki.ca },
    });
    try {
      expect(new TextDecoder().decode(await client.getResource('kbs:///tenant/key/model'))).toBe(
        new TextDecoder().decode(SECRET),
      );
    } finally {
      client.close();
    }

    const list = await tresor(admin('list'));
    expect(list.out).toContain('serving 1.0.0 on sample');
    expect(list.out).toContain('tenant/key/model');
    expect(list.out).not.toContain('0123456789abcdef');
  });

  it('serves signed documents that verify with the published document keys', async () => {
    const keys = await https('GET', '/trust/v0/document-keys', {});
    await writeFile(file('document-keys.json'), keys.body);
    const doc = await tresor(admin('document', 'residency-inventory', '--jwks', file('document-keys.json')));
    expect(doc.code).toBe(0);
    expect(doc.err).toMatch(/^verified: residency-inventory version 2/);
    expect(JSON.parse(doc.out)).toMatchObject({
      hardware: [{ id: sampleKey.verifyKey.hex, jurisdiction: 'CH' }],
    });
  });

  it('issues a mesh certificate to an attested workload for its attested key', async () => {
    // The workload's TEE key is an ECDSA P-256 pair: its public point is the runtime data's
    // tee-pubkey (the KBS wraps secrets to it), and it signs the CSR (proof of possession).
    const auth = await https(
      'POST',
      `${KBS_PREFIX}/auth`,
      { 'content-type': 'application/json' },
      JSON.stringify({ version: KBS_PROTOCOL_VERSION, tee: 'sample', 'extra-params': '' }),
    );
    expect(auth.status).toBe(200);
    const { nonce } = JSON.parse(auth.body) as { nonce: string };
    const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ]);
    const jwk = await crypto.subtle.exportKey('jwk', keys.publicKey);
    const teePubkey: TeePublicKeyJwk = {
      kty: 'EC',
      crv: 'P-256',
      alg: 'ECDH-ES+A256KW',
      x: jwk.x!,
      y: jwk.y!,
    };
    const reportData = await expectedReportData(primaryRuntimeData(teePubkey, nonce, ''));
    const evidence = await sampleAttester({
      signingKey: sampleKey,
      measurement: MEASUREMENT,
    }).primaryEvidence({
      reportData,
      nonce,
    });
    const attest = await https(
      'POST',
      `${KBS_PREFIX}/attest`,
      { 'content-type': 'application/json', cookie: auth.cookie },
      JSON.stringify({
        'runtime-data': { nonce, 'tee-pubkey': teePubkey },
        'tee-evidence': { primary_evidence: evidence, additional_evidence: '' },
      }),
    );
    expect(attest.status).toBe(200);
    const { token } = JSON.parse(attest.body) as { token: string };
    const csr = (
      await x509.Pkcs10CertificateRequestGenerator.create({
        keys,
        signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      })
    ).toString('pem');
    const issued = await https(
      'POST',
      '/mesh/v0/certificates',
      { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      JSON.stringify({ csr, component: 'serving' }),
    );
    expect(issued.status).toBe(200);
    const answer = JSON.parse(issued.body) as {
      certificate: string;
      spiffeId: string;
      caCertificate: string;
    };
    expect(answer.spiffeId).toBe('spiffe://tresor.local/serving/_');
    const cert = new x509.X509Certificate(answer.certificate);
    expect(await cert.verify({ publicKey: new x509.X509Certificate(answer.caCertificate).publicKey })).toBe(
      true,
    );
    const ca = await https('GET', '/mesh/v0/ca', {});
    expect(ca.body).toBe(answer.caCertificate);

    const anonymous = await https(
      'POST',
      '/mesh/v0/certificates',
      { 'content-type': 'application/json' },
      JSON.stringify({ csr }),
    );
    expect(anonymous).toMatchObject({ status: 401, code: 'ATTESTATION_TOKEN_INVALID' });
  });

  it('refuses unsigned, unknown-key and expired admin requests with their codes (exit 1)', async () => {
    const unsigned = await https(
      'POST',
      '/admin/v0/resources/list',
      { 'content-type': 'application/json' },
      JSON.stringify({ request: null }),
    );
    expect(unsigned).toMatchObject({ status: 401, code: 'ADMIN_SIGNATURE_MISSING' });
    expect(
      (await tresor(['trust', 'admin', 'keygen', '--id', 'mallory', '--out', file('mallory.jwk')])).code,
    ).toBe(0);
    const stranger = await tresor([
      'trust',
      'admin',
      '--url',
      service.url,
      '--ca',
      file('ca.pem'),
      '--key',
      file('mallory.jwk'),
      'list',
    ]);
    expect(stranger.code).toBe(1);
    expect(stranger.err).toMatch(/^error ADMIN_KEY_UNKNOWN/);
    const late = await tresor(admin('list'), new Date(Date.now() + 3_600_000));
    expect(late.code).toBe(1);
    expect(late.err).toMatch(/^error ADMIN_REQUEST_EXPIRED/);
    const untrusted = await tresor([
      'trust',
      'admin',
      '--url',
      service.url,
      '--key',
      file('alice.jwk'),
      'list',
    ]);
    expect(untrusted.code).toBe(1);
    expect(untrusted.err).toMatch(/^error TRUST_SERVICE_UNREACHABLE/);
  });

  it('keeps the signed documents across a restart and records every change in the audit log', async () => {
    const before = service.referenceValues.document;
    await service.close();
    service = await startTrustService(await loadDeploymentConfig(configFile), { env });
    expect(service.referenceValues.document.jws).toBe(before.jws);
    expect(service.inventory.document.version).toBe(2);
    const verification = await service.audit.verify();
    expect(verification.intact).toBe(true);
    expect(verification.records).toBeGreaterThanOrEqual(5);
    expect(await readFile(join(dir, 'state', 'reference-values.jws'), 'utf8')).toContain(before.jws);
  });
});
