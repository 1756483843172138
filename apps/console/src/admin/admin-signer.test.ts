import { describe, expect, it } from 'vitest';
import {
  ADMIN_MEDIA_TYPE as TRUST_MEDIA_TYPE,
  ADMIN_PREFIX as TRUST_PREFIX,
  ADMIN_REQUEST_TYPE as TRUST_REQUEST_TYPE,
  AdminKeySet,
  ReplayGuard,
  exportAdminKey,
  generateAdminKey,
  importAdminKey,
  signAdminRequest as trustSign,
  verifyAdminRequest,
  type AdminAlgorithm,
} from '@tresor/trust';
import { isTresorError } from '@tresor/protocol';
import {
  ADMIN_MEDIA_TYPE,
  ADMIN_PREFIX,
  ADMIN_REQUEST_TYPE,
  importAdminKeyJwk,
  signAdminRequest,
} from './admin-signer.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const PATH = '/admin/v0/api-keys/create';
const REQUEST = {
  tenant: 'acme',
  name: 'ci — “quoted” ünïcode',
  scopes: ['chat'],
  nested: { a: [1, 2.5, null] },
};

async function keyPair(algorithm: AdminAlgorithm, id = 'alice') {
  const trustKey = await generateAdminKey(id, algorithm);
  const jwk = await exportAdminKey(trustKey);
  const keys = await AdminKeySet.parse([{ id, jwk: trustKey.publicJwk }]);
  return { trustKey, jwk, keys, consoleKey: await importAdminKeyJwk(jwk) };
}

function verify(
  jws: string,
  keys: AdminKeySet,
  overrides: { audience?: string; path?: string; now?: Date } = {},
) {
  return verifyAdminRequest(jws, {
    keys,
    audience: overrides.audience ?? 'tresor-local-gateway',
    path: overrides.path ?? PATH,
    now: overrides.now ?? NOW,
    windowSeconds: 300,
    replay: new ReplayGuard(),
  });
}

const options = {
  audience: 'tresor-local-gateway',
  path: PATH,
  request: REQUEST,
  now: NOW,
  jti: 'AAAAAAAAAAAAAAAAAAAAAA',
};

describe('browser admin signer = services/trust signAdminRequest', () => {
  it('shares the wire constants', () => {
    expect([ADMIN_MEDIA_TYPE, ADMIN_PREFIX, ADMIN_REQUEST_TYPE]).toEqual([
      TRUST_MEDIA_TYPE,
      TRUST_PREFIX,
      TRUST_REQUEST_TYPE,
    ]);
  });

  it('EdDSA: byte-identical requests (Ed25519 signatures are deterministic)', async () => {
    const { trustKey, consoleKey } = await keyPair('EdDSA');
    expect(await signAdminRequest(consoleKey, options)).toBe(await trustSign(trustKey, options));
  });

  it('ES256: identical header and payload bytes; both signatures verify (ECDSA is randomised)', async () => {
    const { trustKey, consoleKey, keys } = await keyPair('ES256');
    const mine = await signAdminRequest(consoleKey, options);
    const theirs = await trustSign(trustKey, options);
    const signingInput = (jws: string) => jws.split('.').slice(0, 2).join('.');
    expect(signingInput(mine)).toBe(signingInput(theirs));
    expect(mine.split('.')[2]).toHaveLength(86); // 64 raw bytes r‖s, base64url (RFC 7518 §3.4)
    const verified = await verify(mine, keys);
    expect(verified).toMatchObject({ adminKeyId: 'alice', jti: options.jti, request: REQUEST });
  });

  it.each(['ES256', 'EdDSA'] as const)(
    '%s: the trust service accepts a request with a fresh random jti',
    async (alg) => {
      const { consoleKey, keys } = await keyPair(alg);
      const { jti: _jti, ...rest } = options;
      const jws = await signAdminRequest(consoleKey, rest);
      const verified = await verify(jws, keys);
      expect(verified.jti).toMatch(/^[A-Za-z0-9_-]{22}$/);
    },
  );

  it('imports the key non-extractable: page script cannot read it back', async () => {
    const { consoleKey } = await keyPair('ES256');
    expect(consoleKey.privateKey.extractable).toBe(false);
    await expect(crypto.subtle.exportKey('jwk', consoleKey.privateKey)).rejects.toThrow();
  });

  it('imports what the trust service imports', async () => {
    const { jwk } = await keyPair('EdDSA', 'ops@example.ch');
    const [mine, theirs] = await Promise.all([importAdminKeyJwk(jwk), importAdminKey(jwk)]);
    expect([mine.id, mine.algorithm]).toEqual([theirs.id, theirs.algorithm]);
  });
});

