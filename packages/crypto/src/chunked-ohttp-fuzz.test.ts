import fc from 'fast-check';
import { isErrorCode, isTresorError } from '@tresor/protocol';
import { describe, expect, it } from 'vitest';
import { concatBytes } from './bytes.js';
import { beginChunkedOhttpClientExchange, beginChunkedOhttpGatewayExchange } from './chunked-ohttp.js';
import { ByteQueue, ChunkFrameReader } from './chunked-ohttp-framing.js';
import { acceptChunkedOhttpRequest, createChunkedOhttpClient } from './chunked-ohttp-streams.js';
import { HpkeKeyPair } from './hpke.js';
import { createGatewayKey, gatewayKeysById } from './ohttp-keys.js';

/**
 * Malformed input for every chunked OHTTP decoder: the only acceptable failure is a TresorError
 * with a catalogue code, and every stream must settle (a hang fails the test by timeout).
 */

function expectCatalogued(err: unknown): void {
  if (!isTresorError(err)) throw new Error(`expected a TresorError, got ${String(err)}`, { cause: err });
  expect(isErrorCode(err.code)).toBe(true);
}

function streamOf(pieces: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(piece);
      controller.close();
    },
  });
}

async function settle(stream: ReadableStream<Uint8Array>): Promise<void> {
  const reader = stream.getReader();
  try {
    while (!(await reader.read()).done);
  } catch (err) {
    expectCatalogued(err);
  }
}

function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  return [...points, bytes.length].map((p, i, all) => bytes.subarray(i === 0 ? 0 : all[i - 1]!, p));
}

/** Random bytes, a valid prefix with random bytes after it, or a valid message with random damage. */
function malformed(valid: Uint8Array, prefixLength: number): fc.Arbitrary<Uint8Array> {
  const damaged = fc
    .tuple(
      fc.array(fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 1, max: 255 })), {
        minLength: 1,
        maxLength: 4,
      }),
      fc.uint8Array({ maxLength: 20 }),
      fc.nat({ max: valid.length }),
    )
    .map(([flips, insert, at]) => {
      const copy = valid.slice();
      for (const [i, x] of flips) copy[i]! ^= x;
      return concatBytes(copy.subarray(0, at), insert, copy.subarray(at));
    });
  const tail = fc.uint8Array({ maxLength: 200 }).map((t) => concatBytes(valid.subarray(0, prefixLength), t));
  return fc.oneof(fc.uint8Array({ maxLength: 200 }), tail, damaged);
}

describe('chunked OHTTP decoders on malformed input', () => {
  it('gateway request streams fail only with catalogued TresorErrors', async () => {
    const key = createGatewayKey(1, await HpkeKeyPair.generate());
    const keys = gatewayKeysById([key]);
    const client = await beginChunkedOhttpClientExchange(key.config);
    const valid = concatBytes(
      client.header,
      await client.requestSealer.sealChunk(new Uint8Array(30).fill(1)),
      await client.requestSealer.sealChunk(new Uint8Array(70).fill(2)),
      await client.requestSealer.sealFinalChunk(new Uint8Array(5)),
    );
    await fc.assert(
      fc.asyncProperty(
        malformed(valid, 39),
        fc.array(fc.nat(), { maxLength: 5 }),
        fc.integer({ min: 1, max: 200 }),
        async (bytes, cuts, maxChunkSize) => {
          try {
            const accepted = await acceptChunkedOhttpRequest(keys, streamOf(split(bytes, cuts)), {
              maxChunkSize,
            });
            await settle(accepted.request);
          } catch (err) {
            expectCatalogued(err);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('client response streams fail only with catalogued TresorErrors', async () => {
    const key = createGatewayKey(1, await HpkeKeyPair.generate());
    const keys = gatewayKeysById([key]);
    const probe = await beginChunkedOhttpClientExchange(key.config);
    const gateway = await beginChunkedOhttpGatewayExchange(keys, probe.header);
    const { responseNonce, responseSealer } = await gateway.beginResponse();
    const valid = concatBytes(
      responseNonce,
      await responseSealer.sealChunk(new Uint8Array(10)),
      await responseSealer.sealFinalChunk(new Uint8Array(3)),
    );
    await fc.assert(
      fc.asyncProperty(
        malformed(valid, 32),
        fc.array(fc.nat(), { maxLength: 5 }),
        fc.integer({ min: 1, max: 200 }),
        async (bytes, cuts, maxChunkSize) => {
          const client = await createChunkedOhttpClient(key.config, { maxChunkSize });
          const transform = client.responseDecapsulator;
          const written = streamOf(split(bytes, cuts)).pipeTo(transform.writable).catch(expectCatalogued);
          await settle(transform.readable);
          await written;
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('chunk openers and the frame reader fail only with catalogued TresorErrors', async () => {
    const key = createGatewayKey(1, await HpkeKeyPair.generate());
    const client = await beginChunkedOhttpClientExchange(key.config);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.uint8Array({ maxLength: 80 }), fc.boolean()), { maxLength: 4 }),
        fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }),
        fc.integer({ min: 1, max: 100 }),
        async (chunks, pieces, max) => {
          const responseOpener = await client.openResponse(new Uint8Array(32), { maxChunkSize: max });
          for (const [chunk, final] of chunks) {
            await (final ? responseOpener.openFinalChunk(chunk) : responseOpener.openChunk(chunk)).catch(
              expectCatalogued,
            );
          }
          const frames = new ChunkFrameReader(new ByteQueue(), max + 16);
          try {
            for (const piece of pieces) {
              frames.push(piece);
              while (frames.next() !== undefined);
            }
            frames.finish();
          } catch (err) {
            expectCatalogued(err);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
