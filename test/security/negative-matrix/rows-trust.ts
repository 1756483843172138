import { CompactSign } from 'jose';
import { SampleSigningKey } from '@tresor/attestation';
import { utf8Encode } from '@tresor/crypto';
import {
  AttestationTokenService,
  generateAdminKey,
  generateTokenSigner,
  parseResourcePath,
  sampleAttester,
  signAdminRequest,
} from '@tresor/trust';
import { answered, refusal, type Attack, type Control } from './attack.js';
import { ADMIN_LIST, AUDIENCE, ephemeralTeeKey, initDataFor, MEASUREMENT, type TrustEnv } from './env.js';

/**
 * Key release and the signed admin API, against an in-process trust service over loopback TLS
 * (test/support/trust-fixture.ts): every request is sent on the wire as guest-components or
 * `tresor trust admin` would send it, and the refusal is read from the `tresor-error-code` header.
 */

const RESOURCE = '/kbs/v0/resource/default/key/model';
const b64u = (text: string): string => Buffer.from(text).toString('base64url');

/** Moves the trust service's clock forward for the duration of `f`. */
async function later<T>(t: TrustEnv, ms: number, f: () => Promise<T>): Promise<T> {
  t.advance(ms);
  try {
    return await f();
  } finally {
    t.advance(-ms);
  }
}

const keyRelease = 'key release' as const;

export const keyReleaseControls: readonly Control[] = [
  {
    component: keyRelease,
    what: 'attested sample workload receives the default model key',
    run: async (env) => {
      const t = await env.trust();
      const { cookie } = await t.attested();
      return answered(await t.wire.get(RESOURCE, { cookie }));
    },
  },
  {
    component: keyRelease,
    what: "tenant acme's workload receives acme's model key",
    run: async (env) => {
      const t = await env.trust();
      const client = t.fx.client(
        sampleAttester({ signingKey: t.sampleKey, measurement: MEASUREMENT, initData: initDataFor('acme') }),
      );
      return refusal(() => client.getResource('kbs:///acme/key/model'));
    },
  },
];

