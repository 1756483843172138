import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { CompactSign, importJWK } from 'jose';
import { describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import type { ComponentIdentity } from '../component-evidence.js';
import { verifyReceipt, type Ed25519Verify, type ReceiptVerifyOptions } from '../index.js';
import { nodeEd25519Verify } from './index.js';

/**
 * The synchronous node:crypto receipt check (createNodeTransport's `ed25519Verify`) against
 * jose's compactVerify on WebCrypto (the default): the same verdict for good receipts, forged
 * ones and malformed JWS alike.
 */

const SHA = 'ab'.repeat(32);
const MODEL_SHA = 'cd'.repeat(32);

function keyPair(): { privateKey: KeyObject; jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string } } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const { x } = publicKey.export({ format: 'jwk' });
  return { privateKey, jwk: { kty: 'OKP', crv: 'Ed25519', x: x! } };
}

function replica(jwk: { kty: 'OKP'; crv: 'Ed25519'; x: string }): ComponentIdentity {
  return {
    component: 'serving',
    id: 'serving-1',
    tee: 'sample',
    insecure: true,
    releases: [],
    measurements: {},
    hardwareIds: [],
    keyConfig: null,
    hpkeKeyConfig: '',
    tlsSpkiSha256: '',
    receiptKey: jwk,
    models: [{ id: 'm', sha256: MODEL_SHA }],
    evidenceSha256: SHA,
  };
}

const claims = {
  requestSha256: SHA,
  responseSha256: SHA,
  model: 'm',
  modelSha256: MODEL_SHA,
  evidenceSha256: SHA,
  replica: 'serving-1',
  iat: 1_700_000_000,
};

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A compact JWS over `header`.`payload` as given, signed with node:crypto. */
function signRaw(privateKey: KeyObject, header: string, payload: string): string {
  return `${header}.${payload}.${sign(null, Buffer.from(`${header}.${payload}`), privateKey).toString('base64url')}`;
}

const backends: [string, ReceiptVerifyOptions][] = [
  ['jose (WebCrypto)', {}],
  ['node:crypto', { ed25519Verify: nodeEd25519Verify }],
];

async function verdict(jws: string, r: ComponentIdentity, options: ReceiptVerifyOptions): Promise<string> {
  try {
    const verified = await verifyReceipt(jws, [r], { requestSha256: SHA, responseSha256: SHA }, options);
    return `ok ${verified.claims.replica}`;
  } catch (err) {
    return err instanceof TresorError ? `${err.code} ${String(err.details?.replicaMismatch)}` : 'other';
  }
}

