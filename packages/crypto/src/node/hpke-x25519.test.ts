import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { isTresorError } from '@tresor/protocol';
import { describe, expect, it } from 'vitest';
import { readTestdataJson } from '../../../../test/support/testdata.js';
import { bytesToHex, hexToBytes } from '../bytes.js';
import { HPKE_KEM, HpkeKeyPair, HpkeSuite, setupRecipient, setupSender } from '../hpke.js';
import { cachedX25519PublicKey, cachedX25519PublicKeyCount, nodeOhttpHpke } from './hpke-x25519.js';

/**
 * The node:crypto HPKE base mode against the RFC 9180 Appendix A vectors (DHKEM(X25519),
 * HKDF-SHA256, AES-128-GCM and AES-256-GCM) and against the HPKE library, both directions.
 */

interface BaseVector {
  readonly mode: number;
  readonly kem_id: number;
  readonly kdf_id: number;
  readonly aead_id: number;
  readonly info: string;
  readonly skEm: string;
  readonly skRm: string;
  readonly pkRm: string;
  readonly enc: string;
  readonly encryptions: readonly { aad: string; ct: string; pt: string }[];
  readonly exports: readonly { exporter_context: string; L: number; exported_value: string }[];
}

const vectors = (readTestdataJson('protocol/hpke/rfc9180-test-vectors.json') as BaseVector[]).filter(
  (v) => v.mode === 0 && v.kem_id === 0x20 && v.kdf_id === 1 && (v.aead_id === 1 || v.aead_id === 2),
);
const h = hexToBytes;

async function codeOf(run: () => unknown): Promise<string> {
  try {
    await run();
    return 'ok';
  } catch (err) {
    if (!isTresorError(err)) throw err;
    return err.code;
  }
}

describe('node:crypto HPKE base mode against RFC 9180 Appendix A', () => {
  it('covers the base-mode X25519 vectors for AES-128-GCM and AES-256-GCM', () => {
    expect(vectors.map((v) => v.aead_id).sort()).toEqual([1, 2]);
  });

  for (const v of vectors) {
    it(`AEAD ${v.aead_id}: enc, every ciphertext and every export, as sender and as recipient`, async () => {
      const suite = HpkeSuite.of({ kem: v.kem_id, kdf: v.kdf_id, aead: v.aead_id });
      const ephemeral = await HpkeKeyPair.fromPrivateKey(0x20, h(v.skEm));
      const recipientPair = await HpkeKeyPair.fromPrivateKey(0x20, h(v.skRm));
      const sender = nodeOhttpHpke.setupBaseSender(suite, h(v.pkRm), h(v.info), ephemeral);
      const recipient = nodeOhttpHpke.setupBaseRecipient(suite, recipientPair, h(v.enc), h(v.info));
      if (
        sender === undefined ||
        recipient === undefined ||
        sender instanceof Promise ||
        recipient instanceof Promise
      ) {
        throw new Error('the node backend must handle this suite synchronously');
      }
      expect(bytesToHex(sender.enc)).toBe(v.enc);
      for (const e of v.encryptions) {
        expect(bytesToHex(await sender.seal(h(e.pt), h(e.aad)))).toBe(e.ct);
        expect(bytesToHex(await recipient.open(h(e.ct), h(e.aad)))).toBe(e.pt);
      }
      for (const x of v.exports) {
        expect(bytesToHex(await sender.export(h(x.exporter_context), x.L))).toBe(x.exported_value);
        expect(bytesToHex(await recipient.export(h(x.exporter_context), x.L))).toBe(x.exported_value);
      }
    });
  }
});