describe('browser admin signer: refusals', () => {
  it('a request edited after signing is refused by the service', async () => {
    const { consoleKey, keys } = await keyPair('EdDSA');
    const jws = await signAdminRequest(consoleKey, options);
    const [h, p, s] = jws.split('.');
    const payload = JSON.parse(Buffer.from(p!, 'base64url').toString()) as { request: { tenant: string } };
    payload.request.tenant = 'other';
    const edited = `${h!}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s!}`;
    await expect(verify(edited, keys)).rejects.toMatchObject({ code: 'ADMIN_SIGNATURE_INVALID' });
  });

  it('signed for another operation or audience: refused', async () => {
    const { consoleKey, keys } = await keyPair('ES256');
    const jws = await signAdminRequest(consoleKey, options);
    await expect(verify(jws, keys, { path: '/admin/v0/api-keys/revoke' })).rejects.toMatchObject({
      code: 'ADMIN_SIGNATURE_INVALID',
    });
    await expect(verify(jws, keys, { audience: 'tresor-local-trust' })).rejects.toMatchObject({
      code: 'ADMIN_SIGNATURE_INVALID',
    });
  });

  it('signed by a key the service does not list: refused', async () => {
    const { consoleKey } = await keyPair('EdDSA', 'mallory');
    const { keys } = await keyPair('EdDSA', 'alice');
    await expect(verify(await signAdminRequest(consoleKey, options), keys)).rejects.toMatchObject({
      code: 'ADMIN_KEY_UNKNOWN',
    });
  });

  it('signed too long ago: refused as expired', async () => {
    const { consoleKey, keys } = await keyPair('EdDSA');
    const jws = await signAdminRequest(consoleKey, options);
    await expect(verify(jws, keys, { now: new Date(NOW.getTime() + 3_600_000) })).rejects.toMatchObject({
      code: 'ADMIN_REQUEST_EXPIRED',
    });
  });

  const refusedFiles: [string, unknown][] = [
    ['not an object', 'a string'],
    ['an array', []],
    ['null', null],
    ['no kid', { kty: 'OKP', crv: 'Ed25519', x: 'AA', d: 'AA' }],
    ['a kid with spaces', { kid: 'a b', kty: 'OKP', crv: 'Ed25519', x: 'AA', d: 'AA' }],
    ['a public key only', { kid: 'a', kty: 'OKP', crv: 'Ed25519', x: 'AA' }],
    ['an RSA key', { kid: 'a', kty: 'RSA', n: 'AA', e: 'AQAB', d: 'AA' }],
    ['a P-384 key', { kid: 'a', kty: 'EC', crv: 'P-384', x: 'AA', y: 'AA', d: 'AA' }],
    ['an X25519 key', { kid: 'a', kty: 'OKP', crv: 'X25519', x: 'AA', d: 'AA' }],
  ];
  it.each(refusedFiles)('refuses a key file that is %s, with INPUT_MALFORMED', async (_what, value) => {
    const err: unknown = await importAdminKeyJwk(value).catch((e: unknown) => e);
    expect(isTresorError(err) && err.code).toBe('INPUT_MALFORMED');
  });

  it('refuses a key whose alg contradicts its curve', async () => {
    const { jwk } = await keyPair('EdDSA');
    await expect(importAdminKeyJwk({ ...jwk, alg: 'ES256' })).rejects.toMatchObject({
      code: 'INPUT_MALFORMED',
    });
  });

  it.each(['ES256', 'EdDSA'] as const)(
    '%s: refuses a private key that does not belong to its public half, without echoing key material',
    async (alg) => {
      const { jwk } = await keyPair(alg);
      const other = await exportAdminKey(await generateAdminKey('alice', alg));
      const err: unknown = await importAdminKeyJwk({ ...jwk, d: other.d }).catch((e: unknown) => e);
      expect(isTresorError(err) && err.code).toBe('INPUT_MALFORMED');
      expect((err as Error).message).not.toContain(String(other.d));
    },
  );
});
