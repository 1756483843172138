import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { SignJWT, generateKeyPair, exportJWK, type JSONWebKeySet, type JWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { expectCode } from '../conformance/key-store-conformance.js';
import { attestationTokenVerifier, parseEarClaims } from './attestation-token.js';

interface EarVector {
  readonly name: string;
  readonly jwt: string;
  readonly verification_key: { readonly jwk: JWK };
  readonly expected_header: { readonly jwk?: JWK };
  readonly expected_claims: Record<string, unknown>;
}
const vectors = (
  JSON.parse(
    readFileSync(
      new URL('../../../../../shared/testdata/protocol/ear/ear-tokens.json', import.meta.url),
      'utf8',
    ),
  ) as { tokens: EarVector[] }
).tokens;
const vector = (name: string): EarVector => {
  const v = vectors.find((t) => t.name === name);
  if (v === undefined) throw new Error(`no EAR vector ${name}`);
  return v;
};

describe('EAR attestation tokens: real vectors (testdata/protocol/ear)', () => {
  // Issued by Trustee's attestation service: iat 1752059139, exp 1752059439, signed with the header key.
  const realm = vector('testRealmJWT');
  const realmJwks: JSONWebKeySet = { keys: [realm.expected_header.jwk!] };
  const at = (seconds: number) => () => new Date(seconds * 1000);

  it('verifies the Trustee-issued token between iat and exp and reads its submodule', async () => {
    const verify = attestationTokenVerifier({ jwks: realmJwks, maxAgeSeconds: 300, now: at(1752059200) });
    const result = await verify(realm.jwt);
    expect(result.issuer).toBe('');
    expect(result.issuedAt.toISOString()).toBe('2025-07-09T11:05:39.000Z');
    expect(result.expiresAt.toISOString()).toBe('2025-07-09T11:10:39.000Z');
    expect(result.submodules).toEqual([
      { name: 'cpu0', status: 'affirming', tee: null, measurements: {}, residency: null, tenant: null },
    ]);
  });

  it('refuses the same token after exp with ATTESTATION_TOKEN_EXPIRED, and when older than the policy allows', async () => {
    await expectCode(
      attestationTokenVerifier({ jwks: realmJwks, maxAgeSeconds: 300, now: at(1752059439 + 60) })(realm.jwt),
      'ATTESTATION_TOKEN_EXPIRED',
    );
    await expectCode(
      attestationTokenVerifier({ jwks: realmJwks, maxAgeSeconds: 30, now: at(1752059300) })(realm.jwt),
      'ATTESTATION_TOKEN_EXPIRED',
    );
  });

  it('refuses it under another key, another issuer, or with any character of the signature changed', async () => {
    const veraisonKey: JSONWebKeySet = { keys: [vector('testJWT').verification_key.jwk] };
    await expectCode(
      attestationTokenVerifier({ jwks: veraisonKey, maxAgeSeconds: 300, now: at(1752059200) })(realm.jwt),
      'ATTESTATION_TOKEN_INVALID',
    );
    await expectCode(
      attestationTokenVerifier({
        jwks: realmJwks,
        issuer: 'https://trust.tresor.test',
        maxAgeSeconds: 300,
        now: at(1752059200),
      })(realm.jwt),
      'ATTESTATION_TOKEN_INVALID',
    );
    const verify = attestationTokenVerifier({ jwks: realmJwks, maxAgeSeconds: 300, now: at(1752059200) });
    const signatureStart = realm.jwt.lastIndexOf('.') + 1;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: signatureStart, max: realm.jwt.length - 2 }), async (i) => {
        const c = realm.jwt[i] === 'A' ? 'B' : 'A';
        await expectCode(
          verify(realm.jwt.slice(0, i) + c + realm.jwt.slice(i + 1)),
          'ATTESTATION_TOKEN_INVALID',
        );
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses the Veraison tokens, which carry no exp (a key release needs a bounded lifetime)', async () => {
    for (const name of ['testJWT', 'testJWT_JWK', 'ear_test_verify_pass']) {
      const v = vector(name);
      const verify = attestationTokenVerifier({
        jwks: { keys: [v.verification_key.jwk] },
        maxAgeSeconds: 300,
        now: at(1666091400),
      });
      await expectCode(verify(v.jwt), 'ATTESTATION_TOKEN_INVALID');
    }
  });

  it('parses the EAR claims of every vector: status per submodule', () => {
    for (const v of vectors) {
      const claims = { ...v.expected_claims, iat: 1, exp: 2 };
      const result = parseEarClaims(claims);
      expect(result.submodules.length).toBeGreaterThan(0);
      for (const s of result.submodules) expect(s.status).toBe('affirming');
    }
  });
});

describe('EAR attestation tokens: refusals', () => {
  it('accepts only ES256 and EdDSA, never `none` or HMAC', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES384');
    const jwks: JSONWebKeySet = { keys: [{ ...(await exportJWK(publicKey)), alg: 'ES384' }] };
    const now = Math.floor(Date.now() / 1000);
    const es384 = await new SignJWT({ submods: { a: { 'ear.status': 'affirming' } } })
      .setProtectedHeader({ alg: 'ES384' })
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(privateKey);
    const verify = attestationTokenVerifier({ jwks, maxAgeSeconds: 300, now: () => new Date() });
    await expectCode(verify(es384), 'ATTESTATION_TOKEN_INVALID');
    const header = Buffer.from('{"alg":"none"}').toString('base64url');
    const body = Buffer.from(JSON.stringify({ iat: now, exp: now + 60, submods: {} })).toString('base64url');
    await expectCode(verify(`${header}.${body}.`), 'ATTESTATION_TOKEN_INVALID');
    await expectCode(verify(''), 'ATTESTATION_TOKEN_INVALID');
    await expectCode(verify('x'.repeat(20_000)), 'ATTESTATION_TOKEN_INVALID');
  });

  it('never throws anything but ATTESTATION_TOKEN_INVALID for arbitrary strings (property)', async () => {
    const { publicKey } = await generateKeyPair('ES256');
    const verify = attestationTokenVerifier({
      jwks: { keys: [await exportJWK(publicKey)] },
      maxAgeSeconds: 300,
      now: () => new Date(),
    });
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 200 }), async (token) => {
        const err = await verify(token).then(
          () => null,
          (e: unknown) => e,
        );
        expect(isTresorError(err) && err.code).toBe('ATTESTATION_TOKEN_INVALID');
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses claim sets that are not EAR', () => {
    const bad = [
      {},
      { iat: 1, exp: 2 },
      { iat: 1, exp: 2, submods: {} },
      { iat: 1, exp: 2, submods: { a: { 'ear.status': 'great' } } },
      { iat: 1, exp: 2, submods: { a: 'x' } },
      { iat: 1, exp: 2, iss: 7, submods: { a: { 'ear.status': 'affirming' } } },
      { iat: 1, exp: 2, submods: { a: { 'ear.status': 'affirming', 'tresor.measurements': { m: 'zz' } } } },
      { iat: 1, exp: 2, submods: { a: { 'ear.status': 'affirming', 'tresor.measurements': ['ab'] } } },
    ];
    for (const claims of bad) {
      expect(() => parseEarClaims(claims), JSON.stringify(claims)).toThrow(
        expect.objectContaining({ code: 'ATTESTATION_TOKEN_INVALID' }) as Error,
      );
    }
  });
});
