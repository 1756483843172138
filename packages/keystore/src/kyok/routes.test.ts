import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TresorError, isErrorCode } from '@tresor/protocol';
import { FileKeyStore } from '../file/file-key-store.js';
import { SecretKeyBytes } from '../secret-key-bytes.js';
import type { AttestationResult } from './attestation-token.js';
import { DecisionLog } from './decision-log.js';
import { KeyOwners } from './key-owners.js';
import { parseKeyReleasePolicy } from './release-policy.js';
import { RevocationList } from './revocations.js';
import { handleKyokRequest, type KyokRequest, type KyokServices } from './routes.js';

const ADMIN = 'aa'.repeat(32);
const WORKLOAD = 'bb'.repeat(32);
const MEASUREMENT = 'ab'.repeat(48);
const GOOD_TOKEN = 'good-token';

let dir: string;
let services: KyokServices;
let keyStore: FileKeyStore;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-kyok-routes-'));
  keyStore = await FileKeyStore.open({
    path: join(dir, 'keys.json'),
    passphrase: SecretKeyBytes.copyOf(Buffer.from('routes test passphrase')),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
  const affirming: AttestationResult = {
    issuer: 'https://trust.tresor.test',
    issuedAt: new Date(),
    expiresAt: new Date(Date.now() + 60_000),
    submodules: [
      {
        name: 'cpu0',
        status: 'affirming',
        tee: 'snp',
        measurements: { measurement: MEASUREMENT },
        residency: 'CH',
        tenant: null,
      },
    ],
  };
  services = {
    keyStore,
    owners: await KeyOwners.load(dir),
    revocations: new RevocationList(dir),
    policy: parseKeyReleasePolicy({
      tenants: { acme: { allowedMeasurements: { measurement: [MEASUREMENT] }, residency: 'CH' } },
    }),
    // Token verification has its own tests (attestation-token.test.ts); here one token is good.
    verifyToken: (token) =>
      token === GOOD_TOKEN
        ? Promise.resolve(affirming)
        : Promise.reject(new TresorError('ATTESTATION_TOKEN_INVALID', 'not the good token')),
    decisions: new DecisionLog(dir),
    admins: new Set([ADMIN]),
    now: () => new Date('2025-06-01T00:00:00Z'),
  };
});
afterAll(async () => {
  await keyStore.close();
  await rm(dir, { recursive: true, force: true });
});

const call = (request: Partial<KyokRequest> & Pick<KyokRequest, 'method' | 'path'>) =>
  handleKyokRequest(services, { body: null, client: ADMIN, bearerToken: GOOD_TOKEN, ...request });

describe('KYOK request routing', () => {
  it('serves the key life cycle and records who asked', async () => {
    const created = await call({
      method: 'POST',
      path: '/v1/tenants/acme/keys',
      body: { kind: 'kek', label: 'x' },
    });
    expect(created.status).toBe(200);
    const id = (created.body as { id: string }).id;
    const dataKey = randomBytes(32);
    const wrapped = await call({
      method: 'POST',
      path: `/v1/tenants/acme/keys/${id}/wrap`,
      body: { key: dataKey.toString('base64url') },
      client: WORKLOAD,
    });
    expect(wrapped.status).toBe(200);
    const unwrapped = await call({
      method: 'POST',
      path: `/v1/tenants/acme/keys/${id}/unwrap`,
      body: wrapped.body,
      client: WORKLOAD,
    });
    expect(unwrapped).toEqual({ status: 200, body: { key: dataKey.toString('base64url') } });
    const log = await readFile(join(dir, 'decisions.log'), 'utf8');
    expect(log).toContain(`"operation":"unwrap","tenant":"acme","keyId":"${id}","client":"${WORKLOAD}"`);
    expect(log).not.toContain(dataKey.toString('base64url'));
  });

  it('refuses management without an administrator certificate, and key use without a good token', async () => {
    const forbidden = await call({
      method: 'POST',
      path: '/v1/tenants/acme/keys',
      body: { kind: 'kek' },
      client: WORKLOAD,
    });
    expect(forbidden).toMatchObject({ status: 403, body: { code: 'KYOK_CLIENT_FORBIDDEN' } });
    const created = await call({ method: 'POST', path: '/v1/tenants/acme/keys', body: { kind: 'kek' } });
    const id = (created.body as { id: string }).id;
    const noToken = await call({
      method: 'POST',
      path: `/v1/tenants/acme/keys/${id}/wrap`,
      body: { key: randomBytes(32).toString('base64url') },
      bearerToken: null,
    });
    expect(noToken).toMatchObject({ status: 401, body: { code: 'ATTESTATION_TOKEN_INVALID' } });
  });

  it('answers every request, however malformed, with a catalogue code and never throws (property)', async () => {
    const created = await call({ method: 'POST', path: '/v1/tenants/acme/keys', body: { kind: 'kek' } });
    const id = (created.body as { id: string }).id;
    const segment = fc.oneof(
      fc.constantFrom(
        'v1',
        'tenants',
        'acme',
        'other',
        'keys',
        id,
        'wrap',
        'unwrap',
        'sign',
        'imports',
        'revoke',
        '',
      ),
      fc.string({ maxLength: 12 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('GET', 'POST', 'PUT', 'DELETE'),
        fc.array(segment, { maxLength: 6 }).map((parts) => `/${parts.join('/')}`),
        fc.oneof(
          fc.constant(null),
          fc.json().map((j) => JSON.parse(j) as unknown),
          fc.record({ key: fc.string(), wrappedKey: fc.string() }),
        ),
        fc.constantFrom(ADMIN, WORKLOAD),
        fc.constantFrom(GOOD_TOKEN, null, 'bad'),
        async (method, path, body, client, bearerToken) => {
          const response = await handleKyokRequest(services, { method, path, body, client, bearerToken });
          if (response.status === 200) return;
          const code = (response.body as { code?: unknown }).code;
          expect(isErrorCode(code), `${method} ${path} → ${JSON.stringify(response.body)}`).toBe(true);
          expect(code).not.toBe('INTERNAL_ERROR');
        },
      ),
      { numRuns: 1000 },
    );
  });
});
