import { createPublicKey, randomBytes, verify, type JsonWebKey } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SampleSigningKey } from '@tresor/attestation';
import { utf8Decode, utf8Encode } from '@tresor/crypto';
import { openKeyStore, type KeyStoreConfig } from '@tresor/keystore';
import { isTresorError } from '@tresor/protocol';
import { openMetadataDatabase, stateDirectoryDatabase } from '@tresor/storage';
import {
  FileResourceRepository,
  JWKS_PATH,
  KbsClient,
  ResourceStore,
  httpsTransport,
  loadDeploymentConfig,
  resourcePath,
  sampleAttester,
  startTrustService,
  type KbsTransport,
  type RunningTrustService,
  type TransportResponse,
} from '@tresor/trust';
import { createTestPki, type TestPki } from '../support/test-pki.js';
import {
  SOFTHSM_MODULE,
  createSoftHsmToken,
  whileSoftHsmTokenAway,
  type SoftHsmToken,
} from './keystore-support.js';
import { eventually } from './up-support.js';

/**
 * Fault injection: the trust service (`startTrustService` from a deployment config, as
 * `tresor trust serve` runs it) on a PKCS#11 keystore — a SoftHSM2 token holding the resource KEK
 * and the token-signing key — while the HSM becomes unavailable (issue #13). As in
 * reliability-softhsm, the fault moves SoftHSM's token directory away and back.
 *
 * Expectations: while the token is away, key release and attestation (token signing) are refused
 * with KEYSTORE_UNAVAILABLE in the `tresor-error-code` header and HTTP 503 (a dependency outage a
 * client retries, not a 401 that sends it to re-attest), no answer carries the key, and /readyz
 * answers SERVICE_NOT_READY naming the keystore; once the token is back the SAME running service
 * releases keys and signs tokens again (no restart). The keystore waits RECONNECT_BACKOFF_MS (1 s,
 * real clock here: the deployment opens the keystore itself) after a failed reconnect, so recovery
 * is awaited with a bounded poll.
 */

const PIN_ENV = 'TRESOR_TEST_TRUST_PKCS11_PIN';
const env = { [PIN_ENV]: '1234' };
const MODEL_KEY = 'kbs:///tenant/key/model';
const SECRET = utf8Encode(`model key ${randomBytes(16).toString('hex')}`);

let token: SoftHsmToken;
let dir: string;
let pki: TestPki;
let sampleKey: SampleSigningKey;
let tokenSigningKey: string;
let service: RunningTrustService;

/** Every answer any client of this file received, checked for the key. */
const answers: { path: string; response: TransportResponse }[] = [];
const clients: KbsClient[] = [];
/** Model keys received by any client of this file. */
let keysReceived = 0;

/** The real HTTPS transport, recording every answer. */
function recordingTransport(): KbsTransport {
  const inner = httpsTransport(service.url, { ca: pki.ca });
  return {
    async request(method, path, headers, body) {
      const response = await inner.request(method, path, headers, body);
      answers.push({ path, response });
      return response;
    },
    close: () => {
      inner.close();
    },
  };
}

function kbsClient(): KbsClient {
  const client = new KbsClient({
    url: service.url,
    attester: sampleAttester({ signingKey: sampleKey }),
    transport: recordingTransport(),
  });
  clients.push(client);
  return client;
}

/** A GET the KBS client never sends (/readyz, the JWKS), recorded like the others. */
async function get(path: string): Promise<{ status: number; code: string | undefined; body: string }> {
  const transport = recordingTransport();
  try {
    const response = await transport.request('GET', path, {});
    const code = response.headers['tresor-error-code'];
    return {
      status: response.status,
      code: typeof code === 'string' ? code : undefined,
      body: utf8Decode(response.body),
    };
  } finally {
    transport.close();
  }
}

/** The outcome of a KBS call: 'key' (the model key), 'token', or the refusal's code and HTTP status. */
async function outcome(work: Promise<Uint8Array | string>): Promise<string> {
  try {
    const value = await work;
    if (typeof value === 'string') return 'token';
    if (!Buffer.from(value).equals(SECRET)) return 'other bytes';
    keysReceived++;
    return 'key';
  } catch (err) {
    if (!isTresorError(err)) return `not a TresorError: ${String(err)}`;
    return `${err.code} ${String(err.details?.status)}`;
  }
}