describe('node:crypto HPKE interoperates with the HPKE library', () => {
  it('each side opens what the other sealed, for random messages, AADs, infos and exports', async () => {
    const recipientPair = await HpkeKeyPair.generate();
    const publicKey = recipientPair.publicKey.toBytes();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(1, 2),
        fc.uint8Array({ maxLength: 64 }),
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ maxLength: 16 })), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.uint8Array({ maxLength: 16 }),
        async (aead, info, messages, exporterContext) => {
          const suite = HpkeSuite.of({ kem: 0x20, kdf: 1, aead });
          // node sender → library recipient
          const nodeSender = nodeOhttpHpke.setupBaseSender(suite, publicKey, info, undefined);
          if (nodeSender === undefined || nodeSender instanceof Promise) throw new Error('not handled');
          const libRecipient = await setupRecipient(suite, recipientPair, nodeSender.enc, info);
          // library sender → node recipient
          const libSender = await setupSender(suite, recipientPair.publicKey, info);
          const nodeRecipient = nodeOhttpHpke.setupBaseRecipient(suite, recipientPair, libSender.enc, info);
          if (nodeRecipient === undefined || nodeRecipient instanceof Promise) throw new Error('not handled');
          for (const [pt, aad] of messages) {
            expect(await libRecipient.open(await nodeSender.seal(pt, aad), aad)).toEqual(pt);
            expect(await nodeRecipient.open(await libSender.seal(pt, aad), aad)).toEqual(pt);
          }
          expect(await nodeSender.export(exporterContext, 32)).toEqual(
            await libRecipient.export(exporterContext, 32),
          );
          expect(await nodeRecipient.export(exporterContext, 48)).toEqual(
            await libSender.export(exporterContext, 48),
          );
        },
      ),
      { numRuns: 40, seed: 9180 },
    );
  });

  it('leaves X-Wing, export-only and IKM test keys to the library', async () => {
    const xwing = HpkeSuite.of({ kem: HPKE_KEM.X_WING, kdf: 1, aead: 2 });
    const exportOnly = HpkeSuite.of({ kem: 0x20, kdf: 1, aead: 0xffff });
    const aes = HpkeSuite.of({ kem: 0x20, kdf: 1, aead: 2 });
    const pair = await HpkeKeyPair.generate();
    const xwingPair = await HpkeKeyPair.generate(HPKE_KEM.X_WING);
    const info = new Uint8Array(0);
    expect(nodeOhttpHpke.setupBaseSender(xwing, new Uint8Array(1216), info, undefined)).toBeUndefined();
    expect(
      nodeOhttpHpke.setupBaseSender(exportOnly, pair.publicKey.toBytes(), info, undefined),
    ).toBeUndefined();
    expect(
      nodeOhttpHpke.setupBaseSender(aes, pair.publicKey.toBytes(), info, new Uint8Array(32)),
    ).toBeUndefined();
    expect(nodeOhttpHpke.setupBaseRecipient(xwing, xwingPair, new Uint8Array(1120), info)).toBeUndefined();
    expect(nodeOhttpHpke.setupBaseRecipient(exportOnly, pair, new Uint8Array(32), info)).toBeUndefined();
  });
});

describe('node:crypto HPKE refusals', () => {
  const suite = HpkeSuite.of({ kem: 0x20, kdf: 1, aead: 2 });
  const info = new Uint8Array([1, 2, 3]);

  it('refuses public keys of the wrong length and low-order points with HPKE_KEY_INVALID', async () => {
    for (const key of [new Uint8Array(0), new Uint8Array(31), new Uint8Array(33), new Uint8Array(32)]) {
      // 32 zero bytes: the X25519 point of order 1, whose shared secret is all zeros (RFC 9180 §7.1.4).
      expect(await codeOf(() => nodeOhttpHpke.setupBaseSender(suite, key, info, undefined))).toBe(
        'HPKE_KEY_INVALID',
      );
    }
  });

  it('refuses an enc of the wrong length (OHTTP_MESSAGE_MALFORMED) or a low-order one (OHTTP_DECRYPT_FAILED)', async () => {
    const pair = await HpkeKeyPair.generate();
    expect(await codeOf(() => nodeOhttpHpke.setupBaseRecipient(suite, pair, new Uint8Array(31), info))).toBe(
      'OHTTP_MESSAGE_MALFORMED',
    );
    expect(await codeOf(() => nodeOhttpHpke.setupBaseRecipient(suite, pair, new Uint8Array(32), info))).toBe(
      'OHTTP_DECRYPT_FAILED',
    );
    const one = new Uint8Array(32);
    one[0] = 1; // u = 1, also of small order
    expect(await codeOf(() => nodeOhttpHpke.setupBaseRecipient(suite, pair, one, info))).toBe(
      'OHTTP_DECRYPT_FAILED',
    );
  });

  it('a context refuses tampered, reordered and foreign ciphertexts and keeps its place after a failure', async () => {
    const pair = await HpkeKeyPair.generate();
    const sender = nodeOhttpHpke.setupBaseSender(suite, pair.publicKey.toBytes(), info, undefined);
    if (sender === undefined || sender instanceof Promise) throw new Error('not handled');
    const recipient = nodeOhttpHpke.setupBaseRecipient(suite, pair, sender.enc, info);
    const otherInfo = nodeOhttpHpke.setupBaseRecipient(suite, pair, sender.enc, new Uint8Array([9]));
    if (
      recipient === undefined ||
      recipient instanceof Promise ||
      otherInfo === undefined ||
      otherInfo instanceof Promise
    ) {
      throw new Error('not handled');
    }
    const first = await sender.seal(new Uint8Array([1]));
    const second = await sender.seal(new Uint8Array([2]));
    expect(await codeOf(() => otherInfo.open(first))).toBe('OHTTP_DECRYPT_FAILED');
    expect(await codeOf(() => recipient.open(second))).toBe('OHTTP_DECRYPT_FAILED');
    const flipped = first.slice();
    flipped[0]! ^= 1;
    expect(await codeOf(() => recipient.open(flipped))).toBe('OHTTP_DECRYPT_FAILED');
    expect(await codeOf(() => recipient.open(first.subarray(0, 10)))).toBe('OHTTP_DECRYPT_FAILED');
    expect(await codeOf(() => recipient.open(first, new Uint8Array([0])))).toBe('OHTTP_DECRYPT_FAILED');
    // Failed opens do not advance the sequence number (RFC 9180 §5.2): the right order still opens.
    expect(await recipient.open(first)).toEqual(new Uint8Array([1]));
    expect(await recipient.open(second)).toEqual(new Uint8Array([2]));
    expect(await codeOf(() => recipient.export(new Uint8Array(0), 0))).toBe('INTERNAL_ERROR');
  });
});

