import { createHash } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSampleEvidence, SampleSigningKey } from '@tresor/attestation';
import {
  kbsWire,
  sessionCookieOf,
  type KbsWire,
  type WireResponse,
} from '../../../../test/support/kbs-wire.js';
import { startTrustFixture, type TrustFixture } from '../../../../test/support/trust-fixture.js';
import { requireReleasedWorkload } from '../reference-values/match-reference-values.js';
import { requireResident } from '../inventory/residency-check.js';
import { sampleAttester } from './attester.js';
import { expectedReportData, primaryRuntimeData } from './runtime-data.js';
import type { TeePublicKeyJwk } from './tee-public-key.js';

const PREFIX = 'https://github.com/confidential-containers/kbs/errors/';
const MEASUREMENT = new Uint8Array(48).fill(0x5a);
const MEASUREMENT_HEX = '5a'.repeat(48);

async function ephemeralKey(): Promise<TeePublicKeyJwk> {
  const { publicKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
  const jwk = await exportJWK(publicKey);
  return { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: jwk.x!, y: jwk.y! };
}

/** Expects a Trustee-shaped refusal: status, error variant, and the Tresor code leading the detail. */
function expectRefusal(res: WireResponse, status: number, variant: string, code: string): void {
  expect({ status: res.status, header: res.headers['tresor-error-code'] }).toEqual({ status, header: code });
  const body = res.json();
  expect(Object.keys(body)).toEqual(['type', 'detail']);
  expect(body.type).toBe(`${PREFIX}${variant}`);
  expect(String(body.detail)).toMatch(new RegExp(`^${code}: `));
}

interface Flow {
  readonly wire: KbsWire;
  auth(tee?: string): Promise<{ cookie: string; nonce: string }>;
  attestation(options: {
    nonce: string;
    key?: TeePublicKeyJwk;
    boundKey?: TeePublicKeyJwk;
    signingKey?: SampleSigningKey;
    initData?: string;
    measurement?: Uint8Array;
  }): Promise<Record<string, unknown>>;
  attest(cookie: string, body: Record<string, unknown> | string): Promise<WireResponse>;
  /** auth + attest with good evidence; returns the session cookie and token. */
  attested(signingKey?: SampleSigningKey): Promise<{ cookie: string; token: string; attest: WireResponse }>;
}

function flowFor(fx: TrustFixture, wire: KbsWire): Flow {
  const flow: Flow = {
    wire,
    async auth(tee = 'sample') {
      const res = await wire.post(
        '/kbs/v0/auth',
        JSON.stringify({ version: '0.4.0', tee, 'extra-params': '' }),
      );
      expect(res.status).toBe(200);
      return { cookie: sessionCookieOf(res), nonce: (res.json() as { nonce: string }).nonce };
    },
    async attestation({ nonce, key, boundKey, signingKey, measurement, initData }) {
      const sent = key ?? (await ephemeralKey());
      const reportData = await expectedReportData(primaryRuntimeData(boundKey ?? sent, nonce, ''));
      const evidence = createSampleEvidence({
        reportData,
        svn: 1,
        signingKey: signingKey ?? fx.sampleKey,
        measurement: measurement ?? MEASUREMENT,
      });
      return {
        ...(initData === undefined ? {} : { 'init-data': { format: 'toml', body: initData } }),
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
    async attested(signingKey) {
      const { cookie, nonce } = await flow.auth();
      const attest = await flow.attest(
        cookie,
        await flow.attestation({ nonce, ...(signingKey === undefined ? {} : { signingKey }) }),
      );
      expect(attest.status).toBe(200);
      return { cookie, token: (attest.json() as { token: string }).token, attest };
    },
  };
  return flow;
}

describe('KBS refusals: code and status for each', () => {
  let fx: TrustFixture;
  let flow: Flow;
  let nowMs = Date.now();
  const inventoryKey = SampleSigningKey.generate();
  let inventory = [
    { id: inventoryKey.verifyKey.hex, kind: 'sample-machine' as const, jurisdiction: 'CH', site: 'test' },
  ];

  beforeAll(async () => {
    fx = await startTrustFixture({
      now: () => new Date(nowMs),
      sampleKey: inventoryKey,
      resources: {
        'default/key/model': new TextEncoder().encode('secret-1'),
        'other/key/model': new TextEncoder().encode('secret-2'),
      },
      config: {
        kbs: { authBodyBytes: 1024, attestBodyBytes: 8192 },
        tokens: { lifetimeSeconds: 60 },
        resourcePolicy: 'permit(principal, action, resource) when { resource.repository == "default" };',
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
    });
    flow = flowFor(fx, kbsWire(fx.url, fx.pki.ca));
  });
  afterAll(async () => {
    await flow.wire.close();
    await fx.close();
  });

  it('accepts a good attestation and names the release and residency in the token', async () => {
    const { attest } = await flow.attested();
    const [, payload] = (attest.json() as { token: string }).token.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8')) as {
      submods: { cpu0: Record<string, unknown> };
    };
    expect(claims.submods.cpu0).toMatchObject({
      'tresor.component': 'serving',
      'tresor.release': '1.0.0',
      'tresor.residency': 'CH',
      'tresor.hardware-ids': [inventoryKey.verifyKey.hex],
      'tresor.measurements': { measurement: MEASUREMENT_HEX },
    });
  });

  it('refuses a protocol version other than 0.4.0 (KBS_PROTOCOL_VERSION_UNSUPPORTED, 401)', async () => {
    for (const version of ['0.1.1', '0.1.0', '0.4.1', '0.4.0-rc1', 'v0.4.0', '']) {
      const res = await flow.wire.post('/kbs/v0/auth', JSON.stringify({ version, tee: 'sample' }));
      expectRefusal(res, 401, 'AttestationError', 'KBS_PROTOCOL_VERSION_UNSUPPORTED');
    }
  });

  it('refuses a TEE it does not verify (ATTESTATION_TEE_UNSUPPORTED, 401)', async () => {
    const res = await flow.wire.post('/kbs/v0/auth', JSON.stringify({ version: '0.4.0', tee: 'sgx' }));
    expectRefusal(res, 401, 'AttestationError', 'ATTESTATION_TEE_UNSUPPORTED');
  });

  it('refuses malformed JSON (INPUT_MALFORMED, 401) and says nothing of the body', async () => {
    const auth = await flow.wire.post('/kbs/v0/auth', '{"version": "0.4.0", CANARY-3141');
    expectRefusal(auth, 401, 'AttestationError', 'INPUT_MALFORMED');
    expect(auth.text).not.toContain('CANARY');
    const { cookie } = await flow.auth();
    expectRefusal(await flow.attest(cookie, '{"runtime-data": '), 401, 'AttestationError', 'INPUT_MALFORMED');
    expectRefusal(
      await flow.attest(cookie, '{"runtime-data": {}}'),
      401,
      'AttestationError',
      'INPUT_MALFORMED',
    );
  });

  it('refuses bodies over the configured limits (REQUEST_BODY_TOO_LARGE, 413)', async () => {
    const big = JSON.stringify({
      version: '0.4.0',
      tee: 'sample',
      'extra-params': { pad: 'x'.repeat(2000) },
    });
    expectRefusal(
      await flow.wire.post('/kbs/v0/auth', big),
      413,
      'PayloadTooLarge',
      'REQUEST_BODY_TOO_LARGE',
    );
    const { cookie } = await flow.auth();
    expectRefusal(
      await flow.attest(cookie, 'x'.repeat(9000)),
      413,
      'PayloadTooLarge',
      'REQUEST_BODY_TOO_LARGE',
    );
  });

  it('refuses /attest without a session or with an unknown one (KBS_SESSION_UNKNOWN, 401)', async () => {
    const { nonce } = await flow.auth();
    const body = await flow.attestation({ nonce });
    expectRefusal(await flow.attest('', body), 401, 'AttestationError', 'KBS_SESSION_UNKNOWN');
    expectRefusal(
      await flow.attest(`kbs-session-id=${'0'.repeat(32)}`, body),
      401,
      'AttestationError',
      'KBS_SESSION_UNKNOWN',
    );
    expectRefusal(
      await flow.attest('kbs-session-id=../../etc', body),
      401,
      'AttestationError',
      'KBS_SESSION_UNKNOWN',
    );
  });

  it('refuses an expired session (KBS_SESSION_EXPIRED, 401)', async () => {
    const { cookie, nonce } = await flow.auth();
    const body = await flow.attestation({ nonce });
    nowMs += 301_000;
    try {
      expectRefusal(await flow.attest(cookie, body), 401, 'AttestationError', 'KBS_SESSION_EXPIRED');
    } finally {
      nowMs -= 301_000;
    }
  });

  it('refuses a second answer to the same challenge (KBS_NONCE_REPLAYED, 401)', async () => {
    const { cookie, nonce } = await flow.auth();
    const body = await flow.attestation({ nonce });
    expect((await flow.attest(cookie, body)).status).toBe(200);
    expectRefusal(await flow.attest(cookie, body), 401, 'AttestationError', 'KBS_NONCE_REPLAYED');
  });

  it('refuses an old attestation replayed into a new session (EVIDENCE_STALE, 401)', async () => {
    const first = await flow.auth();
    const old = await flow.attestation({ nonce: first.nonce });
    const second = await flow.auth();
    expectRefusal(await flow.attest(second.cookie, old), 401, 'AttestationError', 'EVIDENCE_STALE');
  });

  it('refuses evidence whose report_data does not bind the submitted key (REPORT_DATA_MISMATCH, 401)', async () => {
    const { cookie, nonce } = await flow.auth();
    const body = await flow.attestation({ nonce, boundKey: await ephemeralKey() });
    expectRefusal(await flow.attest(cookie, body), 401, 'AttestationError', 'REPORT_DATA_MISMATCH');
  });

  it('refuses evidence signed by another installation key (ATTESTATION_SIGNATURE_INVALID, 401)', async () => {
    const { cookie, nonce } = await flow.auth();
    const body = await flow.attestation({ nonce, signingKey: SampleSigningKey.generate() });
    expectRefusal(await flow.attest(cookie, body), 401, 'AttestationError', 'ATTESTATION_SIGNATURE_INVALID');
  });

  it('refuses a measurement not in the reference values (MEASUREMENT_NOT_ALLOWED, 401)', async () => {
    const { cookie, nonce } = await flow.auth();
    const body = await flow.attestation({ nonce, measurement: new Uint8Array(48).fill(1) });
    expectRefusal(await flow.attest(cookie, body), 401, 'AttestationError', 'MEASUREMENT_NOT_ALLOWED');
  });

  it('refuses hardware outside the residency inventory (RESIDENCY_VIOLATION, 401)', async () => {
    const outsider = SampleSigningKey.generate();
    const other = await startTrustFixture({
      sampleKey: outsider,
      residency: {
        requireResident: (ids) =>
          requireResident(
            {
              hardware: [
                { id: inventoryKey.verifyKey.hex, kind: 'sample-machine', jurisdiction: 'CH', site: 'test' },
              ],
            },
            ids,
            'CH',
          ),
      },
    });
    const wire = kbsWire(other.url, other.pki.ca);
    try {
      const { cookie, nonce } = await flowFor(other, wire).auth();
      const body = await flowFor(other, wire).attestation({ nonce, signingKey: outsider });
      expectRefusal(
        await flowFor(other, wire).attest(cookie, body),
        401,
        'AttestationError',
        'RESIDENCY_VIOLATION',
      );
    } finally {
      await wire.close();
      await other.close();
    }
  });

  it.each([
    ['an OKP key', { kty: 'OKP', crv: 'X25519', x: 'AAAA' }],
    ['RSA1_5', { kty: 'RSA', alg: 'RSA1_5', n: 'AQAB', e: 'AQAB' }],
    ['a 1024-bit RSA key', { kty: 'RSA', alg: 'RSA-OAEP-256', n: `w${'A'.repeat(170)}`, e: 'AQAB' }],
    [
      'a point off the curve',
      { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: 'A'.repeat(43), y: 'A'.repeat(43) },
    ],
    [
      'a private key',
      {
        kty: 'EC',
        crv: 'P-256',
        alg: 'ECDH-ES+A256KW',
        x: 'A'.repeat(43),
        y: 'A'.repeat(43),
        d: 'A'.repeat(43),
      },
    ],
    [
      'base64 with padding',
      { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: `${'A'.repeat(43)}=`, y: 'A'.repeat(43) },
    ],
  ])('refuses a malformed JWK: %s (TEE_PUBLIC_KEY_INVALID, 401)', async (_what, jwk) => {
    const { cookie, nonce } = await flow.auth();
    const body = await flow.attestation({ nonce });
    (body['runtime-data'] as Record<string, unknown>)['tee-pubkey'] = jwk;
    expectRefusal(await flow.attest(cookie, body), 401, 'AttestationError', 'TEE_PUBLIC_KEY_INVALID');
  });

  it('accepts init-data the TEE bound and reads the tenant from it', async () => {
    const initData = 'algorithm = "sha384"\nversion = "0.1.0"\n\n[data]\ntresor-tenant = "acme"\n';
    const client = fx.client(
      sampleAttester({ signingKey: inventoryKey, measurement: MEASUREMENT, initData }),
    );
    await client.attest();
    const claims = JSON.parse(Buffer.from(client.token!.split('.')[1]!, 'base64url').toString('utf8')) as {
      submods: { cpu0: Record<string, unknown> };
    };
    expect(claims.submods.cpu0).toMatchObject({
      'tresor.tenant': 'acme',
      'tresor.init-data-hash': createHash('sha384').update(initData).digest('hex'),
    });
  });

  it('refuses init-data other than the TEE bound (INIT_DATA_MISMATCH) and init-data that is not initdata (INIT_DATA_MALFORMED)', async () => {
    const bound = 'algorithm = "sha384"\nversion = "0.1.0"\n\n[data]\ntresor-tenant = "acme"\n';
    const swapped = fx.client({
      ...sampleAttester({ signingKey: inventoryKey, measurement: MEASUREMENT, initData: bound }),
      initData: bound.replace('acme', 'evil'),
    });
    await expect(swapped.attest()).rejects.toMatchObject({ code: 'INIT_DATA_MISMATCH' });
    const malformed = 'algorithm = "sha384"\nversion = 1\n';
    const notInitData = fx.client(
      sampleAttester({ signingKey: inventoryKey, measurement: MEASUREMENT, initData: malformed }),
    );
    await expect(notInitData.attest()).rejects.toMatchObject({ code: 'INIT_DATA_MALFORMED' });
  });

  it('denies a resource the Cedar policy does not permit (POLICY_DENIED, 401 PolicyDeny)', async () => {
    const { cookie } = await flow.attested();
    expectRefusal(
      await flow.wire.get('/kbs/v0/resource/other/key/model', { cookie }),
      401,
      'PolicyDeny',
      'POLICY_DENIED',
    );
    expect(fx.audit.some((e) => e.action === 'kbs.resource.release' && e.outcome === 'denied')).toBe(true);
  });

  it('answers a missing resource as Trustee does (RESOURCE_NOT_FOUND, 401 PluginInternalError)', async () => {
    const { cookie } = await flow.attested();
    expectRefusal(
      await flow.wire.get('/kbs/v0/resource/default/key/absent', { cookie }),
      401,
      'PluginInternalError',
      'RESOURCE_NOT_FOUND',
    );
  });

  it('answers malformed resource paths with 404 InvalidRequestPath', async () => {
    const { cookie } = await flow.attested();
    expectRefusal(
      await flow.wire.get('/kbs/v0/resource/default/key', { cookie }),
      404,
      'InvalidRequestPath',
      'ROUTE_NOT_FOUND',
    );
    expectRefusal(
      await flow.wire.get('/kbs/v0/resource/default/a%2Fb/model', { cookie }),
      404,
      'InvalidRequestPath',
      'RESOURCE_PATH_INVALID',
    );
    expectRefusal(
      await flow.wire.get('/kbs/v0/resource/default/has%20space/model', { cookie }),
      404,
      'InvalidRequestPath',
      'RESOURCE_PATH_INVALID',
    );
    expectRefusal(
      await flow.wire.get('/kbs/v0/nothing-here', { cookie }),
      404,
      'InvalidRequestPath',
      'ROUTE_NOT_FOUND',
    );
  });

  it('refuses a resource request without a token (TokenNotFound) or with a bad one (TokenVerifierError)', async () => {
    expectRefusal(
      await flow.wire.get('/kbs/v0/resource/default/key/model'),
      401,
      'TokenNotFound',
      'ATTESTATION_TOKEN_INVALID',
    );
    const { cookie } = await flow.auth();
    expectRefusal(
      await flow.wire.get('/kbs/v0/resource/default/key/model', { cookie }),
      401,
      'TokenNotFound',
      'ATTESTATION_TOKEN_INVALID',
    );
    const { token } = await flow.attested();
    const [header, payload, signature] = token.split('.');
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), jti: 'x' })).toString('base64url')}.${signature}`;
    expectRefusal(
      await flow.wire.get('/kbs/v0/resource/default/key/model', { authorization: `Bearer ${forged}` }),
      401,
      'TokenVerifierError',
      'ATTESTATION_TOKEN_INVALID',
    );
    const unsigned = `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${payload}.`;
    expectRefusal(
      await flow.wire.get('/kbs/v0/resource/default/key/model', { authorization: `Bearer ${unsigned}` }),
      401,
      'TokenVerifierError',
      'ATTESTATION_TOKEN_INVALID',
    );
  });

  it('refuses an expired token, by session and as bearer (ATTESTATION_TOKEN_EXPIRED, 401)', async () => {
    const { cookie, token } = await flow.attested();
    nowMs += 120_000;
    try {
      expectRefusal(
        await flow.wire.get('/kbs/v0/resource/default/key/model', { cookie }),
        401,
        'TokenVerifierError',
        'ATTESTATION_TOKEN_EXPIRED',
      );
      expectRefusal(
        await flow.wire.get('/kbs/v0/resource/default/key/model', { authorization: `Bearer ${token}` }),
        401,
        'TokenVerifierError',
        'ATTESTATION_TOKEN_EXPIRED',
      );
    } finally {
      nowMs -= 120_000;
    }
  });

  it('refuses release to hardware withdrawn from the inventory after attestation (RESIDENCY_VIOLATION, 401)', async () => {
    const { cookie } = await flow.attested();
    const kept = inventory;
    inventory = [];
    try {
      expectRefusal(
        await flow.wire.get('/kbs/v0/resource/default/key/model', { cookie }),
        401,
        'AttestationError',
        'RESIDENCY_VIOLATION',
      );
    } finally {
      inventory = kept;
    }
    expect((await flow.wire.get('/kbs/v0/resource/default/key/model', { cookie })).status).toBe(200);
  });

  it('refuses a token issued by another trust service (ATTESTATION_TOKEN_INVALID, 401)', async () => {
    const { token } = await flow.attested();
    const other = await startTrustFixture({
      config: { resourcePolicy: 'permit(principal, action, resource);' },
    });
    const wire = kbsWire(other.url, other.pki.ca);
    try {
      const res = await wire.get('/kbs/v0/resource/default/key/model', { authorization: `Bearer ${token}` });
      expectRefusal(res, 401, 'TokenVerifierError', 'ATTESTATION_TOKEN_INVALID');
    } finally {
      await wire.close();
      await other.close();
    }
  });
});
