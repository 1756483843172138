import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { DEFAULT_CHUNK_SIZE, chunkCount } from './sealed-model-format.js';
import { ModelKey } from './sealed-model-key.js';
import { defaultKeyId, sealModel, sealModelBytes } from './sealed-model-seal.js';
import { nobleSha256 } from './sealed-model-sha256.js';
import { byteSourceFromBytes, byteSourceFromChunks, type ByteSource } from './sealed-model-source.js';
import { openSealedModel, unsealModelBytes } from './sealed-model-unseal.js';

const keys = await Promise.all([1, 2].map((n) => ModelKey.import(new Uint8Array(32).fill(n))));
const key = keys[0]!;

/** Splits bytes into pieces at the given cut points (a stream delivering odd-sized reads). */
function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    pieces.push(bytes.subarray(start, point));
    start = point;
  }
  return pieces;
}

async function collect(pieces: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of pieces) parts.push(p);
  return Buffer.concat(parts);
}

const sha256 = (bytes: Uint8Array): Uint8Array => createHash('sha256').update(bytes).digest();

/** Plaintext sizes around chunk boundaries: 0, exact multiples, one under and one over. */
const sizeAndChunk = fc
  .record({
    chunkSize: fc.integer({ min: 1, max: 40 }),
    chunks: fc.integer({ min: 0, max: 6 }),
    delta: fc.constantFrom(-1, 0, 1),
  })
  .map(({ chunkSize, chunks, delta }) => ({ chunkSize, size: Math.max(0, chunks * chunkSize + delta) }));

