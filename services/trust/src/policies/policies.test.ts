import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SampleSigningKey, parseAppraisalPolicy } from '@tresor/attestation';
import { FileKeyStore, SecretKeyBytes } from '@tresor/keystore';
import { isTresorError } from '@tresor/protocol';
import { createTestPki } from '../../../../test/support/test-pki.js';
import { generateAdminKey, signAdminRequest, type AdminSigningKey } from '../admin/admin-request-signer.js';
import type { VerifiedAdminRequest } from '../admin/admin-request.js';
import { executeAdminOperation } from '../admin/admin-operation.js';
import { parseDeploymentConfig, type DeploymentConfig } from '../deployment/deployment-config.js';
import {
  ATTESTATION_POLICY_FILE,
  RESOURCE_POLICY_FILE,
  startTrustService,
  type RunningTrustService,
} from '../deployment/start-trust-service.js';
import { sampleAttester } from '../kbs/attester.js';
import { KbsClient } from '../kbs/client.js';
import { httpsTransport } from '../kbs/client-transport.js';
import { attestationPolicyOperations, checkAttestationPolicy } from './attestation-policy.js';

const ISSUER = 'trust.policies.test';
const ENV = { TRESOR_TEST_PASSPHRASE: 'policies test passphrase' };
const MEASUREMENT = new Uint8Array(48).fill(0x42);
const SECRET = 'model key for the policies test';
/** No reference values or inventory in this test: the static policy waives both explicitly. */
const ANY = { measurements: 'any', hardwareIds: 'any' } as const;
const PERMIT_SAMPLE = 'permit(principal, action, resource) when { principal.tee == "sample" };';

let dir: string;
let config: DeploymentConfig;
let admin: AdminSigningKey;
let ca: string;
const sample = SampleSigningKey.generate();

async function codeOf(promise: Promise<unknown>): Promise<string> {
  return promise.then(
    () => 'no error',
    (err: unknown) => (isTresorError(err) ? err.code : `not a TresorError: ${String(err)}`),
  );
}

async function call(
  service: RunningTrustService,
  operation: string,
  request: unknown,
  jws?: string,
): Promise<{ status: number; code: string | undefined; body: Record<string, unknown>; jws: string }> {
  const path = `/admin/v0/${operation}`;
  const signed = jws ?? (await signAdminRequest(admin, { audience: ISSUER, path, request, now: new Date() }));
  const transport = httpsTransport(service.url, { ca });
  try {
    const answer = await transport.request(
      'POST',
      path,
      { 'content-type': 'application/jose' },
      new TextEncoder().encode(signed),
    );
    const code = answer.headers['tresor-error-code'];
    return {
      status: answer.status,
      code: typeof code === 'string' ? code : undefined,
      body: JSON.parse(new TextDecoder().decode(answer.body)) as Record<string, unknown>,
      jws: signed,
    };
  } finally {
    transport.close();
  }
}