export const keyReleaseAttacks: readonly Attack[] = [
  {
    component: keyRelease,
    attack: 'KBS protocol downgrade (version 0.1.0)',
    expect: 'KBS_PROTOCOL_VERSION_UNSUPPORTED',
    run: async (env) =>
      answered(
        await (
          await env.trust()
        ).wire.post('/kbs/v0/auth', JSON.stringify({ version: '0.1.0', tee: 'sample' })),
      ),
  },
  {
    component: keyRelease,
    attack: 'TEE the service does not verify (sgx)',
    expect: 'ATTESTATION_TEE_UNSUPPORTED',
    run: async (env) =>
      answered(
        await (await env.trust()).wire.post('/kbs/v0/auth', JSON.stringify({ version: '0.4.0', tee: 'sgx' })),
      ),
  },
  {
    component: keyRelease,
    attack: 'oversized /auth body (20 KiB)',
    expect: 'REQUEST_BODY_TOO_LARGE',
    run: async (env) =>
      answered(
        await (
          await env.trust()
        ).wire.post(
          '/kbs/v0/auth',
          JSON.stringify({ version: '0.4.0', tee: 'sample', 'extra-params': { pad: 'x'.repeat(20_000) } }),
        ),
      ),
  },
  {
    component: keyRelease,
    attack: 'evidence sent without a session',
    expect: 'KBS_SESSION_UNKNOWN',
    run: async (env) => {
      const t = await env.trust();
      const { nonce } = await t.auth();
      return answered(await t.attest('', await t.attestation({ nonce })));
    },
  },
  {
    component: keyRelease,
    attack: 'evidence sent after the session expired',
    expect: 'KBS_SESSION_EXPIRED',
    run: async (env) => {
      const t = await env.trust();
      const { cookie, nonce } = await t.auth();
      const body = await t.attestation({ nonce });
      return later(t, 301_000, async () => answered(await t.attest(cookie, body)));
    },
  },
  {
    component: keyRelease,
    attack: 'replayed nonce: a second answer to the same challenge',
    expect: 'KBS_NONCE_REPLAYED',
    run: async (env) => {
      const t = await env.trust();
      const { cookie, nonce } = await t.auth();
      const body = await t.attestation({ nonce });
      const first = await t.attest(cookie, body);
      if (first.status !== 200) throw new Error(`first answer refused: ${first.status}`);
      return answered(await t.attest(cookie, body));
    },
  },
  {
    component: keyRelease,
    attack: "stale nonce: an old session's attestation replayed into a new session",
    expect: 'EVIDENCE_STALE',
    run: async (env) => {
      const t = await env.trust();
      const old = await t.attestation({ nonce: (await t.auth()).nonce });
      return answered(await t.attest((await t.auth()).cookie, old));
    },
  },
  {
    component: keyRelease,
    attack: 'unbound key: report_data binds another key than the one submitted',
    expect: 'REPORT_DATA_MISMATCH',
    run: async (env) => {
      const t = await env.trust();
      const { cookie, nonce } = await t.auth();
      return answered(
        await t.attest(cookie, await t.attestation({ nonce, boundKey: await ephemeralTeeKey() })),
      );
    },
  },
  {
    component: keyRelease,
    attack: 'evidence signed by another installation key',
    expect: 'ATTESTATION_SIGNATURE_INVALID',
    run: async (env) => {
      const t = await env.trust();
      const { cookie, nonce } = await t.auth();
      return answered(
        await t.attest(cookie, await t.attestation({ nonce, signingKey: SampleSigningKey.generate() })),
      );
    },
  },
  {
    component: keyRelease,
    attack: 'workload measurement not in the released reference values',
    expect: 'MEASUREMENT_NOT_ALLOWED',
    run: async (env) => {
      const t = await env.trust();
      const { cookie, nonce } = await t.auth();
      return answered(
        await t.attest(cookie, await t.attestation({ nonce, measurement: new Uint8Array(48).fill(1) })),
      );
    },
  },
  {
    component: keyRelease,
    attack: 'residency: machine not in the inventory at attestation',
    expect: 'RESIDENCY_VIOLATION',
    run: async (env) => {
      const t = await env.trust();
      const { cookie, nonce } = await t.auth();
      const body = await t.attestation({ nonce });
      return t.withEmptyInventory(async () => answered(await t.attest(cookie, body)));
    },
  },
  {
    component: keyRelease,
    attack: 'residency: machine withdrawn from the inventory after attestation',
    expect: 'RESIDENCY_VIOLATION',
    run: async (env) => {
      const t = await env.trust();
      const { cookie } = await t.attested();
      return t.withEmptyInventory(async () => answered(await t.wire.get(RESOURCE, { cookie })));
    },
  },
  {
    component: keyRelease,
    attack: "wrong tenant: acme's workload asks for another tenant's model key",
    expect: 'POLICY_DENIED',
    run: async (env) => {
      const t = await env.trust();
      const client = t.fx.client(
        sampleAttester({ signingKey: t.sampleKey, measurement: MEASUREMENT, initData: initDataFor('acme') }),
      );
      return refusal(() => client.getResource('kbs:///other/key/model'));
    },
  },
  {
    component: keyRelease,
    attack: 'workload without a tenant asks for a tenant-scoped key (policy deny)',
    expect: 'POLICY_DENIED',
    run: async (env) => {
      const t = await env.trust();
      const { cookie } = await t.attested();
      return answered(await t.wire.get('/kbs/v0/resource/acme/key/model', { cookie }));
    },
  },
  {
    component: keyRelease,
    attack: 'init-data swapped after the TEE bound its digest',
    expect: 'INIT_DATA_MISMATCH',
    run: async (env) => {
      const t = await env.trust();
      const bound = initDataFor('acme');
      const client = t.fx.client({
        ...sampleAttester({ signingKey: t.sampleKey, measurement: MEASUREMENT, initData: bound }),
        initData: initDataFor('evil'),
      });
      return refusal(() => client.attest());
    },
  },
  {
    component: keyRelease,
    attack: 'TEE public key of a refused kind (RSA1_5)',
    expect: 'TEE_PUBLIC_KEY_INVALID',
    run: async (env) => {
      const t = await env.trust();
      const { cookie, nonce } = await t.auth();
      const body = await t.attestation({ nonce });
      (body['runtime-data'] as Record<string, unknown>)['tee-pubkey'] = {
        kty: 'RSA',
        alg: 'RSA1_5',
        n: 'AQAB',
        e: 'AQAB',
      };
      return answered(await t.attest(cookie, body));
    },
  },
  {
    component: keyRelease,
    attack: 'resource request without a token',
    expect: 'ATTESTATION_TOKEN_INVALID',
    run: async (env) => answered(await (await env.trust()).wire.get(RESOURCE)),
  },
  {
    component: keyRelease,
    attack: 'token with an edited payload',
    expect: 'ATTESTATION_TOKEN_INVALID',
    run: async (env) => {
      const t = await env.trust();
      const [header, payload, signature] = (await t.attested()).token.split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
      const forged = `${header}.${b64u(JSON.stringify({ ...claims, 'tresor.tenant': 'acme' }))}.${signature}`;
      return answered(await t.wire.get(RESOURCE, { authorization: `Bearer ${forged}` }));
    },
  },
  {
    component: keyRelease,
    attack: 'unsigned token (alg none)',
    expect: 'ATTESTATION_TOKEN_INVALID',
    run: async (env) => {
      const t = await env.trust();
      const payload = (await t.attested()).token.split('.')[1]!;
      const unsigned = `${b64u('{"alg":"none","typ":"JWT"}')}.${payload}.`;
      return answered(await t.wire.get(RESOURCE, { authorization: `Bearer ${unsigned}` }));
    },
  },
  {
    component: keyRelease,
    attack: 'token signed by another issuer key with the same claims',
    expect: 'ATTESTATION_TOKEN_INVALID',
    run: async (env) => {
      const t = await env.trust();
      const claims = JSON.parse(
        Buffer.from((await t.attested()).token.split('.')[1]!, 'base64url').toString(),
      ) as Record<string, unknown>;
      const other = new AttestationTokenService({
        signers: [await generateTokenSigner('ES256', 'attacker')],
        issuer: AUDIENCE,
        lifetimeSeconds: 60,
        now: () => t.now(),
      });
      const { token } = await other.issue(claims);
      return answered(await t.wire.get(RESOURCE, { authorization: `Bearer ${token}` }));
    },
  },
  {
    component: keyRelease,
    attack: 'expired token',
    expect: 'ATTESTATION_TOKEN_EXPIRED',
    run: async (env) => {
      const t = await env.trust();
      const { token } = await t.attested();
      return later(t, 120_000, async () =>
        answered(await t.wire.get(RESOURCE, { authorization: `Bearer ${token}` })),
      );
    },
  },
  {
    component: keyRelease,
    attack: 'resource path traversal (a/../b)',
    expect: 'RESOURCE_PATH_INVALID',
    run: () => refusal(() => parseResourcePath('default/../key')),
  },
  {
    component: keyRelease,
    attack: 'revoked key: the KEK sealing the resource was disabled',
    expect: 'KEY_DISABLED',
    run: async (env) => {
      const k = await env.keyState();
      await k.keyStore.disable(k.kekId);
      return refusal(() =>
        k.resources.release(parseResourcePath('default/key/model'), () => Promise.resolve(undefined)),
      );
    },
  },
];

