import { ed25519 } from '@noble/curves/ed25519.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { hexToBytes } from '@tresor/crypto';
import { ed25519Verifier, importEd25519SigningKey } from './ed25519.js';

// RFC 8032 §7.1, TEST 1, 2 and 3: public key, message, signature.
const RFC8032 = [
  {
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

/** The group order L (RFC 8032 §5.1). */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

const paths = [
  { name: 'WebCrypto', subtle: globalThis.crypto.subtle },
  { name: 'JS (@noble)', subtle: null },
] as const;

function littleEndian(value: bigint): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = Number((value >> BigInt(8 * i)) & 0xffn);
  return out;
}

function fromLittleEndian(bytes: Uint8Array): bigint {
  let value = 0n;
  for (let i = bytes.length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
  return value;
}

const keyPair = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((seed) => ({
  seed,
  publicKey: ed25519.getPublicKey(seed),
}));
const message = fc.uint8Array({ maxLength: 300 });

describe.each(paths)('Ed25519 verification on $name', ({ subtle }) => {
  it('accepts the RFC 8032 §7.1 test vectors and nothing once a bit changes', async () => {
    for (const v of RFC8032) {
      const verify = ed25519Verifier(hexToBytes(v.public), subtle);
      const signature = hexToBytes(v.signature);
      expect(await verify(signature, hexToBytes(v.message))).toBe(true);
      for (const bit of [0, 255, 256, 511]) {
        const flipped = Uint8Array.from(signature);
        flipped[bit >> 3]! ^= 1 << (bit & 7);
        expect(await verify(flipped, hexToBytes(v.message))).toBe(false);
      }
      expect(await verify(signature, hexToBytes(`${v.message}00`))).toBe(false);
    }
  });

  it('refuses a non-canonical S (S + L, RFC 8032 §5.1.7 step 1) and signatures of the wrong length', async () => {
    const v = RFC8032[1]!;
    const verify = ed25519Verifier(hexToBytes(v.public), subtle);
    const signature = hexToBytes(v.signature);
    const s = fromLittleEndian(signature.subarray(32));
    const unreduced = Uint8Array.from(signature);
    unreduced.set(littleEndian(s + L), 32);
    expect(await verify(unreduced, hexToBytes(v.message))).toBe(false);
    expect(await verify(signature.subarray(0, 63), hexToBytes(v.message))).toBe(false);
    expect(await verify(new Uint8Array(65), hexToBytes(v.message))).toBe(false);
    expect(await verify(new Uint8Array(0), hexToBytes(v.message))).toBe(false);
  });

  it('trusts no key @noble would refuse: small order, off the curve, non-canonical, wrong length', async () => {
    // The identity point (y = 1) has small order; with it, R = [s]B makes [S]B = R + [k]A hold for
    // every message, a signature any cofactorless verifier alone would accept.
    const identity = littleEndian(1n);
    const s = 1234567890123456789n;
    const forged = new Uint8Array(64);
    forged.set(ed25519.Point.BASE.multiply(s).toBytes(), 0);
    forged.set(littleEndian(s), 32);
    expect(await ed25519Verifier(identity, subtle)(forged, new Uint8Array([1, 2, 3]))).toBe(false);
    const p = 2n ** 255n - 19n;
    const nonCanonical = littleEndian(p + 1n); // encodes y = 1 again, as y + p
    const offCurve = littleEndian(2n); // y = 2: x² = (y² − 1)/(d·y² + 1) has no square root
    for (const key of [nonCanonical, offCurve, new Uint8Array(31), new Uint8Array(33)]) {
      expect(await ed25519Verifier(key, subtle)(forged, new Uint8Array([1, 2, 3]))).toBe(false);
    }
  });

  it('accepts every honest signature (property)', async () => {
    await fc.assert(
      fc.asyncProperty(keyPair, message, async ({ seed, publicKey }, m) => {
        expect(await ed25519Verifier(publicKey, subtle)(ed25519.sign(m, seed), m)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('Ed25519 verification paths', () => {
  it('WebCrypto accepts only what strict @noble accepts, on honest and altered signatures (property)', async () => {
    const alteration = fc.record({
      byte: fc.nat({ max: 63 }),
      mask: fc.integer({ min: 0, max: 255 }),
      alterMessage: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(keyPair, message, alteration, async ({ seed, publicKey }, m, change) => {
        const signature = ed25519.sign(m, seed);
        let signed = m;
        if (change.alterMessage) signed = Uint8Array.from([...m, change.mask]);
        else signature[change.byte]! ^= change.mask;
        const native = await ed25519Verifier(publicKey, globalThis.crypto.subtle)(signature, signed);
        const js = await ed25519Verifier(publicKey, null)(signature, signed);
        expect(native).toBe(js);
        expect(native).toBe(change.mask === 0 && !change.alterMessage);
      }),
      { numRuns: 1000 },
    );
  });

  it('checks the key itself: WebCrypto alone accepts a forgery under a small-order key', async () => {
    const identity = littleEndian(1n);
    const s = 987654321n;
    const forged = new Uint8Array(64);
    forged.set(ed25519.Point.BASE.multiply(s).toBytes(), 0);
    forged.set(littleEndian(s), 32);
    const raw = await crypto.subtle.importKey('raw', identity, { name: 'Ed25519' }, false, ['verify']);
    expect(await crypto.subtle.verify({ name: 'Ed25519' }, raw, forged, new Uint8Array([9]))).toBe(true);
    expect(await ed25519Verifier(identity, globalThis.crypto.subtle)(forged, new Uint8Array([9]))).toBe(
      false,
    );
  });

  it('falls back to @noble where WebCrypto has no Ed25519', async () => {
    const noEd25519 = {
      importKey: () => Promise.reject(new DOMException('Unrecognized name.', 'NotSupportedError')),
      verify: () => Promise.reject(new Error('never called')),
    } as unknown as SubtleCrypto;
    const v = RFC8032[2]!;
    const verify = ed25519Verifier(hexToBytes(v.public), noEd25519);
    expect(await verify(hexToBytes(v.signature), hexToBytes(v.message))).toBe(true);
    expect(await verify(hexToBytes(v.signature), hexToBytes('af83'))).toBe(false);
  });

  it('answers false, never rejects, when the platform fails while verifying', async () => {
    const failing = {
      importKey: globalThis.crypto.subtle.importKey.bind(globalThis.crypto.subtle),
      verify: () => Promise.reject(new Error('operation failed')),
    } as unknown as SubtleCrypto;
    const v = RFC8032[0]!;
    expect(
      await ed25519Verifier(hexToBytes(v.public), failing)(hexToBytes(v.signature), new Uint8Array()),
    ).toBe(false);
  });

  it('keeps its own copy of the public key', async () => {
    const v = RFC8032[1]!;
    const key = hexToBytes(v.public);
    const verify = ed25519Verifier(key, globalThis.crypto.subtle);
    key.fill(0);
    expect(await verify(hexToBytes(v.signature), hexToBytes(v.message))).toBe(true);
  });
});

describe('Ed25519 signing keys in WebCrypto', () => {
  it('imports a seed (RFC 8410 PKCS#8) that signs as RFC 8032 §7.1 says, and zeroes nothing of the caller', async () => {
    const seed = hexToBytes('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb');
    const key = await importEd25519SigningKey(seed, globalThis.crypto.subtle);
    expect(key).toMatchObject({ extractable: false, usages: ['sign'] });
    const signature = new Uint8Array(
      await crypto.subtle.sign({ name: 'Ed25519' }, key!, Uint8Array.of(0x72)),
    );
    expect(Buffer.from(signature).toString('hex')).toBe(RFC8032[1]!.signature);
    expect(Buffer.from(seed).toString('hex')).toBe(
      '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    );
  });

  it('answers undefined (sign with @noble) without WebCrypto or where it refuses Ed25519', async () => {
    const seed = new Uint8Array(32).fill(1);
    expect(await importEd25519SigningKey(seed, null)).toBeUndefined();
    const noEd25519 = {
      importKey: () => Promise.reject(new DOMException('Unrecognized name.', 'NotSupportedError')),
    } as unknown as SubtleCrypto;
    expect(await importEd25519SigningKey(seed, noEd25519)).toBeUndefined();
  });
});
