import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { exportJWK, flattenedDecrypt, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { encryptForTee, type FlattenedJwe } from './jwe.js';
import { parseTeePublicKey } from './tee-public-key.js';

const interop = JSON.parse(
  readFileSync(
    new URL('../../../../../shared/testdata/protocol/kbs/jwe-interop-check.json', import.meta.url),
    'utf8',
  ),
) as { results: Record<string, { protected_header_json?: string }> };

async function teeKey(alg: 'ECDH-ES+A256KW' | 'RSA-OAEP-256', crv?: 'P-256' | 'P-384' | 'P-521') {
  const { publicKey, privateKey } = await generateKeyPair(alg, {
    ...(crv === undefined ? {} : { crv }),
    modulusLength: 2048,
  });
  const jwk = await exportJWK(publicKey);
  const tee = parseTeePublicKey(
    alg === 'RSA-OAEP-256'
      ? { kty: 'RSA', alg, n: jwk.n, e: jwk.e }
      : { kty: 'EC', crv, alg, x: jwk.x, y: jwk.y },
  );
  return { tee, privateKey };
}

const header = (jwe: FlattenedJwe): string => Buffer.from(jwe.protected, 'base64url').toString('utf8');
const plaintext = new TextEncoder().encode('the model key');

describe('JWE to the TEE key, as Trustee builds it', () => {
  it.each(['P-256', 'P-384', 'P-521'] as const)('ECDH-ES+A256KW on %s decrypts with jose', async (crv) => {
    const { tee, privateKey } = await teeKey('ECDH-ES+A256KW', crv);
    const jwe = encryptForTee(tee, plaintext);
    const { plaintext: out, protectedHeader } = await flattenedDecrypt(jwe, privateKey);
    expect(new TextDecoder().decode(out)).toBe('the model key');
    expect(protectedHeader).toMatchObject({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', epk: { kty: 'EC', crv } });
    expect(Buffer.from(jwe.encrypted_key, 'base64url')).toHaveLength(40);
  });

  it("RSA-OAEP-256 decrypts with jose; the header is Trustee's exactly", async () => {
    const { tee, privateKey } = await teeKey('RSA-OAEP-256');
    const jwe = encryptForTee(tee, plaintext);
    expect(header(jwe)).toBe(interop.results.trustee_style_rsa_oaep_256!.protected_header_json);
    expect(new TextDecoder().decode((await flattenedDecrypt(jwe, privateKey)).plaintext)).toBe(
      'the model key',
    );
    expect(Buffer.from(jwe.encrypted_key, 'base64url')).toHaveLength(256);
  });

  it("writes the EC header in Trustee's member order, compact (jwe-interop-check.json)", async () => {
    const { tee } = await teeKey('ECDH-ES+A256KW', 'P-256');
    const jwe = encryptForTee(tee, plaintext);
    const shape = (json: string): string => json.replace(/"[xy]":"[A-Za-z0-9_-]+"/g, (m) => m.slice(0, 4));
    expect(shape(header(jwe))).toBe(
      shape(interop.results.trustee_style_ecdh_es_a256kw_p256!.protected_header_json!),
    );
    // guest-components re-serialises the parsed header to get the AAD: it must come out byte-identical.
    expect(JSON.stringify(JSON.parse(header(jwe)))).toBe(header(jwe));
    expect(Object.keys(jwe)).toEqual(['protected', 'encrypted_key', 'iv', 'ciphertext', 'tag']);
  });

  it('fails authentication when any member is altered', async () => {
    const { tee, privateKey } = await teeKey('ECDH-ES+A256KW', 'P-256');
    const jwe = encryptForTee(tee, plaintext);
    for (const member of ['ciphertext', 'tag', 'iv', 'encrypted_key'] as const) {
      const bytes = Buffer.from(jwe[member], 'base64url');
      bytes[0]! ^= 1;
      await expect(
        flattenedDecrypt({ ...jwe, [member]: bytes.toString('base64url') }, privateKey),
      ).rejects.toThrow();
    }
    const otherHeader = Buffer.from(header(jwe).replace('"enc":"A256GCM"', '"enc":"A256GCM","x":1')).toString(
      'base64url',
    );
    await expect(flattenedDecrypt({ ...jwe, protected: otherHeader }, privateKey)).rejects.toThrow();
  });

  it('does not decrypt with another key', async () => {
    const { tee } = await teeKey('ECDH-ES+A256KW', 'P-256');
    const other = await teeKey('ECDH-ES+A256KW', 'P-256');
    await expect(flattenedDecrypt(encryptForTee(tee, plaintext), other.privateKey)).rejects.toThrow();
  });

  it('round-trips any secret, with a fresh IV and ephemeral key each time (property)', async () => {
    const { tee, privateKey } = await teeKey('ECDH-ES+A256KW', 'P-256');
    const seen = new Set<string>();
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 256 }), async (secret) => {
        const jwe = encryptForTee(tee, secret);
        const fresh = !seen.has(jwe.iv) && !seen.has(jwe.protected);
        seen.add(jwe.iv);
        seen.add(jwe.protected);
        const { plaintext: out } = await flattenedDecrypt(jwe, privateKey);
        return fresh && Buffer.from(out).equals(Buffer.from(secret));
      }),
      { numRuns: 1000 },
    );
  });
});
