import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { generateTestSigner } from '../conformance/test-signer.js';
import {
  checkpointSigningInput,
  type AuditCheckpoint,
  type AuditCheckpointStatement,
} from './audit-checkpoint.js';
import { CheckpointKeys } from './checkpoint-keys.js';

const statement: AuditCheckpointStatement = {
  kind: 'periodic',
  count: 42,
  head: 'ab'.repeat(32),
  time: '2025-05-05T05:05:05.005Z',
  keyId: 'sig-audit-test',
  algorithm: 'ES256',
};

async function signed(
  signer = generateTestSigner(),
  changes: Partial<AuditCheckpointStatement> = {},
): Promise<AuditCheckpoint> {
  const s = { ...statement, keyId: signer.keyId, algorithm: signer.algorithm, ...changes };
  return { ...s, signature: await signer.sign(checkpointSigningInput(s)) };
}

function code(run: () => unknown): string {
  try {
    run();
    return 'none';
  } catch (err) {
    return err instanceof TresorError ? err.code : `not a TresorError: ${String(err)}`;
  }
}

describe('checkpoint signing input', () => {
  it('is the JCS text of the statement with its type and version', () => {
    expect(new TextDecoder().decode(checkpointSigningInput(statement))).toBe(
      `{"alg":"ES256","count":42,"head":"${'ab'.repeat(32)}","kid":"sig-audit-test","kind":"periodic","time":"2025-05-05T05:05:05.005Z","type":"tresor.audit.checkpoint","v":1}`,
    );
  });
});

describe('CheckpointKeys', () => {
  it('verifies ES256 and ES384 checkpoints and names what is wrong with others', async () => {
    for (const algorithm of ['ES256', 'ES384'] as const) {
      const signer = generateTestSigner('sig-a', algorithm);
      const keys = CheckpointKeys.fromJwks([signer.publicJwk]);
      const checkpoint = await signed(signer);
      expect(keys.problemWith(checkpoint)).toBeUndefined();
      expect(keys.problemWith({ ...checkpoint, count: 43 })).toBe('its signature does not verify');
      expect(keys.problemWith({ ...checkpoint, kind: 'anchor' })).toBe('its signature does not verify');
      expect(keys.problemWith({ ...checkpoint, keyId: 'sig-b' })).toMatch(/not a trusted key/);
    }
  });

  it('parses a JWK, a JWK Set and a PEM public key; a PEM key (no kid) verifies any key id', async () => {
    const signer = generateTestSigner('sig-pem');
    const checkpoint = await signed(signer);
    const pem = String(
      createPublicKey({ key: { ...signer.publicJwk }, format: 'jwk' }).export({
        type: 'spki',
        format: 'pem',
      }),
    );
    for (const text of [
      JSON.stringify(signer.publicJwk),
      JSON.stringify({ keys: [signer.publicJwk] }),
      pem,
      `\n${pem}\n`,
    ]) {
      expect(CheckpointKeys.parse(text).problemWith(checkpoint)).toBeUndefined();
    }
    const renamed = await signed(signer, { keyId: 'sig-renamed' });
    expect(CheckpointKeys.parse(pem).problemWith(renamed)).toBeUndefined();
    expect(CheckpointKeys.parse(JSON.stringify(signer.publicJwk)).problemWith(renamed)).toMatch(
      /not a trusted key/,
    );
  });

  it('refuses private keys, other key types and malformed input with INPUT_MALFORMED', () => {
    const signer = generateTestSigner();
    const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const p521 = generateKeyPairSync('ec', { namedCurve: 'secp521r1' });
    const refused = [
      JSON.stringify({ ...signer.publicJwk, d: 'AAAA' }),
      String(ec.privateKey.export({ type: 'pkcs8', format: 'pem' })),
      String(rsa.publicKey.export({ type: 'spki', format: 'pem' })),
      String(p521.publicKey.export({ type: 'spki', format: 'pem' })),
      JSON.stringify(p521.publicKey.export({ format: 'jwk' })),
      JSON.stringify({ ...signer.publicJwk, alg: 'ES384' }),
      JSON.stringify({ ...signer.publicJwk, kty: 'RSA' }),
      JSON.stringify({ ...signer.publicJwk, x: signer.publicJwk.y }),
      JSON.stringify({ ...signer.publicJwk, kid: 7 }),
      JSON.stringify({ keys: [] }),
      JSON.stringify({ keys: {} }),
      '-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----',
      'not a key',
      '[]',
      'x'.repeat(1_000_001),
    ];
    for (const text of refused) expect(code(() => CheckpointKeys.parse(text))).toBe('INPUT_MALFORMED');
  });

  it('never throws anything but a TresorError on arbitrary input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.constant('-----BEGIN PUBLIC KEY-----')), (text) => {
        expect(['none', 'INPUT_MALFORMED']).toContain(code(() => CheckpointKeys.parse(text)));
      }),
      { numRuns: 1000 },
    );
  });
});
