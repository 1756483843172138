import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TresorError, type ErrorCode } from '@tresor/protocol';
import { ModelKey } from './sealed-model-key.js';
import { sealModelBytes } from './sealed-model-seal.js';
import { byteSourceFromBytes, byteSourceFromChunks } from './sealed-model-source.js';
import { openSealedModel } from './sealed-model-unseal.js';

const key = await ModelKey.import(new Uint8Array(32).fill(1));
const otherKey = await ModelKey.import(new Uint8Array(32).fill(2));

interface Outcome {
  /** Error code, or 'OK' when the unseal completed. */
  readonly code: ErrorCode | 'OK';
  /** Everything the unseal stream emitted before it stopped. */
  readonly emitted: Buffer;
}

/**
 * Unseals and records what the stream emitted. `sized` sources know their length (a file),
 * unsized ones (a network stream) must discover truncation chunk by chunk.
 */
async function unseal(bytes: Uint8Array, sized: boolean, withKey = key): Promise<Outcome> {
  const parts: Uint8Array[] = [];
  try {
    const reader = await openSealedModel(sized ? byteSourceFromBytes(bytes) : byteSourceFromChunks([bytes]));
    for await (const part of reader.unseal(withKey)) parts.push(part);
    return { code: 'OK', emitted: Buffer.concat(parts) };
  } catch (err) {
    if (!(err instanceof TresorError)) throw err;
    return { code: err.code, emitted: Buffer.concat(parts) };
  }
}

/** Where the parts of a sealed file lie, from its own header length. */
function layout(sealed: Uint8Array, chunkSize: number, plaintextLength: number) {
  const jsonLength = new DataView(sealed.buffer, sealed.byteOffset).getUint32(9);
  const json = new TextDecoder().decode(sealed.subarray(13, 13 + jsonLength));
  const fingerprintStart = 13 + json.indexOf('"keyFingerprint":"') + '"keyFingerprint":"'.length;
  const chunksStart = 13 + jsonLength + 32;
  return {
    jsonEnd: 13 + jsonLength,
    chunksStart,
    fingerprint: [fingerprintStart, fingerprintStart + 32] as const,
    /** Index of the chunk holding byte `position` (a position inside the chunks). */
    chunkAt: (position: number): number => Math.floor((position - chunksStart) / (chunkSize + 16)),
    chunkBounds: (index: number): [number, number] => {
      const start = chunksStart + index * (chunkSize + 16);
      return [start, start + Math.min(chunkSize, plaintextLength - index * chunkSize) + 16];
    },
  };
}

/** The codes a single-bit flip at `position` may produce, by the region it hits. */
function codesForFlip(position: number, at: ReturnType<typeof layout>): readonly ErrorCode[] {
  if (position < 8) return ['SEALED_MODEL_MALFORMED'];
  if (position === 8) return ['SEALED_MODEL_VERSION_UNSUPPORTED'];
  if (position < 13) return ['SEALED_MODEL_MALFORMED', 'SEALED_MODEL_TRUNCATED'];
  if (position >= at.fingerprint[0] && position < at.fingerprint[1]) {
    // A fingerprint hit is indistinguishable from a wrong key (docs/crypto.md explains why).
    return ['SEALED_MODEL_MALFORMED', 'SEALED_MODEL_WRONG_KEY'];
  }
  if (position < at.jsonEnd) {
    return ['SEALED_MODEL_MALFORMED', 'SEALED_MODEL_ALGORITHM_UNSUPPORTED', 'SEALED_MODEL_TAMPERED'];
  }
  return ['SEALED_MODEL_TAMPERED'];
}

const flipBit = (bytes: Uint8Array, bit: number): Uint8Array => {
  const copy = new Uint8Array(bytes);
  copy[bit >> 3]! ^= 1 << (bit & 7);
  return copy;
};

/** Emitted plaintext must be a prefix of the original that stops before chunk `failedChunk`. */
function expectReleasedOnlyBefore(
  outcome: Outcome,
  plaintext: Uint8Array,
  failedChunk: number,
  chunkSize: number,
) {
  expect(outcome.emitted.length).toBeLessThanOrEqual(Math.max(0, failedChunk) * chunkSize);
  expect(outcome.emitted.equals(Buffer.from(plaintext.subarray(0, outcome.emitted.length)))).toBe(true);
}