describe('recipient public key cache', () => {
  it('imports a recipient key once and hands back the same KeyObject', async () => {
    const pair = await HpkeKeyPair.generate();
    const raw = pair.publicKey.toBytes();
    const first = cachedX25519PublicKey(raw);
    expect(cachedX25519PublicKey(raw.slice())).toBe(first);
    expect(first.asymmetricKeyType).toBe('x25519');
  });

  it('stays bounded and tells different keys apart', async () => {
    const keys = await Promise.all(Array.from({ length: 20 }, () => HpkeKeyPair.generate()));
    const objects = keys.map((k) => cachedX25519PublicKey(k.publicKey.toBytes()));
    expect(new Set(objects).size).toBe(20);
    expect(cachedX25519PublicKeyCount()).toBeLessThanOrEqual(16);
  });

  it('still refuses a recipient key of the wrong length, cached or not', () => {
    const suite = HpkeSuite.of({ kem: 0x20, kdf: 1, aead: 1 });
    for (const length of [0, 31, 33]) {
      expect(() =>
        nodeOhttpHpke.setupBaseSender(suite, new Uint8Array(length), new Uint8Array(0), undefined),
      ).toThrow(expect.objectContaining({ code: 'HPKE_KEY_INVALID' }));
    }
  });
});

describe('fresh ephemeral keys', () => {
  const suite = HpkeSuite.of({ kem: 0x20, kdf: 1, aead: 1 });

  it('each sender gets a new key pair whose enc the recipient opens', async () => {
    const recipientPair = await HpkeKeyPair.generate();
    const encs = new Set<string>();
    for (let i = 0; i < 32; i++) {
      const sender = nodeOhttpHpke.setupBaseSender(
        suite,
        recipientPair.publicKey.toBytes(),
        h('01'),
        undefined,
      );
      if (sender === undefined || sender instanceof Promise) throw new Error('expected a synchronous sender');
      expect(sender.enc).toHaveLength(32);
      encs.add(bytesToHex(sender.enc));
      const recipient = nodeOhttpHpke.setupBaseRecipient(suite, recipientPair, sender.enc, h('01'));
      if (recipient === undefined || recipient instanceof Promise) throw new Error('expected a recipient');
      const sealed = await sender.seal(new Uint8Array([i]), new Uint8Array(0));
      expect(await recipient.open(sealed, new Uint8Array(0))).toEqual(new Uint8Array([i]));
    }
    expect(encs.size).toBe(32);
  });

  // Node 20's key generation deadlocks a thread that exports the new key to JWK while a garbage
  // collection frees the generation job (hpke-x25519.ts, generateX25519KeyPair). With a 1 MiB
  // young generation the former generateKeyPairSync + export did so within a few thousand senders
  // (measured: every run hung); the child has 60 s for 20,000.
  it('sets up 20,000 senders in a process with a tiny young generation without hanging', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tresor-hpke-gc-'));
    try {
      const script = join(dir, 'senders.mts');
      const module = fileURLToPath(new URL('./hpke-x25519.ts', import.meta.url));
      const hpke = fileURLToPath(new URL('../hpke.ts', import.meta.url));
      writeFileSync(
        script,
        [
          `import { nodeOhttpHpke } from ${JSON.stringify(module)};`,
          `import { HpkeKeyPair, HpkeSuite } from ${JSON.stringify(hpke)};`,
          'const suite = HpkeSuite.of({ kem: 0x20, kdf: 1, aead: 1 });',
          'const pk = (await HpkeKeyPair.generate()).publicKey.toBytes();',
          'const keep: unknown[] = [];',
          'for (let i = 0; i < 20_000; i++) {',
          '  keep.push(nodeOhttpHpke.setupBaseSender(suite, pk, new Uint8Array(8), undefined));',
          '  if (keep.length > 64) keep.length = 0;',
          '}',
          "process.stdout.write('done');",
        ].join('\n'),
      );
      const child = spawnSync(process.execPath, ['--max-semi-space-size=1', '--import', 'tsx', script], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(child.error).toBeUndefined();
      expect({ status: child.status, stdout: child.stdout }).toEqual({ status: 0, stdout: 'done' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 70_000);
});
