import fc from 'fast-check';
import { FlattenedEncrypt, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { decryptFromKbs } from './jwe-decrypt.js';
import { encryptForTee, type FlattenedJwe } from './jwe.js';
import { parseTeePublicKey } from './tee-public-key.js';

type Curve = 'P-256' | 'P-384' | 'P-521';

/** An attester's ephemeral key, as KbsClient makes it: WebCrypto ECDH, private half non-extractable. */
async function attesterKey(curve: Curve = 'P-256') {
  const pair = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: curve }, false, ['deriveBits']);
  const jwk = await crypto.subtle.exportKey('jwk', pair.publicKey);
  const tee = parseTeePublicKey({ kty: 'EC', crv: curve, alg: 'ECDH-ES+A256KW', x: jwk.x, y: jwk.y });
  return { privateKey: pair.privateKey, tee, jwk };
}

async function code(jwe: unknown, privateKey: CryptoKey): Promise<string> {
  try {
    await decryptFromKbs(jwe, privateKey);
    return 'decrypted';
  } catch (err) {
    return isTresorError(err) ? err.code : `non-TresorError: ${String(err)}`;
  }
}

const secret = new TextEncoder().encode('the model key');

function withHeader(jwe: FlattenedJwe, change: (header: Record<string, unknown>) => void): FlattenedJwe {
  const header = JSON.parse(Buffer.from(jwe.protected, 'base64url').toString('utf8')) as Record<
    string,
    unknown
  >;
  change(header);
  return { ...jwe, protected: Buffer.from(JSON.stringify(header)).toString('base64url') };
}

