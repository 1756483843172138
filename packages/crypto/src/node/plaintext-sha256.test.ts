import { createHash, randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import {
  Sha256Worker,
  WORKER_MIN_BYTES,
  closeHasher,
  digestOf,
  plaintextSha256,
  sharedBytes,
} from './plaintext-sha256.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

describe('Sha256Worker', () => {
  const worker = new Sha256Worker();
  afterAll(async () => {
    await worker.close();
  });

  it('hashes the FIPS 180-2 "abc" vector fed in two blocks of shared memory', async () => {
    const shared = sharedBytes(3);
    shared.set(new TextEncoder().encode('abc'));
    await Promise.all([worker.update(shared.subarray(0, 1)), worker.update(shared.subarray(1))]);
    expect(hex(await worker.digest())).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });

  it('agrees with node:crypto for any split of any input, with several blocks in flight', async () => {
    const hasher = new Sha256Worker();
    try {
      // One worker per run would dominate the time: one worker hashes the concatenation of all runs.
      const reference = createHash('sha256');
      await fc.assert(
        fc.asyncProperty(
          fc.uint8Array({ maxLength: 2000 }),
          fc.array(fc.nat(), { maxLength: 6 }),
          async (bytes, cuts) => {
            const shared = sharedBytes(bytes.length);
            shared.set(bytes);
            const points = [
              0,
              ...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b),
              bytes.length,
            ];
            const updates = points.slice(1).map((end, i) => hasher.update(shared.subarray(points[i], end)));
            reference.update(bytes);
            await Promise.all(updates);
          },
        ),
        { numRuns: 1000 },
      );
      expect(hex(await hasher.digest())).toBe(reference.digest('hex'));
    } finally {
      await hasher.close();
    }
  });

  it('refuses memory it would have to copy, and fails every request once closed', async () => {
    const hasher = new Sha256Worker();
    await expect(hasher.update(new Uint8Array(4))).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
    await hasher.close();
    await hasher.close();
    await expect(hasher.update(sharedBytes(4))).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
    await expect(hasher.digest()).rejects.toMatchObject({ code: 'INTERNAL_ERROR' });
  });
});

describe('plaintextSha256', () => {
  it('hashes inline below the worker threshold or when told to, and on a worker when told to', async () => {
    const bytes = randomBytes(1000);
    const expected = createHash('sha256').update(bytes).digest('hex');
    const choices = [
      plaintextSha256(WORKER_MIN_BYTES - 1, undefined),
      plaintextSha256(WORKER_MIN_BYTES * 4, false),
      plaintextSha256(10, true),
    ];
    expect(choices.map((c) => c.thread)).toEqual(['inline', 'inline', 'worker']);
    const auto = plaintextSha256(WORKER_MIN_BYTES, undefined);
    expect(auto.thread).toBe(availableParallelism() > 1 ? 'worker' : 'inline');
    choices.push(auto);
    for (const hasher of choices) {
      try {
        if (hasher.thread === 'inline') {
          hasher.hash.update(bytes);
        } else {
          const shared = sharedBytes(bytes.length);
          shared.set(bytes);
          await hasher.worker.update(shared);
        }
        expect(hex(await digestOf(hasher))).toBe(expected);
      } finally {
        await closeHasher(hasher);
      }
    }
  });
});
