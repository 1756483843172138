import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import canonicalize from 'canonicalize';
import { createLocalJWKSet, exportJWK, flattenedDecrypt, generateKeyPair, jwtVerify, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kbsWire, sessionCookieOf, type KbsWire } from '../../../../test/support/kbs-wire.js';
import { startTrustFixture, type TrustFixture } from '../../../../test/support/trust-fixture.js';
import type { FlattenedJwe } from './jwe.js';

const EXAMPLES = new URL('../../../../../shared/testdata/protocol/kbs/examples/', import.meta.url);
const SECRET = 'model-key-for-the-sample-tee';

/**
 * A client built exactly like Trustee's guest-components (kbs_protocol rcar_client.rs with the
 * sample attester), independently of Tresor's own KBS client: the Request as it sends it, the
 * runtime data hashed with npm `canonicalize` and node:crypto SHA-384, Trustee's unsigned sample
 * evidence (report_data = standard base64 of the 48-byte digest), and the JWE decrypted with jose.
 */
async function trusteeClientFlow(wire: KbsWire, resource: string) {
  const auth = await wire.post(
    '/kbs/v0/auth',
    JSON.stringify({
      version: '0.4.0',
      tee: 'sample',
      'extra-params': { 'supported-hash-algorithms': ['sha256', 'sha384', 'sha512', 'sm3'] },
    }),
  );
  const cookie = sessionCookieOf(auth);
  const { nonce } = auth.json() as { nonce: string };

  const { publicKey, privateKey } = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256' });
  const exported = await exportJWK(publicKey);
  const teePubkey: JWK = { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', x: exported.x!, y: exported.y! };
  const bound = canonicalize({ 'tee-pubkey': teePubkey, nonce, 'additional-evidence': '' })!;
  const digest = createHash('sha384').update(bound).digest();
  const attestation = {
    'runtime-data': { nonce, 'tee-pubkey': teePubkey },
    'tee-evidence': {
      primary_evidence: { svn: '1', report_data: digest.toString('base64') },
      additional_evidence: '',
    },
  };
  const attest = await wire.post('/kbs/v0/attest', JSON.stringify(attestation), {
    'content-type': 'application/json',
    cookie,
  });
  const got = await wire.get(`/kbs/v0/resource/${resource}`, { cookie });
  return { auth, nonce, attest, got, privateKey, teePubkey, cookie };
}

describe('KBS protocol, as Trustee guest-components speaks it', () => {
  let fx: TrustFixture;
  let wire: KbsWire;
  let flow: Awaited<ReturnType<typeof trusteeClientFlow>>;

  beforeAll(async () => {
    fx = await startTrustFixture({
      resources: { 'default/key/model': new TextEncoder().encode(SECRET) },
      // Trustee's sample attester signs nothing: accepted here for this interoperability test only.
      config: {
        attestation: { acceptUnsignedSample: true },
        resourcePolicy: 'permit(principal, action, resource);',
      },
    });
    wire = kbsWire(fx.url, fx.pki.ca);
    flow = await trusteeClientFlow(wire, 'default/key/model');
  });
  afterAll(async () => {
    await wire.close();
    await fx.close();
  });

  it('answers /auth with a Challenge shaped like examples/02-challenge.json and a session cookie', () => {
    const example = JSON.parse(readFileSync(new URL('02-challenge.json', EXAMPLES), 'utf8')) as Record<
      string,
      unknown
    >;
    expect(flow.auth.status).toBe(200);
    const challenge = flow.auth.json();
    expect(Object.keys(challenge)).toEqual(Object.keys(example).filter((k) => k !== '_comment'));
    expect(challenge['extra-params']).toBe('');
    // 32 random bytes in standard base64 with padding (not base64url).
    expect(flow.nonce).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(flow.nonce, 'base64')).toHaveLength(32);
    expect(flow.auth.text).toBe(`{"nonce":"${flow.nonce}","extra-params":""}`);
    const setCookie = String(flow.auth.headers['set-cookie']);
    expect(setCookie).toMatch(
      /^kbs-session-id=[0-9a-f]{32}; Expires=\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} GMT;/,
    );
    // A UUIDv4 in simple form, as Trustee's session ids are.
    expect(flow.cookie.slice('kbs-session-id='.length)).toMatch(
      /^[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}$/,
    );
  });

  it('accepts the example Request of examples/01-request.json as sent', async () => {
    const example = JSON.parse(readFileSync(new URL('01-request.json', EXAMPLES), 'utf8')) as Record<
      string,
      unknown
    >;
    delete example._comment;
    const res = await wire.post('/kbs/v0/auth', JSON.stringify({ ...example, tee: 'sample' }));
    expect(res.status).toBe(200);
    // The example names tee "snp", which this service verifies too.
    expect((await wire.post('/kbs/v0/auth', JSON.stringify(example))).status).toBe(200);
  });

  it('returns an EAR token from /attest that verifies against the published JWKS', async () => {
    expect(flow.attest.status).toBe(200);
    const body = flow.attest.json();
    expect(Object.keys(body)).toEqual(['token']);
    const jwks = (await wire.get('/.well-known/jwks.json')).json() as { keys: JWK[] };
    const { payload, protectedHeader } = await jwtVerify(
      body.token as string,
      createLocalJWKSet({ keys: jwks.keys }),
      {
        issuer: 'tresor-trust',
        currentDate: new Date(),
      },
    );
    expect(protectedHeader).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(protectedHeader.jwk).toMatchObject({ kty: 'EC', crv: 'P-256' });
    expect(payload).toMatchObject({
      eat_profile: 'tag:github.com,2023:veraison/ear',
      'ear.verifier-id': { developer: 'Tresor' },
      submods: {
        cpu0: {
          // The sample TEE is never affirming: no hardware protects it.
          'ear.status': 'warning',
          'tresor.tee': 'sample',
          'tresor.insecure': true,
          'ear.veraison.annotated-evidence': {
            runtime_data_claims: {
              nonce: flow.nonce,
              'tee-pubkey': flow.teePubkey,
              'additional-evidence-sha256': '',
            },
          },
        },
      },
    });
    expect(payload.exp! - payload.iat!).toBe(300);
    // Where Trustee's KBS looks for the TEE key (kbs/src/token/mod.rs TOKEN_TEE_PUBKEY_PATH_EAR).
    const cpu0 = (payload.submods as Record<string, Record<string, Record<string, Record<string, unknown>>>>)
      .cpu0!;
    expect(cpu0['ear.veraison.annotated-evidence']!.runtime_data_claims!['tee-pubkey']).toEqual(
      flow.teePubkey,
    );
  });

  it('releases the resource as a flattened JWE in Trustee member order, decrypted with the ephemeral key', async () => {
    expect(flow.got.status).toBe(200);
    expect(flow.got.headers['content-type']).toMatch(/^application\/json/);
    const jwe = flow.got.json() as unknown as FlattenedJwe;
    expect(Object.keys(jwe)).toEqual(['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag']);
    for (const value of Object.values(jwe)) expect(value).toMatch(/^[A-Za-z0-9_-]+$/);
    const header = Buffer.from(jwe.protected, 'base64url').toString('utf8');
    expect(header).toMatch(
      /^\{"alg":"ECDH-ES\+A256KW","enc":"A256GCM","epk":\{"crv":"P-256","kty":"EC","x":"[A-Za-z0-9_-]{43}","y":"[A-Za-z0-9_-]{43}"\}\}$/,
    );
    // guest-components rebuilds the AAD by re-serialising the parsed header (serde_json with
    // preserve_order): the result must be the very same bytes.
    expect(JSON.stringify(JSON.parse(header))).toBe(header);
    expect(Buffer.from(jwe.encrypted_key, 'base64url')).toHaveLength(40);
    expect(Buffer.from(jwe.iv, 'base64url')).toHaveLength(12);
    expect(Buffer.from(jwe.tag, 'base64url')).toHaveLength(16);
    const { plaintext } = await flattenedDecrypt(jwe, flow.privateKey);
    expect(new TextDecoder().decode(plaintext)).toBe(SECRET);
  });

  it('also releases to the attestation token presented as a bearer token, without a session', async () => {
    const token = (flow.attest.json() as { token: string }).token;
    const res = await wire.get('/kbs/v0/resource/default/key/model', { authorization: `Bearer ${token}` });
    expect(res.status).toBe(200);
    const { plaintext } = await flattenedDecrypt(res.json() as never, flow.privateKey);
    expect(new TextDecoder().decode(plaintext)).toBe(SECRET);
  });

  it('records the attestation and the release in the audit log, without the secret or the token', () => {
    const actions = fx.audit.map((e) => `${e.action}:${e.outcome}`);
    expect(actions).toContain('kbs.attest:success');
    expect(actions).toContain('kbs.resource.release:success');
    const text = JSON.stringify(fx.audit);
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain((flow.attest.json() as { token: string }).token);
  });
});