const plaintext = Uint8Array.from({ length: 40 }, (_, i) => 0x41 + (i % 26));
const chunkSize = 16;
const sealed = await sealModelBytes(plaintext, { key, chunkSize, metadata: { name: 'flip' } });
const at = layout(sealed, chunkSize, plaintext.length);

describe('every single-bit flip is refused with the code of the region it hits', () => {
  it(`all ${String(sealed.length * 8)} bit positions of a 3-chunk file, read with a known size`, async () => {
    const seen = new Map<ErrorCode | 'OK', number>();
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const position = bit >> 3;
      const outcome = await unseal(flipBit(sealed, bit), true);
      seen.set(outcome.code, (seen.get(outcome.code) ?? 0) + 1);
      expect(codesForFlip(position, at), `bit ${String(bit)}: ${outcome.code}`).toContain(outcome.code);
      const failed = position >= at.chunksStart ? at.chunkAt(position) : 0;
      expectReleasedOnlyBefore(outcome, plaintext, failed, chunkSize);
    }
    expect(seen.get('OK')).toBeUndefined();
    for (const code of [
      'SEALED_MODEL_MALFORMED',
      'SEALED_MODEL_VERSION_UNSUPPORTED',
      'SEALED_MODEL_ALGORITHM_UNSUPPORTED',
      'SEALED_MODEL_WRONG_KEY',
    ] as const) {
      expect(seen.get(code), code).toBeGreaterThan(0);
    }
    // MAC and chunks (all TAMPERED) plus the JSON flips that stay well-formed.
    expect(seen.get('SEALED_MODEL_TAMPERED')).toBeGreaterThan((sealed.length - at.jsonEnd) * 8);
  });

  it('random files, chunk sizes and bit positions, streamed without a known size', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 120 }),
        fc.integer({ min: 1, max: 32 }),
        fc.nat(),
        async (size, chunk, bitSeed) => {
          const original = Uint8Array.from({ length: size }, (_, i) => (i * 7 + size) & 0xff);
          const file = await sealModelBytes(original, { key, chunkSize: chunk });
          const where = layout(file, chunk, size);
          const bit = bitSeed % (file.length * 8);
          const position = bit >> 3;
          const outcome = await unseal(flipBit(file, bit), false);
          expect(codesForFlip(position, where)).toContain(outcome.code);
          const failed = position >= where.chunksStart ? where.chunkAt(position) : 0;
          expectReleasedOnlyBefore(outcome, original, failed, chunk);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('truncation at any point', () => {
  for (const sized of [true, false]) {
    it(`every cut is refused (${sized ? 'known size' : 'streamed'}); only verified chunks before the cut are released`, async () => {
      for (let cut = 0; cut < sealed.length; cut++) {
        const outcome = await unseal(sealed.subarray(0, cut), sized);
        expect(outcome.code, `cut at ${String(cut)}`).toBe(
          cut < 8 ? 'SEALED_MODEL_MALFORMED' : 'SEALED_MODEL_TRUNCATED',
        );
        const failed = cut >= at.chunksStart ? at.chunkAt(cut) : 0;
        expectReleasedOnlyBefore(outcome, plaintext, sized ? 0 : failed, chunkSize);
      }
    });
  }

  it('a cut exactly at a chunk boundary is still TRUNCATED (the last-chunk flag is missing)', async () => {
    for (const index of [1, 2]) {
      const outcome = await unseal(sealed.subarray(0, at.chunkBounds(index)[0]), false);
      expect(outcome.code).toBe('SEALED_MODEL_TRUNCATED');
      expectReleasedOnlyBefore(outcome, plaintext, index, chunkSize);
    }
  });
});

describe('moved, repeated and foreign chunks and headers', () => {
  const chunk = (i: number): Uint8Array => sealed.subarray(...at.chunkBounds(i));
  const head = sealed.subarray(0, at.chunksStart);
  const rebuild = (...parts: Uint8Array[]): Uint8Array => Buffer.concat(parts);

  for (const sized of [true, false]) {
    const mode = sized ? 'known size' : 'streamed';

    it(`swapping two chunks is TAMPERED at the first moved chunk (${mode})`, async () => {
      const outcome = await unseal(rebuild(head, chunk(1), chunk(0), chunk(2)), sized);
      expect(outcome.code).toBe('SEALED_MODEL_TAMPERED');
      expectReleasedOnlyBefore(outcome, plaintext, 0, chunkSize);
    });

    it(`a duplicated chunk is refused, in place of another or inserted (${mode})`, async () => {
      const replaced = await unseal(rebuild(head, chunk(0), chunk(0), chunk(2)), sized);
      expect(replaced.code).toBe('SEALED_MODEL_TAMPERED');
      expectReleasedOnlyBefore(replaced, plaintext, 1, chunkSize);
      const inserted = await unseal(rebuild(head, chunk(0), chunk(0), chunk(1), chunk(2)), sized);
      expect(inserted.code).toBe('SEALED_MODEL_TAMPERED');
      expectReleasedOnlyBefore(inserted, plaintext, 1, chunkSize);
    });

    it(`a dropped middle chunk is refused (${mode})`, async () => {
      // chunk(2) is shorter, so dropping chunk(1) also shortens the file.
      const outcome = await unseal(rebuild(head, chunk(0), chunk(2)), sized);
      expect(['SEALED_MODEL_TAMPERED', 'SEALED_MODEL_TRUNCATED']).toContain(outcome.code);
      expectReleasedOnlyBefore(outcome, plaintext, 1, chunkSize);
    });

    it(`bytes appended after the final chunk are TAMPERED (${mode})`, async () => {
      const outcome = await unseal(rebuild(sealed, Uint8Array.of(0)), sized);
      expect(outcome.code).toBe('SEALED_MODEL_TAMPERED');
      const extended = await unseal(rebuild(sealed, chunk(2)), sized);
      expect(extended.code).toBe('SEALED_MODEL_TAMPERED');
    });

    it(`a header swapped in from another file sealed with the same key is TAMPERED at chunk 0 (${mode})`, async () => {
      const same = await sealModelBytes(plaintext, { key, chunkSize, metadata: { name: 'flip' } });
      const sameAt = layout(same, chunkSize, plaintext.length);
      // Same key, same length and metadata: the header MAC verifies, the chunks must not.
      const swapped = rebuild(same.subarray(0, sameAt.chunksStart), sealed.subarray(at.chunksStart));
      const outcome = await unseal(swapped, sized);
      expect(outcome.code).toBe('SEALED_MODEL_TAMPERED');
      expect(outcome.emitted.length).toBe(0);
    });
  }

  it('a header swapped in from a file sealed with another key is WRONG_KEY for the chunks key, TAMPERED for its own', async () => {
    const foreign = await sealModelBytes(plaintext, { key: otherKey, chunkSize, metadata: { name: 'flip' } });
    const foreignAt = layout(foreign, chunkSize, plaintext.length);
    const swapped = rebuild(foreign.subarray(0, foreignAt.chunksStart), sealed.subarray(at.chunksStart));
    expect((await unseal(swapped, true, key)).code).toBe('SEALED_MODEL_WRONG_KEY');
    const withHeaderKey = await unseal(swapped, true, otherKey);
    expect(withHeaderKey.code).toBe('SEALED_MODEL_TAMPERED');
    expect(withHeaderKey.emitted.length).toBe(0);
  });

  it('chunks spliced from two files of the same key are refused at the first foreign chunk', async () => {
    const other = await sealModelBytes(plaintext, { key, chunkSize, metadata: { name: 'flip' } });
    const otherAt = layout(other, chunkSize, plaintext.length);
    const spliced = rebuild(head, chunk(0), other.subarray(...otherAt.chunkBounds(1)), chunk(2));
    const outcome = await unseal(spliced, false);
    expect(outcome.code).toBe('SEALED_MODEL_TAMPERED');
    expectReleasedOnlyBefore(outcome, plaintext, 1, chunkSize);
  });
});