describe('decrypting the KBS resource answer (client side)', () => {
  it.each(['P-256', 'P-384', 'P-521'] as const)(
    'opens what the trust service sealed to a %s key',
    async (curve) => {
      const { privateKey, tee } = await attesterKey(curve);
      expect(await decryptFromKbs(encryptForTee(tee, secret), privateKey)).toEqual(secret);
    },
  );

  it('opens what jose seals (ECDH-ES+A256KW, A256GCM), with and without apu/apv', async () => {
    const { privateKey, jwk } = await attesterKey();
    const publicKey = await importJWK({ ...jwk, alg: 'ECDH-ES+A256KW' }, 'ECDH-ES+A256KW');
    const plain = await new FlattenedEncrypt(secret)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .encrypt(publicKey);
    expect(await decryptFromKbs(plain, privateKey)).toEqual(secret);
    const parties = await new FlattenedEncrypt(secret)
      .setProtectedHeader({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM' })
      .setKeyManagementParameters({
        apu: new TextEncoder().encode('Alice'),
        apv: new TextEncoder().encode('Bob'),
      })
      .encrypt(publicKey);
    expect(await decryptFromKbs(parties, privateKey)).toEqual(secret);
    // The parties enter the KDF: dropped from the header, the key no longer unwraps.
    const dropped = {
      ...parties,
      protected: withHeader(parties as FlattenedJwe, (h) => delete h.apu).protected,
    };
    expect(await code(dropped, privateKey)).toBe('KBS_RESPONSE_INVALID');
  });

  it('round-trips any secret (property)', async () => {
    const { privateKey, tee } = await attesterKey();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 512 }), async (bytes) => {
        expect(await decryptFromKbs(encryptForTee(tee, bytes), privateKey)).toEqual(bytes);
      }),
      { numRuns: 1000 },
    );
  });

  it('does not open an answer sealed to another key', async () => {
    const { tee } = await attesterKey();
    const other = await attesterKey();
    expect(await code(encryptForTee(tee, secret), other.privateKey)).toBe('KBS_RESPONSE_INVALID');
  });

  it("refuses a header it does not fully understand, or an epk that is not a point on the key's curve", async () => {
    const { privateKey, tee } = await attesterKey();
    const jwe = encryptForTee(tee, secret);
    const p384 = (await attesterKey('P-384')).jwk;
    const cases: ((h: Record<string, unknown>) => void)[] = [
      (h) => (h.alg = 'ECDH-ES'),
      (h) => (h.alg = 'RSA-OAEP-256'),
      (h) => (h.enc = 'A128GCM'),
      (h) => (h.crit = ['exp']),
      (h) => (h.zip = 'DEF'),
      (h) => (h.epk = { kty: 'EC', crv: 'P-384', x: p384.x, y: p384.y }),
      (h) => (h.epk = { ...(h.epk as object), kty: 'OKP' }),
      (h) => (h.epk = { ...(h.epk as object), y: 'A'.repeat(43) }),
      (h) => (h.epk = { ...(h.epk as object), x: 'AAAA' }),
      (h) => delete h.epk,
      (h) => (h.apu = 'not base64url!'),
    ];
    for (const change of cases)
      expect(await code(withHeader(jwe, change), privateKey)).toBe('KBS_RESPONSE_INVALID');
  });

  it('refuses any member altered, cut or of the wrong length', async () => {
    const { privateKey, tee } = await attesterKey();
    const jwe = encryptForTee(tee, secret);
    for (const name of ['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag'] as const) {
      const bytes = Buffer.from(jwe[name], 'base64url');
      bytes[bytes.length - 1]! ^= 1;
      expect(await code({ ...jwe, [name]: bytes.toString('base64url') }, privateKey)).toBe(
        'KBS_RESPONSE_INVALID',
      );
      expect(await code({ ...jwe, [name]: bytes.subarray(1).toString('base64url') }, privateKey)).toBe(
        'KBS_RESPONSE_INVALID',
      );
      expect(await code({ ...jwe, [name]: `${jwe[name]}=` }, privateKey)).toBe('KBS_RESPONSE_INVALID');
      expect(await code({ ...jwe, [name]: 7 }, privateKey)).toBe('KBS_RESPONSE_INVALID');
    }
    // Members Trustee never sends, which would change the AAD or add unprotected parameters.
    for (const extra of [{ aad: 'AAAA' }, { header: { kid: 'k' } }, { unprotected: {} }]) {
      expect(await code({ ...jwe, ...extra }, privateKey)).toBe('KBS_RESPONSE_INVALID');
    }
    expect(await code({ ...jwe, ignored: 1 }, privateKey)).toBe('decrypted');
  });

  it('refuses a key that cannot agree on a secret', async () => {
    const signing = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
    const { tee } = await attesterKey();
    expect(await code(encryptForTee(tee, secret), signing.privateKey)).toBe('KBS_RESPONSE_INVALID');
  });

  it('answers anything a server might send with KBS_RESPONSE_INVALID, never another error (property)', async () => {
    const { privateKey, tee } = await attesterKey();
    const jwe = encryptForTee(tee, secret);
    const member = fc.oneof(
      fc.string({ maxLength: 80 }),
      fc
        .base64String({ maxLength: 80 })
        .map((s) => s.replace(/=+$/, '').replaceAll('+', '-').replaceAll('/', '_')),
      fc.constantFrom<string>(jwe.protected, jwe.encrypted_key, jwe.iv, jwe.ciphertext, jwe.tag),
      fc.jsonValue({ maxDepth: 2 }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue({ maxDepth: 3 }),
          fc.record(
            { protected: member, encrypted_key: member, iv: member, ciphertext: member, tag: member },
            { requiredKeys: [] },
          ),
        ),
        async (answer) => {
          const original =
            typeof answer === 'object' &&
            answer !== null &&
            (['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag'] as const).every(
              (name) => (answer as Record<string, unknown>)[name] === jwe[name],
            );
          expect(await code(answer, privateKey)).toBe(original ? 'decrypted' : 'KBS_RESPONSE_INVALID');
        },
      ),
      { numRuns: 1000 },
    );
  });
});