describe('receipt verification: node:crypto Ed25519 gives the verdicts of jose', () => {
  const signer = keyPair();
  const r = replica(signer.jwk);
  const good = signRaw(signer.privateKey, b64({ alg: 'EdDSA', typ: 'tresor-receipt+jwt' }), b64(claims));
  const [h, p, s] = good.split('.') as [string, string, string];
  const other = keyPair();
  const flip = (text: string): string => `${text.startsWith('A') ? 'B' : 'A'}${text.slice(1)}`;
  const cases: [string, string, string][] = [
    ['a receipt serving signs', good, 'ok serving-1'],
    ['alg Ed25519 (RFC 9864)', signRaw(signer.privateKey, b64({ alg: 'Ed25519' }), p), 'ok serving-1'],
    ['a signature by another key', signRaw(other.privateKey, h, p), 'RECEIPT_INVALID receipt-key-changed'],
    ['a flipped signature byte', `${h}.${p}.${flip(s)}`, 'RECEIPT_INVALID receipt-key-changed'],
    ['a truncated signature', `${h}.${p}.${s.slice(0, 40)}`, 'RECEIPT_INVALID receipt-key-changed'],
    ['no signature', `${h}.${p}.`, 'RECEIPT_INVALID receipt-key-changed'],
    ['a signature with a non-base64url character', `${h}.${p}.${s}!`, 'RECEIPT_INVALID receipt-key-changed'],
    [
      'another payload under the signature',
      `${h}.${b64({ ...claims, iat: 1 })}.${s}`,
      'RECEIPT_INVALID receipt-key-changed',
    ],
    ['alg none', signRaw(signer.privateKey, b64({ alg: 'none' }), p), 'RECEIPT_INVALID receipt-key-changed'],
    [
      'alg HS256',
      signRaw(signer.privateKey, b64({ alg: 'HS256' }), p),
      'RECEIPT_INVALID receipt-key-changed',
    ],
    ['no alg', signRaw(signer.privateKey, b64({ typ: 'x' }), p), 'RECEIPT_INVALID receipt-key-changed'],
    [
      'a header that is an array',
      signRaw(signer.privateKey, b64(['EdDSA']), p),
      'RECEIPT_INVALID receipt-key-changed',
    ],
    [
      'a header that is not JSON',
      signRaw(signer.privateKey, 'bm90IGpzb24', p),
      'RECEIPT_INVALID receipt-key-changed',
    ],
    ['an empty header', signRaw(signer.privateKey, '', p), 'RECEIPT_INVALID receipt-key-changed'],
    [
      'an unknown critical extension',
      signRaw(signer.privateKey, b64({ alg: 'EdDSA', crit: ['x-tresor'], 'x-tresor': 1 }), p),
      'RECEIPT_INVALID receipt-key-changed',
    ],
    // RFC 7797 §6: b64 counts only when crit names it; jose decides both (the node path hands it over).
    [
      'b64 false without crit',
      signRaw(signer.privateKey, b64({ alg: 'EdDSA', b64: false }), p),
      'ok serving-1',
    ],
  ];
  for (const [name, options] of backends) {
    it.each(cases)(`${name}: %s`, async (_what, jws, expected) => {
      expect(await verdict(jws, r, options)).toBe(expected);
    });
  }

  it('node:crypto: a receipt jose signs verifies (the bytes serving produces are the same)', async () => {
    const key = await importJWK(
      { ...signer.jwk, d: signer.privateKey.export({ format: 'jwk' }).d! },
      'EdDSA',
    );
    const jws = await new CompactSign(Buffer.from(JSON.stringify(claims)))
      .setProtectedHeader({ alg: 'EdDSA', typ: 'tresor-receipt+jwt' })
      .sign(key);
    expect(jws).toBe(good);
    expect(await verdict(jws, r, { ed25519Verify: nodeEd25519Verify })).toBe('ok serving-1');
  });

  it('node:crypto: a receipt key that is not an Ed25519 key refuses, it never throws past the check', async () => {
    const x25519 = generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }).x!;
    const wrong = replica({ kty: 'OKP', crv: 'Ed25519', x: x25519.slice(0, 10) });
    expect(await verdict(good, wrong, { ed25519Verify: nodeEd25519Verify })).toBe(
      'RECEIPT_INVALID receipt-key-changed',
    );
  });

  it('node:crypto: segments must be base64url (RFC 7515 §2), where jose also takes base64 and blanks', async () => {
    const sig = Buffer.from(s, 'base64url');
    // A signature whose base64url form has '-' or '_' rewritten as base64 ('+', '/').
    let jws = good;
    for (let i = 0; i < 64 && !/[-_]/.test(jws.split('.')[2]!); i++) {
      jws = signRaw(signer.privateKey, h, b64({ ...claims, iat: claims.iat + i + 1 }));
    }
    const [jh, jp, js] = jws.split('.') as [string, string, string];
    const base64 = `${jh}.${jp}.${js.replaceAll('-', '+').replaceAll('_', '/')}`;
    expect(sig.length).toBe(64);
    expect(await verdict(jws, r, { ed25519Verify: nodeEd25519Verify })).toBe('ok serving-1');
    expect(await verdict(base64, r, { ed25519Verify: nodeEd25519Verify })).toBe(
      'RECEIPT_INVALID receipt-key-changed',
    );
  });

  it('an injected check that says no refuses a receipt jose would accept', async () => {
    const never: Ed25519Verify = () => false;
    expect(await verdict(good, r, {})).toBe('ok serving-1');
    expect(await verdict(good, r, { ed25519Verify: never })).toBe('RECEIPT_INVALID receipt-key-changed');
  });

  it('a claim that does not match is refused after the signature verified, by both', async () => {
    for (const [, options] of backends) {
      const err = await verifyReceipt(good, [r], { requestSha256: 'ef'.repeat(32) }, options).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TresorError);
      expect((err as TresorError).message).toContain('request hash');
    }
  });
});