// ── Signed admin API ─────────────────────────────────────────────────────────────────────────────

const adminApi = 'admin API' as const;

async function postAdmin(t: TrustEnv, body: string): Promise<ReturnType<typeof answered>> {
  return answered(await t.wire.post(ADMIN_LIST, body, { 'content-type': 'application/jose' }));
}

function signed(t: TrustEnv, options: { path?: string; audience?: string; at?: Date } = {}): Promise<string> {
  return signAdminRequest(t.admin, {
    audience: options.audience ?? AUDIENCE,
    path: options.path ?? ADMIN_LIST,
    request: null,
    now: options.at ?? t.now(),
  });
}

export const adminControls: readonly Control[] = [
  {
    component: adminApi,
    what: "a request signed by alice's admin key is served",
    run: async (env) => {
      const t = await env.trust();
      return postAdmin(t, await signed(t));
    },
  },
];

export const adminAttacks: readonly Attack[] = [
  {
    component: adminApi,
    attack: 'unsigned request (plain JSON body)',
    expect: 'ADMIN_SIGNATURE_MISSING',
    run: async (env) => postAdmin(await env.trust(), JSON.stringify({ request: null })),
  },
  {
    component: adminApi,
    attack: 'request with alg none',
    expect: 'ADMIN_SIGNATURE_MISSING',
    run: async (env) => {
      const t = await env.trust();
      const [, payload] = (await signed(t)).split('.');
      return postAdmin(t, `${b64u('{"alg":"none","kid":"alice","typ":"tresor-admin+jwt"}')}.${payload}.`);
    },
  },
  {
    component: adminApi,
    attack: "wrong key: signed by another key under alice's key id",
    expect: 'ADMIN_SIGNATURE_INVALID',
    run: async (env) => {
      const t = await env.trust();
      return postAdmin(
        t,
        await signAdminRequest(t.impostor, {
          audience: AUDIENCE,
          path: ADMIN_LIST,
          request: null,
          now: t.now(),
        }),
      );
    },
  },
  {
    component: adminApi,
    attack: 'key id not configured',
    expect: 'ADMIN_KEY_UNKNOWN',
    run: async (env) => {
      const t = await env.trust();
      const stranger = await generateAdminKey('carol');
      return postAdmin(
        t,
        await signAdminRequest(stranger, {
          audience: AUDIENCE,
          path: ADMIN_LIST,
          request: null,
          now: t.now(),
        }),
      );
    },
  },
  {
    component: adminApi,
    attack: 'replayed request (the same signed body twice)',
    expect: 'ADMIN_REQUEST_REPLAYED',
    run: async (env) => {
      const t = await env.trust();
      const body = await signed(t);
      if ((await postAdmin(t, body)) !== null) throw new Error('the first admin request was refused');
      return postAdmin(t, body);
    },
  },
  {
    component: adminApi,
    attack: 'expired request (signed 10 minutes ago)',
    expect: 'ADMIN_REQUEST_EXPIRED',
    run: async (env) => {
      const t = await env.trust();
      const body = await signed(t);
      return later(t, 600_000, () => postAdmin(t, body));
    },
  },
  {
    component: adminApi,
    attack: 'request signed for another operation (htu)',
    expect: 'ADMIN_SIGNATURE_INVALID',
    run: async (env) => {
      const t = await env.trust();
      return postAdmin(t, await signed(t, { path: '/admin/v0/reference-values/list' }));
    },
  },
  {
    component: adminApi,
    attack: 'request signed for another trust service (aud)',
    expect: 'ADMIN_SIGNATURE_INVALID',
    run: async (env) => {
      const t = await env.trust();
      return postAdmin(t, await signed(t, { audience: 'another-trust' }));
    },
  },
  {
    component: adminApi,
    attack: 'signed request with its payload edited',
    expect: 'ADMIN_SIGNATURE_INVALID',
    run: async (env) => {
      const t = await env.trust();
      const [header, payload, signature] = (await signed(t)).split('.');
      const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
      return postAdmin(
        t,
        `${header}.${b64u(JSON.stringify({ ...claims, request: { evil: true } }))}.${signature}`,
      );
    },
  },
  {
    component: adminApi,
    attack: 'HMAC-signed request (alg confusion, HS256 keyed with the public key)',
    expect: 'ADMIN_SIGNATURE_INVALID',
    run: async (env) => {
      const t = await env.trust();
      const [, payload] = (await signed(t)).split('.');
      const jws = await new CompactSign(Buffer.from(payload!, 'base64url'))
        .setProtectedHeader({ alg: 'HS256', kid: 'alice', typ: 'tresor-admin+jwt' })
        .sign(utf8Encode(JSON.stringify(t.admin.publicJwk)));
      return postAdmin(t, jws);
    },
  },
];