/** Checks that `jwt` is an ES256 token signed by the HSM's token-signing key, as published. */
async function expectSignedByHsm(jwt: string): Promise<void> {
  const [header, payload, signature] = jwt.split('.');
  const head = JSON.parse(Buffer.from(header ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
  expect(head).toMatchObject({ alg: 'ES256', kid: tokenSigningKey });
  const jwks = JSON.parse((await get(JWKS_PATH)).body) as { keys: (JsonWebKey & { kid?: string })[] };
  const jwk = jwks.keys.find((k) => k.kid === tokenSigningKey);
  expect(jwk).toBeDefined();
  const valid = verify(
    'sha256',
    Buffer.from(`${header ?? ''}.${payload ?? ''}`),
    { key: createPublicKey({ key: jwk!, format: 'jwk' }), dsaEncoding: 'ieee-p1363' },
    Buffer.from(signature ?? '', 'base64url'),
  );
  expect(valid).toBe(true);
}

/** Key release records of the service's audit log by outcome and code (read-only, as `tresor audit verify` opens it). */
async function releaseRecords(): Promise<Record<string, number>> {
  const db = await openMetadataDatabase(stateDirectoryDatabase(join(dir, 'state'), { mustExist: true }), {
    readOnly: true,
  });
  try {
    const rows = await db.query(
      "SELECT outcome, details FROM audit_records WHERE action = 'kbs.resource.release'",
    );
    const counts: Record<string, number> = {};
    for (const row of rows) {
      const details = JSON.parse(String(row.details)) as { code?: string };
      const key = `${String(row.outcome)}${details.code === undefined ? '' : ` ${details.code}`}`;
      counts[key] = (counts[key] ?? 0) + 1;
    }
    return counts;
  } finally {
    await db.close();
  }
}

const whileTokenAway = <T>(during: () => Promise<T>): Promise<T> => whileSoftHsmTokenAway(token, during);

beforeAll(async () => {
  token = await createSoftHsmToken('tresor-trust-fault');
  dir = await mkdtemp(join(tmpdir(), 'tresor-trust-softhsm-'));
  [pki, sampleKey] = [await createTestPki('trust-softhsm'), SampleSigningKey.generate()];
  const keystore: KeyStoreConfig = {
    backend: 'pkcs11',
    module: SOFTHSM_MODULE,
    tokenLabel: token.label,
    pinEnv: PIN_ENV,
  };

  // The operator's set-up: the service's keys generated in the HSM, the model key stored sealed
  // under the HSM's KEK in the state directory.
  const hsm = await openKeyStore(keystore, { env, mode: 'development' });
  const keys = {
    tokenSigning: [(await hsm.createSigningKey('ES256', { label: 'attestation tokens' })).id],
    documentSigning: (await hsm.createSigningKey('ES256', { label: 'documents' })).id,
    meshCa: (await hsm.createSigningKey('ES384', { label: 'mesh CA' })).id,
    auditCheckpoint: (await hsm.createSigningKey('ES256', { label: 'audit checkpoints' })).id,
    resourceKek: (await hsm.createKek({ label: 'kbs resources' })).id,
  };
  tokenSigningKey = keys.tokenSigning[0]!;
  await mkdir(join(dir, 'state'), { mode: 0o700 });
  const resources = await ResourceStore.open({
    keyStore: hsm,
    kekId: keys.resourceKek,
    repository: new FileResourceRepository(join(dir, 'state', 'kbs')),
  });
  await resources.put(resourcePath('tenant', 'key', 'model'), SECRET);
  await hsm.close();

  const configFile = join(dir, 'trust-deployment.json');
  await writeFile(
    configFile,
    JSON.stringify({
      service: {
        issuer: 'trust.softhsm.test',
        server: { port: 0, tls: { cert: pki.server.cert, key: pki.server.key }, logLevel: 'silent' },
        attestation: {
          sampleVerifyKey: sampleKey.verifyKey.hex,
          policy: { allowSampleTee: true, measurements: 'any', hardwareIds: 'any' },
        },
        resourcePolicy: 'permit(principal, action, resource) when { resource.repository == "tenant" };',
      },
      keystore,
      stateDir: 'state',
      keys,
      admin: { keys: [] },
      enforce: { referenceValues: false, residency: false },
    }),
  );
  service = await startTrustService(await loadDeploymentConfig(configFile), { env });
});

afterAll(async () => {
  for (const client of clients) client.close();
  await service.close();
  await rm(dir, { recursive: true, force: true });
  await rm(token.dir, { recursive: true, force: true });
});

describe('trust service on a PKCS#11 keystore while SoftHSM is unavailable', () => {
  it('releases the model key and signs tokens with the HSM key, and is ready (control)', async () => {
    const client = kbsClient();
    expect(await outcome(client.getResource(MODEL_KEY))).toBe('key');
    await expectSignedByHsm(client.token!);
    const ready = await get('/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toMatchObject({ status: 'ready', checks: ['keystore'] });
  });

  it('refuses release and attestation with KEYSTORE_UNAVAILABLE (503) while the token is away, then recovers without a restart', async () => {
    // A workload that attested before the outage holds a session and a token.
    const attested = kbsClient();
    await attested.attest();
    const fresh = kbsClient();
    const before = answers.length;

    const during = await whileTokenAway(async () => ({
      // Release on the held session: the resource's data key cannot be unwrapped.
      releaseOnSession: await outcome(attested.getResource(MODEL_KEY)),
      // A workload attesting now: its token cannot be signed.
      releaseAfterAttest: await outcome(fresh.getResource(MODEL_KEY)),
      attest: await outcome(fresh.attest()),
      readyz: await get('/readyz'),
    }));
    expect(during).toMatchObject({
      releaseOnSession: 'KEYSTORE_UNAVAILABLE 503',
      releaseAfterAttest: 'KEYSTORE_UNAVAILABLE 503',
      attest: 'KEYSTORE_UNAVAILABLE 503',
      readyz: { status: 503, code: 'SERVICE_NOT_READY' },
    });
    expect(during.readyz.body).toMatch(/not ready: keystore/);

    // Every refusal during the outage: 503 (not 401, which sends the workload to re-attest, in vain
    // while tokens cannot be signed: the held session's refusal is one request, no /attest), the
    // catalogue code, and what to do.
    const refusals = answers.slice(before).filter((a) => a.response.status !== 200);
    expect(refusals.map((a) => a.path)).toEqual([
      '/kbs/v0/resource/tenant/key/model',
      '/kbs/v0/attest',
      '/kbs/v0/attest',
      '/readyz',
    ]);
    for (const { path, response } of refusals.slice(0, 3)) {
      expect(response.status, path).toBe(503);
      expect(response.headers['tresor-error-code'], path).toBe('KEYSTORE_UNAVAILABLE');
      expect(utf8Decode(response.body), path).toMatch(/check that the HSM/);
    }

    // The token is back: the same running service releases again once the keystore's reconnect
    // back-off has passed — to a new workload, and on a new session of the one refused before.
    const polls = await eventually(
      'release after the token is back',
      async () => (await outcome(kbsClient().getResource(MODEL_KEY))) === 'key',
      30_000,
      200,
    );
    expect(polls).toBeGreaterThanOrEqual(1);
    expect(await outcome(attested.getResource(MODEL_KEY))).toBe('key');
    const renewed = kbsClient();
    await expectSignedByHsm(await renewed.attest());
    expect(await outcome(renewed.getResource(MODEL_KEY))).toBe('key');
    expect((await get('/readyz')).status).toBe(200);

    // The audit log: a success record for every key a client received and none more; the refusal
    // on the held session is recorded as denied with the keystore's code.
    const records = await releaseRecords();
    expect(records.success).toBe(keysReceived);
    expect(records['denied KEYSTORE_UNAVAILABLE']).toBeGreaterThanOrEqual(1);
  });

  it('never put the model key in any answer', () => {
    // Releases answer a JWE to the workload's key, never the key itself: in no encoding, in no
    // answer (refusals, tokens, JWKS, readiness) of this file.
    expect(answers.length).toBeGreaterThan(10);
    const forms = [
      Buffer.from(SECRET).toString('hex'),
      Buffer.from(SECRET).toString('base64'),
      Buffer.from(SECRET).toString('base64url'),
      utf8Decode(SECRET),
    ];
    for (const { path, response } of answers) {
      const text = utf8Decode(response.body);
      for (const form of forms) expect(text, path).not.toContain(form);
    }
  });
});
