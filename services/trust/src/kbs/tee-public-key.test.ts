import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { calculateJwkThumbprint } from 'jose';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { parseTeePublicKey, teePublicKeyThumbprint } from './tee-public-key.js';

const EXAMPLE_RSA_1024 = {
  kty: 'RSA',
  alg: 'RSA-OAEP-256',
  n: 'yNNu7hnWZVmcVGLj4jmAlq_bXsD9XgSutw1HbTm9pZMy_mI325ba8RGtg6_Txe1V0dU_T6z0Fpq4p4BAE_wyZDlBpn1UFL9CZGOk6FmGcV-RXGuL9r4chs4ZujJJ_0VECB3Ed4eA8YBcWrVHmmvMV6hx-jYdrxgNXkGhNjGBrsE',
  e: 'AQAB',
};

function ecJwk(curve: 'prime256v1' | 'secp384r1' | 'secp521r1'): Record<string, unknown> {
  const jwk = generateKeyPairSync('ec', { namedCurve: curve }).publicKey.export({ format: 'jwk' });
  return { kty: 'EC', crv: jwk.crv, alg: 'ECDH-ES+A256KW', x: jwk.x, y: jwk.y };
}

function code(value: Record<string, unknown>): string {
  try {
    parseTeePublicKey(value);
    return 'accepted';
  } catch (err) {
    return isTresorError(err) ? err.code : `non-TresorError: ${String(err)}`;
  }
}

describe('parseTeePublicKey', () => {
  it.each(['prime256v1', 'secp384r1', 'secp521r1'] as const)(
    'accepts an EC %s key for ECDH-ES+A256KW',
    (curve) => {
      const jwk = ecJwk(curve);
      const key = parseTeePublicKey(jwk);
      expect(key.jwk).toEqual(jwk);
      expect(key.point?.[0]).toBe(0x04);
      expect(key.key).toBeUndefined();
    },
  );

  it('accepts a 2048-bit RSA key for RSA-OAEP-256', () => {
    const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
    const key = parseTeePublicKey({ kty: 'RSA', alg: 'RSA-OAEP-256', n: jwk.n, e: jwk.e });
    expect(key.jwk).toEqual({ kty: 'RSA', alg: 'RSA-OAEP-256', n: jwk.n, e: 'AQAB' });
    expect(key.key?.asymmetricKeyType).toBe('rsa');
  });

  it('keeps only the members Trustee hashes, dropping kid, use and the like', () => {
    const jwk = ecJwk('prime256v1');
    const key = parseTeePublicKey({ ...jwk, kid: 'x', use: 'enc' });
    expect(Object.keys(key.jwk).sort()).toEqual(['alg', 'crv', 'kty', 'x', 'y']);
  });

  it('refuses the 1024-bit RSA key of the protocol example: too short to wrap secrets to', () => {
    expect(code(EXAMPLE_RSA_1024)).toBe('TEE_PUBLIC_KEY_INVALID');
  });

  it.each([
    ['RSA1_5', { ...EXAMPLE_RSA_1024, alg: 'RSA1_5' }],
    ['alg missing', { kty: 'EC', crv: 'P-256', x: 'A', y: 'A' }],
    ['EC with an RSA alg', { ...ecJwk('prime256v1'), alg: 'RSA-OAEP-256' }],
    ['an unknown curve', { ...ecJwk('prime256v1'), crv: 'secp256k1' }],
    ['OKP', { kty: 'OKP', crv: 'X25519', x: 'AAAA', alg: 'ECDH-ES+A256KW' }],
    ['x of the wrong length', { ...ecJwk('prime256v1'), x: 'AAAA' }],
    ['a point off the curve', { ...ecJwk('prime256v1'), y: 'A'.repeat(43) }],
    ['a P-384 point off the curve', { ...ecJwk('secp384r1'), y: 'A'.repeat(64) }],
    ['a P-521 point off the curve', { ...ecJwk('secp521r1'), y: `A${'B'.repeat(87)}` }],
    ['a P-256 point sent as P-384', { ...ecJwk('prime256v1'), crv: 'P-384' }],
    ['padded base64', { ...ecJwk('prime256v1'), x: `${String(ecJwk('prime256v1').x)}=` }],
    ['base64url of an impossible length', { ...EXAMPLE_RSA_1024, n: 'P-256' }],
    ['a private member', { ...ecJwk('prime256v1'), d: 'AAAA' }],
    ['an even exponent', { ...EXAMPLE_RSA_1024, e: 'AQAA' }],
  ])('refuses %s', (_what, jwk) => {
    expect(code(jwk)).toBe('TEE_PUBLIC_KEY_INVALID');
  });

  it('never throws anything but TEE_PUBLIC_KEY_INVALID for arbitrary objects (property)', () => {
    const member = fc.oneof(
      fc.string({ maxLength: 100 }),
      fc.constantFrom('EC', 'RSA', 'P-256', 'ECDH-ES+A256KW', 'RSA-OAEP-256', 'AQAB'),
      fc.integer(),
      fc.constant(null),
    );
    fc.assert(
      fc.property(
        fc.record(
          { kty: member, crv: member, alg: member, x: member, y: member, n: member, e: member },
          { requiredKeys: [] },
        ),
        (jwk) => ['accepted', 'TEE_PUBLIC_KEY_INVALID'].includes(code(jwk)),
      ),
      { numRuns: 1000 },
    );
  });
});

describe('teePublicKeyThumbprint', () => {
  it('is the RFC 7638 §3.1 example thumbprint', () => {
    // RFC 7638 §3.1: the RSA key of RFC 7517 Appendix A.1 (alg added, as a tee-pubkey carries it).
    const { jwk } = parseTeePublicKey({
      kty: 'RSA',
      alg: 'RSA-OAEP-256',
      n: '0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw',
      e: 'AQAB',
    });
    expect(teePublicKeyThumbprint(jwk)).toBe('NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs');
  });

  it("equals jose's calculateJwkThumbprint for any EC key on any accepted curve (property)", async () => {
    const curve = fc.constantFrom('prime256v1' as const, 'secp384r1' as const, 'secp521r1' as const);
    await fc.assert(
      fc.asyncProperty(curve, async (c) => {
        const { jwk } = parseTeePublicKey(ecJwk(c));
        expect(teePublicKeyThumbprint(jwk)).toBe(await calculateJwkThumbprint(jwk, 'sha256'));
      }),
      { numRuns: 1000 },
    );
  });

  it('differs for different keys and ignores members outside the required set', () => {
    const a = parseTeePublicKey(ecJwk('prime256v1')).jwk;
    const b = parseTeePublicKey(ecJwk('prime256v1')).jwk;
    expect(teePublicKeyThumbprint(a)).not.toBe(teePublicKeyThumbprint(b));
    expect(teePublicKeyThumbprint(parseTeePublicKey({ ...a, kid: 'k', use: 'enc' }).jwk)).toBe(
      teePublicKeyThumbprint(a),
    );
  });
});
