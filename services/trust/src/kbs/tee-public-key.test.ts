import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { parseTeePublicKey } from './tee-public-key.js';

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

async function code(value: Record<string, unknown>): Promise<string> {
  try {
    await parseTeePublicKey(value);
    return 'accepted';
  } catch (err) {
    return isTresorError(err) ? err.code : `non-TresorError: ${String(err)}`;
  }
}

describe('parseTeePublicKey', () => {
  it.each(['prime256v1', 'secp384r1', 'secp521r1'] as const)(
    'accepts an EC %s key for ECDH-ES+A256KW',
    async (curve) => {
      const jwk = ecJwk(curve);
      const key = await parseTeePublicKey(jwk);
      expect(key.jwk).toEqual(jwk);
      expect(key.key.algorithm.name).toBe('ECDH');
    },
  );

  it('accepts a 2048-bit RSA key for RSA-OAEP-256', async () => {
    const jwk = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' });
    const key = await parseTeePublicKey({ kty: 'RSA', alg: 'RSA-OAEP-256', n: jwk.n, e: jwk.e });
    expect(key.jwk).toEqual({ kty: 'RSA', alg: 'RSA-OAEP-256', n: jwk.n, e: 'AQAB' });
  });

  it('keeps only the members Trustee hashes, dropping kid, use and the like', async () => {
    const jwk = ecJwk('prime256v1');
    const key = await parseTeePublicKey({ ...jwk, kid: 'x', use: 'enc' });
    expect(Object.keys(key.jwk).sort()).toEqual(['alg', 'crv', 'kty', 'x', 'y']);
  });

  it('refuses the 1024-bit RSA key of the protocol example: too short to wrap secrets to', async () => {
    expect(await code(EXAMPLE_RSA_1024)).toBe('TEE_PUBLIC_KEY_INVALID');
  });

  it.each([
    ['RSA1_5', { ...EXAMPLE_RSA_1024, alg: 'RSA1_5' }],
    ['alg missing', { kty: 'EC', crv: 'P-256', x: 'A', y: 'A' }],
    ['EC with an RSA alg', { ...ecJwk('prime256v1'), alg: 'RSA-OAEP-256' }],
    ['an unknown curve', { ...ecJwk('prime256v1'), crv: 'secp256k1' }],
    ['OKP', { kty: 'OKP', crv: 'X25519', x: 'AAAA', alg: 'ECDH-ES+A256KW' }],
    ['x of the wrong length', { ...ecJwk('prime256v1'), x: 'AAAA' }],
    ['a point off the curve', { ...ecJwk('prime256v1'), y: 'A'.repeat(43) }],
    ['padded base64', { ...ecJwk('prime256v1'), x: `${String(ecJwk('prime256v1').x)}=` }],
    ['a private member', { ...ecJwk('prime256v1'), d: 'AAAA' }],
    ['an even exponent', { ...EXAMPLE_RSA_1024, e: 'AQAA' }],
  ])('refuses %s', async (_what, jwk) => {
    expect(await code(jwk)).toBe('TEE_PUBLIC_KEY_INVALID');
  });

  it('never throws anything but TEE_PUBLIC_KEY_INVALID for arbitrary objects (property)', async () => {
    const member = fc.oneof(
      fc.string({ maxLength: 100 }),
      fc.constantFrom('EC', 'RSA', 'P-256', 'ECDH-ES+A256KW', 'RSA-OAEP-256', 'AQAB'),
      fc.integer(),
      fc.constant(null),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          { kty: member, crv: member, alg: member, x: member, y: member, n: member, e: member },
          { requiredKeys: [] },
        ),
        async (jwk) => ['accepted', 'TEE_PUBLIC_KEY_INVALID'].includes(await code(jwk)),
      ),
      { numRuns: 1000 },
    );
  });
});