describe('sealed model round trips', () => {
  it('unseals to the original for every size and chunk size, from whole buffers and from odd-sized pieces', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          sizeAndChunk,
          fc.record({ chunkSize: fc.integer({ min: 1, max: 64 }), size: fc.integer({ min: 0, max: 300 }) }),
        ),
        fc.integer({ min: 0, max: 255 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        async ({ chunkSize, size }, fill, plainCuts, sealedCuts) => {
          const plaintext = Uint8Array.from({ length: size }, (_, i) => (i * 31 + fill) & 0xff);
          const sealed = await collect(
            sealModel(byteSourceFromChunks(splitAt(plaintext, plainCuts)), {
              key,
              chunkSize,
              plaintextLength: size,
              plaintextSha256: sha256(plaintext),
            }),
          );
          const reader = await openSealedModel(byteSourceFromChunks(splitAt(sealed, sealedCuts)));
          expect(reader.header.plaintextLength).toBe(size);
          expect(reader.sealedSize).toBe(sealed.length);
          const chunks: Uint8Array[] = [];
          for await (const chunk of reader.unseal(key)) chunks.push(chunk);
          expect(chunks.length).toBe(size === 0 ? 0 : chunkCount(size, chunkSize));
          expect(chunks.slice(0, -1).every((c) => c.length === chunkSize)).toBe(true);
          expect(Buffer.concat(chunks).equals(Buffer.from(plaintext))).toBe(true);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('adds exactly 45 + header + 16 bytes per chunk, and an empty model is one empty final chunk', async () => {
    for (const [size, chunkSize] of [
      [0, 16],
      [16, 16],
      [17, 16],
      [48, 16],
    ] as const) {
      const sealed = await sealModelBytes(new Uint8Array(size), { key, chunkSize });
      const reader = await openSealedModel(byteSourceFromBytes(sealed));
      const headerJson = new DataView(sealed.buffer, sealed.byteOffset).getUint32(9);
      expect(sealed.length).toBe(13 + headerJson + 32 + size + 16 * chunkCount(size, chunkSize));
      expect(reader.sealedSize).toBe(sealed.length);
    }
  });

  it('round trips a model of several default 4 MiB chunks plus one byte', async () => {
    const plaintext = new Uint8Array(2 * DEFAULT_CHUNK_SIZE + 1);
    for (let i = 0; i < plaintext.length; i += 4096) plaintext[i] = i >> 12;
    const sealed = await sealModelBytes(plaintext, { key });
    const reader = await openSealedModel(byteSourceFromBytes(sealed));
    expect(reader.header.chunkSize).toBe(DEFAULT_CHUNK_SIZE);
    const sizes: number[] = [];
    const hash = nobleSha256();
    for await (const chunk of reader.unseal(key)) {
      sizes.push(chunk.length);
      hash.update(chunk);
    }
    expect(sizes).toEqual([DEFAULT_CHUNK_SIZE, DEFAULT_CHUNK_SIZE, 1]);
    expect(Buffer.from(hash.digest()).equals(sha256(plaintext))).toBe(true);
  });

  it('records key id, fingerprint, lengths, digest and metadata in the header, with fresh randomness per file', async () => {
    const plaintext = new TextEncoder().encode('weights');
    const a = await sealModelBytes(plaintext, { key, metadata: { name: 'tiny', revision: '3' } });
    const b = await sealModelBytes(plaintext, { key, keyId: 'kbs:///tresor/model/tiny' });
    const ha = (await openSealedModel(byteSourceFromBytes(a))).header;
    const hb = (await openSealedModel(byteSourceFromBytes(b))).header;
    expect(ha).toMatchObject({
      version: 1,
      keyId: defaultKeyId(key),
      keyFingerprint: key.fingerprint,
      plaintextLength: 7,
      plaintextSha256: Buffer.from(sha256(plaintext)).toString('hex'),
      metadata: { name: 'tiny', revision: '3' },
    });
    expect(hb.keyId).toBe('kbs:///tresor/model/tiny');
    expect(ha.salt).not.toBe(hb.salt);
    expect(ha.noncePrefix).not.toBe(hb.noncePrefix);
    expect(defaultKeyId(key)).not.toContain('0101010101');
  });

  it('reads from a WHATWG ReadableStream (a fetch body) and refuses pieces that are not bytes', async () => {
    const plaintext = Uint8Array.from({ length: 5000 }, (_, i) => i & 0xff);
    const sealed = await sealModelBytes(plaintext, { key, chunkSize: 700 });
    const reader = await openSealedModel(byteSourceFromChunks(new Blob([sealed]).stream()));
    expect(Buffer.from(await collect(reader.unseal(key))).equals(Buffer.from(plaintext))).toBe(true);
    const strings = byteSourceFromChunks(['not bytes'] as unknown as Uint8Array[]);
    await expect(openSealedModel(strings)).rejects.toMatchObject({ code: 'INPUT_MALFORMED' });
  });

  it('never reads beyond one chunk per read, so memory stays a few chunks', async () => {
    const plaintext = new Uint8Array(1000);
    const sealed = await sealModelBytes(plaintext, { key, chunkSize: 64 });
    const inner = byteSourceFromBytes(sealed);
    const requested: number[] = [];
    const spy: ByteSource = {
      read(n) {
        requested.push(n);
        return inner.read(n);
      },
    };
    const reader = await openSealedModel(spy);
    expect(Buffer.from(await collect(reader.unseal(key))).equals(Buffer.from(plaintext))).toBe(true);
    expect(Math.max(...requested.slice(3))).toBe(64 + 16);
  });
});

describe('sealing refuses a plaintext that differs from what it declared', () => {
  const plaintext = Uint8Array.from({ length: 100 }, (_, i) => i);
  const cases: [string, Uint8Array][] = [
    ['shorter', plaintext.subarray(0, 99)],
    ['longer', Buffer.concat([plaintext, Uint8Array.of(0)])],
    ['other bytes', Uint8Array.from(plaintext, (b, i) => (i === 50 ? b ^ 1 : b))],
  ];
  for (const [name, delivered] of cases) {
    it(`${name}: SEALED_MODEL_INPUT_CHANGED before the last chunk is released`, async () => {
      const out: Uint8Array[] = [];
      const run = async (): Promise<void> => {
        for await (const p of sealModel(byteSourceFromBytes(delivered), {
          key,
          chunkSize: 10,
          plaintextLength: plaintext.length,
          plaintextSha256: sha256(plaintext),
        })) {
          out.push(p);
        }
      };
      await expect(run()).rejects.toMatchObject({ code: 'SEALED_MODEL_INPUT_CHANGED' });
      // Header block (2 pieces) plus at most the chunks before the last one.
      expect(out.length).toBeLessThan(2 + 10);
    });
  }

  it('refuses bad options with USAGE_INVALID', async () => {
    const bad = [{ chunkSize: 0 }, { plaintextSha256: new Uint8Array(31) }, { keyId: 'with space' }];
    for (const change of bad) {
      const run = collect(
        sealModel(byteSourceFromBytes(plaintext), {
          key,
          plaintextLength: 100,
          plaintextSha256: sha256(plaintext),
          ...change,
        }),
      );
      await expect(run).rejects.toBeInstanceOf(TresorError);
      await expect(run).rejects.toMatchObject({ code: 'USAGE_INVALID' });
    }
  });
});

describe('wrong key', () => {
  it('is SEALED_MODEL_WRONG_KEY before any chunk is read, naming the key id', async () => {
    const sealed = await sealModelBytes(new Uint8Array(500), {
      key,
      chunkSize: 50,
      keyId: 'kbs:///repo/key/a',
    });
    const inner = byteSourceFromBytes(sealed);
    const requested: number[] = [];
    const spy: ByteSource = {
      read(n) {
        requested.push(n);
        return inner.read(n);
      },
    };
    const reader = await openSealedModel(spy);
    expect(requested).toHaveLength(3);
    await expect(collect(reader.unseal(keys[1]!))).rejects.toMatchObject({
      code: 'SEALED_MODEL_WRONG_KEY',
      message: expect.stringContaining('kbs:///repo/key/a') as string,
    });
    expect(requested).toHaveLength(3);
    await expect(unsealModelBytes(sealed, keys[1]!)).rejects.toMatchObject({
      code: 'SEALED_MODEL_WRONG_KEY',
    });
    expect((await unsealModelBytes(sealed, key)).length).toBe(500);
  });

  it('unseal() runs once per source', async () => {
    const sealed = await sealModelBytes(new Uint8Array(5), { key });
    const reader = await openSealedModel(byteSourceFromBytes(sealed));
    await collect(reader.unseal(key));
    await expect(collect(reader.unseal(key))).rejects.toBeInstanceOf(TresorError);
  });
});

describe('authenticate()', () => {
  it('returns the chunk AAD, nonce prefix and first chunk offset once the key and header check out', async () => {
    const sealed = await sealModelBytes(new Uint8Array(100), { key, chunkSize: 40 });
    const reader = await openSealedModel(byteSourceFromBytes(sealed));
    const headerBytes = sealed.subarray(0, 13 + new DataView(sealed.buffer).getUint32(9));
    const opened = await reader.authenticate(key);
    expect(opened.chunksOffset).toBe(headerBytes.length + 32);
    expect(Buffer.from(opened.aad).equals(createHash('sha256').update(headerBytes).digest())).toBe(true);
    expect(Buffer.from(opened.noncePrefix).toString('hex')).toBe(reader.header.noncePrefix);
    expect(opened.chunkKey.extractable).toBe(false);
    // Once per source, shared with unseal().
    await expect(reader.authenticate(key)).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
    await expect(collect(reader.unseal(key))).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
  });

  it('refuses the wrong key, and a file of the wrong size, before a chunk is read', async () => {
    const sealed = await sealModelBytes(new Uint8Array(100), { key, chunkSize: 40 });
    const wrongKey = await openSealedModel(byteSourceFromBytes(sealed));
    await expect(wrongKey.authenticate(keys[1]!)).rejects.toMatchObject({ code: 'SEALED_MODEL_WRONG_KEY' });
    const cut = await openSealedModel(byteSourceFromBytes(sealed.subarray(0, sealed.length - 1)));
    await expect(cut.authenticate(key)).rejects.toMatchObject({ code: 'SEALED_MODEL_TRUNCATED' });
  });
});
