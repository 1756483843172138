import fc from 'fast-check';
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readTestdataJson } from '../../../test/support/testdata.js';
import { bytesToHex, hexToBytes, utf8Encode } from './bytes.js';
import {
  DEFAULT_HPKE_SUITE,
  HPKE_AEAD,
  HPKE_KEM,
  HpkeKeyPair,
  HpkePublicKey,
  HpkeSuite,
  setupRecipient,
  setupSender,
  type HpkeRecipientOptions,
  type HpkeSenderOptions,
} from './hpke.js';

/** One RFC 9180 test vector (Appendix A, cfrg/draft-irtf-cfrg-hpke test-vectors.json). */
interface Rfc9180Vector {
  readonly mode: number;
  readonly kem_id: number;
  readonly kdf_id: number;
  readonly aead_id: number;
  readonly info: string;
  readonly ikmR: string;
  readonly ikmE: string;
  readonly ikmS?: string;
  readonly skRm: string;
  readonly pkRm: string;
  readonly pkEm: string;
  readonly enc: string;
  readonly psk?: string;
  readonly psk_id?: string;
  readonly pkSm?: string;
  readonly encryptions: readonly { aad: string; ct: string; pt: string }[];
  readonly exports: readonly { exporter_context: string; L: number; exported_value: string }[];
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

function parseVectors(json: unknown): Rfc9180Vector[] {
  if (!Array.isArray(json)) throw new Error('RFC 9180 vectors: expected an array');
  return json.map((v: unknown) => {
    if (!isRecord(v) || typeof v.mode !== 'number' || !Array.isArray(v.encryptions)) {
      throw new Error('RFC 9180 vectors: unexpected shape');
    }
    return v as unknown as Rfc9180Vector;
  });
}

const vectors = parseVectors(readTestdataJson('protocol/hpke/rfc9180-test-vectors.json'));
const h = hexToBytes;

const supported = vectors.filter(
  (v) =>
    v.kem_id === HPKE_KEM.X25519_HKDF_SHA256 &&
    v.kdf_id === 1 &&
    (v.aead_id === HPKE_AEAD.AES_128_GCM ||
      v.aead_id === HPKE_AEAD.AES_256_GCM ||
      v.aead_id === HPKE_AEAD.EXPORT_ONLY),
);

function modeName(mode: number): string {
  return ['base', 'psk', 'auth', 'auth_psk'][mode] ?? String(mode);
}

describe('HPKE suite wrapper against the RFC 9180 test vectors', () => {
  it('covers the X25519 / HKDF-SHA256 vectors for AES-128-GCM, AES-256-GCM and export-only in all four modes', () => {
    expect(supported).toHaveLength(12);
    expect(supported.filter((v) => v.mode === 0).map((v) => v.aead_id)).toEqual([1, 2, 0xffff]);
  });

  for (const v of supported) {
    it(`${modeName(v.mode)} mode, AEAD 0x${v.aead_id.toString(16)}: keys, ${v.encryptions.length} ciphertexts in sequence, ${v.exports.length} exports`, async () => {
      const suite = HpkeSuite.of({ kem: v.kem_id, kdf: v.kdf_id, aead: v.aead_id });
      const recipient = await HpkeKeyPair.derive(v.kem_id, h(v.ikmR));
      expect(bytesToHex(recipient.publicKey.toBytes())).toBe(v.pkRm);
      expect(bytesToHex(await recipient.exportPrivateKey())).toBe(v.skRm);
      const reimported = await HpkeKeyPair.fromPrivateKey(v.kem_id, h(v.skRm));
      expect(bytesToHex(reimported.publicKey.toBytes())).toBe(v.pkRm);
      const ephemeral = await HpkeKeyPair.derive(v.kem_id, h(v.ikmE));
      expect(bytesToHex(ephemeral.publicKey.toBytes())).toBe(v.pkEm);

      const psk =
        v.psk === undefined || v.psk_id === undefined ? undefined : { id: h(v.psk_id), key: h(v.psk) };
      const sender = v.ikmS === undefined ? undefined : await HpkeKeyPair.derive(v.kem_id, h(v.ikmS));
      if (sender !== undefined) expect(bytesToHex(sender.publicKey.toBytes())).toBe(v.pkSm);
      const recipientOptions: HpkeRecipientOptions = {
        ...(psk === undefined ? {} : { psk }),
        ...(sender === undefined ? {} : { senderPublicKey: sender.publicKey }),
      };
      const senderOptions: HpkeSenderOptions = {
        testEphemeralKey: ephemeral,
        ...(psk === undefined ? {} : { psk }),
        ...(sender === undefined ? {} : { senderKeyPair: sender }),
      };

      const rctx = await setupRecipient(suite, reimported, h(v.enc), h(v.info), recipientOptions);
      const sctx = await setupSender(suite, recipient.publicKey, h(v.info), senderOptions);
      expect(bytesToHex(sctx.enc)).toBe(v.enc);
      for (const e of v.encryptions) {
        expect(bytesToHex(await rctx.open(h(e.ct), h(e.aad)))).toBe(e.pt);
        expect(bytesToHex(await sctx.seal(h(e.pt), h(e.aad)))).toBe(e.ct);
      }
      for (const x of v.exports) {
        expect(bytesToHex(await rctx.export(h(x.exporter_context), x.L))).toBe(x.exported_value);
        expect(bytesToHex(await sctx.export(h(x.exporter_context), x.L))).toBe(x.exported_value);
      }
    });
  }

  it('refuses the suites of the file Tresor does not implement (P-256, ChaCha20-Poly1305)', () => {
    const others = vectors.filter((v) => !supported.includes(v));
    expect(others).toHaveLength(20);
    for (const v of others) {
      expect(() => HpkeSuite.of({ kem: v.kem_id, kdf: v.kdf_id, aead: v.aead_id })).toThrow(
        expect.objectContaining({ code: 'HPKE_SUITE_UNSUPPORTED' }),
      );
    }
  });

  it('a ciphertext opened out of sequence or with another AAD fails with OHTTP_DECRYPT_FAILED', async () => {
    const v = supported.find((x) => x.mode === 0 && x.aead_id === HPKE_AEAD.AES_256_GCM)!;
    const suite = HpkeSuite.of({ kem: v.kem_id, kdf: v.kdf_id, aead: v.aead_id });
    const kp = await HpkeKeyPair.fromPrivateKey(v.kem_id, h(v.skRm));
    const second = v.encryptions[1]!;
    const outOfOrder = await setupRecipient(suite, kp, h(v.enc), h(v.info));
    await expect(outOfOrder.open(h(second.ct), h(second.aad))).rejects.toMatchObject({
      code: 'OHTTP_DECRYPT_FAILED',
    });
    const wrongAad = await setupRecipient(suite, kp, h(v.enc), h(v.info));
    await expect(wrongAad.open(h(v.encryptions[0]!.ct), utf8Encode('other'))).rejects.toMatchObject({
      code: 'OHTTP_DECRYPT_FAILED',
    });
  });
});

describe('HPKE suite identifiers', () => {
  it('defaults to X25519 / HKDF-SHA256 / AES-256-GCM with the RFC 9180 §7 sizes', () => {
    const suite = HpkeSuite.of();
    expect(suite.toJSON()).toEqual({ kem: 0x20, kdf: 1, aead: 2 });
    expect(DEFAULT_HPKE_SUITE).toEqual({ kem: 0x20, kdf: 1, aead: 2 });
    expect([suite.encSize, suite.publicKeySize, suite.keySize, suite.nonceSize, suite.tagSize]).toEqual([
      32, 32, 32, 12, 16,
    ]);
    const xwing = HpkeSuite.of({ kem: HPKE_KEM.X_WING, kdf: 1, aead: 2 });
    expect([xwing.encSize, xwing.publicKeySize]).toEqual([1120, 1216]);
    expect(HpkeSuite.of({ kem: 0x20, kdf: 1, aead: 0xffff }).canEncrypt).toBe(false);
  });

  it('refuses every other KEM, KDF and AEAD id with HPKE_SUITE_UNSUPPORTED', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom('kem', 'kdf', 'aead'), (id, which) => {
        const ids = { ...DEFAULT_HPKE_SUITE, [which]: id };
        const known =
          which === 'kem' ? [0x20, 0x647a] : which === 'kdf' ? [1] : [HPKE_AEAD.AES_128_GCM, 2, 0xffff];
        if (known.includes(id)) {
          expect(HpkeSuite.of(ids)[which]).toBe(id);
        } else {
          expect(() => HpkeSuite.of(ids)).toThrow(
            expect.objectContaining({ code: 'HPKE_SUITE_UNSUPPORTED' }),
          );
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('HPKE keys', () => {
  it('refuses wrong lengths with HPKE_KEY_INVALID and unknown KEMs with HPKE_SUITE_UNSUPPORTED', async () => {
    for (const [kem, length] of [
      [HPKE_KEM.X25519_HKDF_SHA256, 31],
      [HPKE_KEM.X25519_HKDF_SHA256, 33],
      [HPKE_KEM.X25519_HKDF_SHA256, 0],
      [HPKE_KEM.X_WING, 32],
      [HPKE_KEM.X_WING, 1215],
    ] as const) {
      await expect(HpkePublicKey.fromBytes(kem, new Uint8Array(length))).rejects.toMatchObject({
        code: 'HPKE_KEY_INVALID',
      });
    }
    await expect(HpkeKeyPair.fromPrivateKey(0x20, new Uint8Array(31))).rejects.toMatchObject({
      code: 'HPKE_KEY_INVALID',
    });
    await expect(HpkeKeyPair.fromPrivateKey(HPKE_KEM.X_WING, new Uint8Array(1216))).rejects.toMatchObject({
      code: 'HPKE_KEY_INVALID',
    });
    await expect(HpkeKeyPair.derive(0x20, new Uint8Array(16))).rejects.toMatchObject({
      code: 'HPKE_KEY_INVALID',
    });
    await expect(HpkePublicKey.fromBytes(0x10, new Uint8Array(65))).rejects.toMatchObject({
      code: 'HPKE_SUITE_UNSUPPORTED',
    });
    await expect(HpkeKeyPair.generate(0x21)).rejects.toMatchObject({ code: 'HPKE_SUITE_UNSUPPORTED' });
  });

  it('refuses to encapsulate to the all-zero X25519 point (RFC 9180 §7.1.4) and a low-order enc', async () => {
    const suite = HpkeSuite.of();
    const zero = await HpkePublicKey.fromBytes(0x20, new Uint8Array(32));
    await expect(setupSender(suite, zero, new Uint8Array(0))).rejects.toMatchObject({
      code: 'HPKE_KEY_INVALID',
    });
    const kp = await HpkeKeyPair.generate();
    await expect(setupRecipient(suite, kp, new Uint8Array(32), new Uint8Array(0))).rejects.toMatchObject({
      code: 'OHTTP_DECRYPT_FAILED',
    });
    await expect(setupRecipient(suite, kp, new Uint8Array(31), new Uint8Array(0))).rejects.toMatchObject({
      code: 'OHTTP_MESSAGE_MALFORMED',
    });
  });

  it('refuses a key of one KEM in a suite of another', async () => {
    const xwing = HpkeSuite.of({ kem: HPKE_KEM.X_WING, kdf: 1, aead: 2 });
    const kp = await HpkeKeyPair.generate();
    await expect(setupSender(xwing, kp.publicKey, new Uint8Array(0))).rejects.toMatchObject({
      code: 'HPKE_KEY_INVALID',
    });
  });

  it('never shows the private key in JSON or util.inspect', async () => {
    const kp = await HpkeKeyPair.generate();
    const secret = bytesToHex(await kp.exportPrivateKey());
    const json = JSON.stringify(kp);
    expect(JSON.parse(json)).toEqual({ kem: 0x20, publicKey: bytesToHex(kp.publicKey.toBytes()) });
    expect(json).not.toContain(secret);
    expect(inspect(kp, { depth: 10, showHidden: true })).not.toContain(secret);
    expect(Object.keys(kp)).toEqual(['kem', 'publicKey']);
  });

  it('round-trips X25519 and X-Wing private keys and seals between the two ends', async () => {
    for (const kem of [HPKE_KEM.X25519_HKDF_SHA256, HPKE_KEM.X_WING]) {
      const suite = HpkeSuite.of({ kem, kdf: 1, aead: 2 });
      const kp = await HpkeKeyPair.generate(kem);
      const raw = await kp.exportPrivateKey();
      expect(raw).toHaveLength(32);
      const again = await HpkeKeyPair.fromPrivateKey(kem, raw);
      expect(again.publicKey.toBytes()).toEqual(kp.publicKey.toBytes());
      const pk = await HpkePublicKey.fromBytes(kem, kp.publicKey.toBytes());
      const info = utf8Encode('tresor test');
      const sctx = await setupSender(suite, pk, info);
      expect(sctx.enc).toHaveLength(suite.encSize);
      const rctx = await setupRecipient(suite, again, sctx.enc, info);
      for (const text of ['first', '', 'third']) {
        expect(await rctx.open(await sctx.seal(utf8Encode(text)))).toEqual(utf8Encode(text));
      }
      expect(await rctx.export(info, 32)).toEqual(await sctx.export(info, 32));
    }
  });

  it('X-Wing derives deterministically from a fixed encapsulation seed', async () => {
    const suite = HpkeSuite.of({ kem: HPKE_KEM.X_WING, kdf: 1, aead: 2 });
    const kp = await HpkeKeyPair.derive(HPKE_KEM.X_WING, new Uint8Array(32).fill(7));
    const seed = new Uint8Array(64).fill(9);
    const a = await setupSender(suite, kp.publicKey, new Uint8Array(0), { testEphemeralKey: seed });
    const b = await setupSender(suite, kp.publicKey, new Uint8Array(0), { testEphemeralKey: seed });
    expect(a.enc).toEqual(b.enc);
    expect(await a.seal(utf8Encode('x'))).toEqual(await b.seal(utf8Encode('x')));
  });

  it('seal/open round trip for random plaintexts and AADs in one context', async () => {
    const suite = HpkeSuite.of();
    const kp = await HpkeKeyPair.generate();
    const sctx = await setupSender(suite, kp.publicKey, utf8Encode('prop'));
    const rctx = await setupRecipient(suite, kp, sctx.enc, utf8Encode('prop'));
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 200 }),
        fc.uint8Array({ maxLength: 40 }),
        async (pt, aad) => {
          const ct = await sctx.seal(pt, aad);
          expect(ct).toHaveLength(pt.length + suite.tagSize);
          expect(await rctx.open(ct, aad)).toEqual(pt);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
