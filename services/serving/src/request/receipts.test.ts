import { webcrypto } from 'node:crypto';
import { CompactSign, compactVerify, decodeProtectedHeader } from 'jose';
import { describe, expect, it } from 'vitest';
import type { ReceiptClaims } from '@tresor/protocol';
import { RECEIPT_TYPE, ReceiptSigner } from './receipts.js';

const claims: Omit<ReceiptClaims, 'iat'> = {
  requestSha256: 'a'.repeat(64),
  responseSha256: 'b'.repeat(64),
  model: 'tresor-demo',
  modelSha256: 'c'.repeat(64),
  evidenceSha256: 'd'.repeat(64),
  replica: 'serving-1',
};

async function ed25519(extractable = false): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, extractable, [
    'sign',
    'verify',
  ])) as CryptoKeyPair;
}

const at = new Date('2026-12-07T12:00:00.000Z');

describe('ReceiptSigner', () => {
  it('signs exactly the JWS jose CompactSign gives (Ed25519 is deterministic), verifiable with the public key', async () => {
    const pair = await ed25519();
    const jws = await new ReceiptSigner(pair.privateKey, () => at).sign(claims);
    const payload = { ...claims, iat: Math.floor(at.getTime() / 1000) };
    const reference = await new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
      .setProtectedHeader({ alg: 'EdDSA', typ: RECEIPT_TYPE })
      .sign(pair.privateKey);
    expect(jws).toBe(reference);
    const verified = await compactVerify(jws, pair.publicKey);
    expect(JSON.parse(new TextDecoder().decode(verified.payload))).toEqual(payload);
    expect(decodeProtectedHeader(jws)).toEqual({ alg: 'EdDSA', typ: RECEIPT_TYPE });
  });

  it('a receipt does not verify under another replica’s key', async () => {
    const jws = await new ReceiptSigner((await ed25519()).privateKey, () => at).sign(claims);
    await expect(compactVerify(jws, (await ed25519()).publicKey)).rejects.toThrow();
  });

  it('a receipt whose claims were changed does not verify', async () => {
    const pair = await ed25519();
    const [header, payload, signature] = (
      await new ReceiptSigner(pair.privateKey, () => at).sign(claims)
    ).split('.') as [string, string, string];
    const changed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Record<string, unknown>;
    changed.model = 'another-model';
    const forged = `${header}.${Buffer.from(JSON.stringify(changed)).toString('base64url')}.${signature}`;
    await expect(compactVerify(forged, pair.publicKey)).rejects.toThrow();
  });

  it('refuses a public key or a key of another algorithm', async () => {
    const pair = await ed25519(true);
    expect(() => new ReceiptSigner(pair.publicKey)).toThrow('Ed25519 private key');
    const ec = await webcrypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, [
      'sign',
      'verify',
    ]);
    expect(() => new ReceiptSigner(ec.privateKey)).toThrow('Ed25519 private key');
  });

  it('stamps iat from the injected clock, in whole seconds', async () => {
    const pair = await ed25519();
    const jws = await new ReceiptSigner(pair.privateKey, () => new Date(at.getTime() + 1_999)).sign(claims);
    const { payload } = await compactVerify(jws, pair.publicKey);
    expect((JSON.parse(new TextDecoder().decode(payload)) as { iat: number }).iat).toBe(
      at.getTime() / 1000 + 1,
    );
  });
});
