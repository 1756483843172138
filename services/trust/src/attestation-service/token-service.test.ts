import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { FileKeyStore, SecretKeyBytes } from '@tresor/keystore';
import { generateTokenSigner, keyStoreTokenSigner } from './token-signer.js';
import { AttestationTokenService } from './token-service.js';

const T0 = Date.parse('2026-03-01T12:00:00Z');

async function service(algorithm: 'ES256' | 'EdDSA', at = () => new Date(T0)) {
  return new AttestationTokenService({
    signers: [await generateTokenSigner(algorithm, `key-${algorithm}`)],
    issuer: 'tresor-trust',
    lifetimeSeconds: 300,
    now: at,
  });
}

async function code(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'accepted';
  } catch (err) {
    return isTresorError(err) ? err.code : `non-TresorError: ${String(err)}`;
  }
}

describe('attestation tokens', () => {
  it.each(['ES256', 'EdDSA'] as const)('issues %s JWTs that jose verifies against the JWKS', async (alg) => {
    const tokens = await service(alg);
    const issued = await tokens.issue({ submods: {} });
    const { payload, protectedHeader } = await jwtVerify(issued.token, createLocalJWKSet(tokens.jwks()), {
      currentDate: new Date(T0),
      issuer: 'tresor-trust',
    });
    expect(protectedHeader).toMatchObject({ alg, typ: 'JWT', kid: `key-${alg}` });
    expect(payload).toMatchObject({
      iss: 'tresor-trust',
      iat: T0 / 1000,
      exp: T0 / 1000 + 300,
      jti: issued.tokenId,
    });
    expect(await tokens.verify(issued.token)).toMatchObject({ jti: issued.tokenId });
  });

  it('signs with a keystore ES256 key whose private half stays in the keystore', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tresor-tokens-'));
    const store = await FileKeyStore.open({
      path: join(dir, 'keys'),
      passphrase: SecretKeyBytes.copyOf(new TextEncoder().encode('passphrase for tests')),
      mode: 'development',
      createIfMissing: true,
      scryptLog2N: 14,
    });
    try {
      const key = await store.createSigningKey('ES256');
      const tokens = new AttestationTokenService({
        signers: [await keyStoreTokenSigner(store, key.id)],
        issuer: 'tresor-trust',
        lifetimeSeconds: 60,
        now: () => new Date(T0),
      });
      expect(tokens.jwks().keys[0]).toMatchObject({
        kty: 'EC',
        crv: 'P-256',
        kid: key.id,
        alg: 'ES256',
        use: 'sig',
      });
      expect(tokens.jwks().keys[0]).not.toHaveProperty('d');
      expect(await code(() => tokens.issue({}).then((t) => tokens.verify(t.token)))).toBe('accepted');
      const p384 = await store.createSigningKey('ES384');
      expect(await code(() => keyStoreTokenSigner(store, p384.id))).toBe('KEY_USAGE_INVALID');
    } finally {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('keeps verifying tokens of a rotated-out key that is still published', async () => {
    const old = await generateTokenSigner('ES256', 'old');
    const fresh = await generateTokenSigner('EdDSA', 'new');
    const before = new AttestationTokenService({
      signers: [old],
      issuer: 'i',
      lifetimeSeconds: 60,
      now: () => new Date(T0),
    });
    const after = new AttestationTokenService({
      signers: [fresh, old],
      issuer: 'i',
      lifetimeSeconds: 60,
      now: () => new Date(T0),
    });
    expect(await code(() => before.issue({}).then((t) => after.verify(t.token)))).toBe('accepted');
  });

  it('refuses expired tokens (ATTESTATION_TOKEN_EXPIRED)', async () => {
    let now = T0;
    const tokens = await service('ES256', () => new Date(now));
    const { token } = await tokens.issue({});
    now += 306_000;
    expect(await code(() => tokens.verify(token))).toBe('ATTESTATION_TOKEN_EXPIRED');
  });

  it('refuses tokens of other keys, other issuers, alg none and garbage (ATTESTATION_TOKEN_INVALID)', async () => {
    const tokens = await service('ES256');
    const other = await service('ES256');
    const foreign = await other.issue({});
    expect(await code(() => tokens.verify(foreign.token))).toBe('ATTESTATION_TOKEN_INVALID');
    const otherIssuer = new AttestationTokenService({
      signers: [await generateTokenSigner('ES256', 'key-ES256')],
      issuer: 'someone-else',
      lifetimeSeconds: 300,
      now: () => new Date(T0),
    });
    expect(await code(async () => tokens.verify((await otherIssuer.issue({})).token))).toBe(
      'ATTESTATION_TOKEN_INVALID',
    );
    const [, payload] = (await tokens.issue({})).token.split('.');
    const none = `${Buffer.from('{"alg":"none","typ":"JWT","kid":"key-ES256"}').toString('base64url')}.${payload}.`;
    expect(await code(() => tokens.verify(none))).toBe('ATTESTATION_TOKEN_INVALID');
    expect(await code(() => tokens.verify(''))).toBe('ATTESTATION_TOKEN_INVALID');
    expect(await code(() => tokens.verify('x'.repeat(20_000)))).toBe('ATTESTATION_TOKEN_INVALID');
  });

  it('answers any altered token with ATTESTATION_TOKEN_INVALID (property)', async () => {
    const tokens = await service('EdDSA');
    const { token } = await tokens.issue({ submods: { cpu0: { 'ear.status': 'affirming' } } });
    await fc.assert(
      fc.asyncProperty(
        fc.nat(token.length - 1),
        fc.constantFrom('A', 'B', '-', '_', '.', 'z'),
        async (index, ch) => {
          const altered = token.slice(0, index) + ch + token.slice(index + 1);
          const outcome = await code(() => tokens.verify(altered));
          if (altered === token) return outcome === 'accepted';
          // A base64url segment's last character may carry unused bits; anywhere else a change is a forgery.
          const [header = '', payload = ''] = token.split('.');
          const insideClaims = index > header.length && index < header.length + payload.length;
          return insideClaims
            ? outcome === 'ATTESTATION_TOKEN_INVALID'
            : ['accepted', 'ATTESTATION_TOKEN_INVALID'].includes(outcome);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