async function release(service: RunningTrustService): Promise<string> {
  const client = new KbsClient({
    url: service.url,
    attester: sampleAttester({ signingKey: sample, measurement: MEASUREMENT }),
    tls: { ca },
  });
  try {
    return new TextDecoder().decode(await client.getResource('kbs:///acme/key/model'));
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-policies-'));
  const pki = await createTestPki('policies');
  ca = pki.ca;
  const store = await FileKeyStore.open({
    path: join(dir, 'keys.tresor'),
    passphrase: SecretKeyBytes.copyOf(new TextEncoder().encode(ENV.TRESOR_TEST_PASSPHRASE)),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
  const keys = {
    tokenSigning: [(await store.createSigningKey('ES256')).id],
    documentSigning: (await store.createSigningKey('ES256')).id,
    meshCa: (await store.createSigningKey('ES256')).id,
    auditCheckpoint: (await store.createSigningKey('ES256')).id,
    resourceKek: (await store.createKek()).id,
  };
  await store.close();
  admin = await generateAdminKey('alice');
  config = await parseDeploymentConfig(
    {
      service: {
        issuer: ISSUER,
        server: { port: 0, tls: { cert: pki.server.cert, key: pki.server.key }, logLevel: 'silent' },
        attestation: { sampleVerifyKey: sample.verifyKey.hex, policy: { ...ANY, allowSampleTee: true } },
      },
      keystore: { backend: 'file', path: join(dir, 'keys.tresor'), passphraseEnv: 'TRESOR_TEST_PASSPHRASE' },
      stateDir: join(dir, 'state'),
      keys,
      admin: { keys: [{ id: admin.id, jwk: admin.publicJwk }] },
      enforce: { referenceValues: false, residency: false },
    },
    dir,
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('policies set through the admin API', () => {
  it('keep the resource and attestation policies and the used request ids across a restart', async () => {
    let service = await startTrustService(config, { env: ENV });
    let replayable: string;
    try {
      // The configuration's resource policy (none) denies; the one set through the API permits.
      expect(
        await call(service, 'resources/put', { path: 'acme/key/model', value: btoa(SECRET) }),
      ).toMatchObject({
        status: 200,
      });
      expect(await codeOf(release(service))).toBe('POLICY_DENIED');
      const set = await call(service, 'resource-policy/set', { policy: PERMIT_SAMPLE });
      expect(set).toMatchObject({ status: 200, body: { version: 1 } });
      replayable = set.jws;
      expect(await release(service)).toBe(SECRET);
      // Create-only: an existing secret (a model key sealed models depend on) is not overwritten.
      expect(
        await call(service, 'resources/put', {
          path: 'acme/key/model',
          value: btoa('other'),
          replace: false,
        }),
      ).toMatchObject({ status: 409, code: 'STORAGE_CONFLICT' });
      expect(await release(service)).toBe(SECRET);
      expect(
        await call(service, 'resources/put', {
          path: 'acme/key/model-2',
          value: btoa('new'),
          replace: false,
        }),
      ).toMatchObject({ status: 200, body: { path: 'acme/key/model-2', bytes: 3 } });
      expect(await call(service, 'attestation-policy/get', null)).toMatchObject({
        status: 200,
        body: { version: 0, policy: { allowSampleTee: true } },
      });
      expect(
        await call(service, 'attestation-policy/set', { policy: { id: 'no-sample', allowSampleTee: false } }),
      ).toMatchObject({ status: 200, body: { version: 1, id: 'no-sample' } });
      expect(await codeOf(release(service))).toBe('SAMPLE_TEE_NOT_ALLOWED');
    } finally {
      await service.close();
    }

    service = await startTrustService(config, { env: ENV });
    try {
      expect(await call(service, 'resource-policy/get', null)).toMatchObject({
        status: 200,
        body: { policy: PERMIT_SAMPLE, version: 1 },
      });
      expect(await call(service, 'attestation-policy/get', null)).toMatchObject({
        status: 200,
        body: { version: 1, policy: { id: 'no-sample', allowSampleTee: false } },
      });
      // Still in force: the sample TEE is refused, as set before the restart.
      expect(await codeOf(release(service))).toBe('SAMPLE_TEE_NOT_ALLOWED');
      // A request accepted before the restart is not accepted again.
      expect(await call(service, 'resource-policy/set', null, replayable)).toMatchObject({
        status: 409,
        code: 'ADMIN_REQUEST_REPLAYED',
      });
      expect(
        await call(service, 'attestation-policy/set', {
          policy: { ...ANY, id: 'sample-again', allowSampleTee: true },
        }),
      ).toMatchObject({ status: 200, body: { version: 2 } });
      expect(await release(service)).toBe(SECRET);
      // Refused policies change nothing.
      expect(
        await call(service, 'attestation-policy/set', { policy: { allowSampleTee: 'yes' } }),
      ).toMatchObject({ status: 400, code: 'INPUT_MALFORMED' });
      expect(
        await call(service, 'attestation-policy/set', { policy: { allowSampelTee: true } }),
      ).toMatchObject({
        status: 400,
        code: 'INPUT_MALFORMED',
      });
      expect(await call(service, 'resource-policy/set', { policy: 'permit(' })).toMatchObject({
        status: 400,
        code: 'RESOURCE_POLICY_INVALID',
      });
      expect(await call(service, 'attestation-policy/get', null)).toMatchObject({ body: { version: 2 } });
      expect(await release(service)).toBe(SECRET);
    } finally {
      await service.close();
    }
  });

  it('refuses to start from a stored policy edited at rest, or of another kind', async () => {
    const file = join(config.stateDir, ATTESTATION_POLICY_FILE);
    const original = await readFile(file, 'utf8');
    const [header, payload, signature] = original.trim().split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const edited = Buffer.from(JSON.stringify({ ...claims, version: 9 })).toString('base64url');
    try {
      await writeFile(file, `${header}.${edited}.${signature}\n`);
      expect(await codeOf(startTrustService(config, { env: ENV }))).toBe('SIGNED_DOCUMENT_INVALID');
      // A validly signed resource policy is not an attestation policy.
      await writeFile(file, await readFile(join(config.stateDir, RESOURCE_POLICY_FILE), 'utf8'));
      expect(await codeOf(startTrustService(config, { env: ENV }))).toBe('SIGNED_DOCUMENT_INVALID');
    } finally {
      await writeFile(file, original);
    }
    const service = await startTrustService(config, { env: ENV });
    await service.close();
  });
});

describe('checkAttestationPolicy', () => {
  it.each([
    ['the sample TEE', { allowSampleTee: true }, 'allowSampleTee'],
    ['debug TEEs', { allowDebug: true }, 'allowDebug'],
    ['unbound evidence', { requireReportDataBinding: false }, 'requireReportDataBinding'],
  ])('refuses a policy allowing %s in production mode only', (_what, policy, field) => {
    expect(checkAttestationPolicy(policy, 'development', 'INPUT_MALFORMED')).toMatchObject(policy);
    expect(() => checkAttestationPolicy(policy, 'production', 'INPUT_MALFORMED')).toThrow(
      expect.objectContaining({ code: 'INPUT_MALFORMED', message: expect.stringContaining(field) as string }),
    );
  });

  it.each([
    ['a misspelt member', { allowSampelTee: true }],
    ['a wrong type', { vmpls: 'zero' }],
    ['an empty VMPL list', { vmpls: [] }],
    ['not an object', 'allow everything'],
  ])('refuses %s with the code it is given, naming the field', (_what, policy) => {
    expect(() => checkAttestationPolicy(policy, 'development', 'CONFIG_INVALID')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });

  it('sets a policy through the operation in production mode only when production allows it', async () => {
    let installed = parseAppraisalPolicy({});
    const service = {
      get policy() {
        return installed;
      },
      replacePolicy: (p: typeof installed) => {
        installed = p;
      },
    };
    const [set] = attestationPolicyOperations(service, 'production');
    const appended: unknown[] = [];
    const audit = { append: (entry: unknown) => Promise.resolve(appended.push(entry)) };
    const verified = (request: unknown): VerifiedAdminRequest => ({
      adminKeyId: 'alice',
      jti: 'j'.repeat(16),
      issuedAt: new Date(),
      request,
    });
    expect(
      await codeOf(executeAdminOperation(set!, verified({ policy: { allowSampleTee: true } }), audit)),
    ).toBe('INPUT_MALFORMED');
    expect(installed.allowSampleTee).toBe(false);
    expect(appended).toMatchObject([{ outcome: 'denied', details: { reason: 'INPUT_MALFORMED' } }]);
    await executeAdminOperation(set!, verified({ policy: { id: 'prod-2', vmpls: [0, 1] } }), audit);
    expect(installed).toMatchObject({ id: 'prod-2', vmpls: [0, 1] });
    expect(appended[1]).toMatchObject({ outcome: 'success', action: 'attestation-policy.set' });
  });
});
