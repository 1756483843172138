import fc from 'fast-check';
import { isErrorCode, isTresorError } from '@tresor/protocol';
import { describe, expect, it } from 'vitest';
import { readTestdataJson } from '../../../test/support/testdata.js';
import { concatBytes, hexToBytes } from './bytes.js';
import { beginChunkedOhttpGatewayExchange } from './chunked-ohttp.js';
import { acceptChunkedOhttpRequest, createChunkedOhttpClient } from './chunked-ohttp-streams.js';
import { HpkeKeyPair } from './hpke.js';
import { createGatewayKey, decodeKeyConfig, gatewayKeysById, type OhttpGatewayKeys } from './ohttp-keys.js';
import { readVarint } from './varint.js';

/**
 * Tampering with chunked OHTTP streams: every change must be refused with a specific code, and
 * no plaintext of the chunk that failed (or of any later one) may come out.
 */

type Code =
  | 'OHTTP_DECRYPT_FAILED'
  | 'OHTTP_STREAM_TRUNCATED'
  | 'OHTTP_CHUNK_TOO_LARGE'
  | 'OHTTP_KEY_ID_UNKNOWN'
  | 'HPKE_SUITE_UNSUPPORTED';

/** What a tampered message must do: fail with one of `codes`, releasing only chunks before `affected`. */
interface Expectation {
  readonly codes: readonly Code[];
  readonly affected: number;
}

/** The chunk layout of an encapsulated message, parsed independently of the code under test. */
interface Layout {
  readonly prefix: Uint8Array;
  /** Wire form of each chunk, length prefix included; the last one is the final chunk. */
  readonly chunks: readonly Uint8Array[];
}

function layoutOf(message: Uint8Array, prefixLength: number): Layout {
  const chunks: Uint8Array[] = [];
  let offset = prefixLength;
  for (;;) {
    const { value, next } = readVarint(message, offset);
    if (value === 0) {
      chunks.push(message.subarray(offset));
      return { prefix: message.subarray(0, prefixLength), chunks };
    }
    chunks.push(message.subarray(offset, next + value));
    offset = next + value;
  }
}

function streamOf(pieces: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(piece);
      controller.close();
    },
  });
}

/** Splits `bytes` at the given cut points, as a network might. */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let last = 0;
  for (const p of [...points, bytes.length]) {
    out.push(bytes.subarray(last, p));
    last = p;
  }
  return out;
}

/** Reads until the stream ends or errors; returns what came out and the error. */
async function drain(stream: ReadableStream<Uint8Array>): Promise<{ out: Uint8Array[]; error: unknown }> {
  const out: Uint8Array[] = [];
  const reader = stream.getReader();
  try {
    for (let r = await reader.read(); !r.done; r = await reader.read()) out.push(r.value);
    return { out, error: undefined };
  } catch (error) {
    return { out, error };
  }
}

function expectRefusal(error: unknown, expected: Expectation, what: string): void {
  if (!isTresorError(error)) throw new Error(`${what}: expected a TresorError, got ${String(error)}`);
  expect(isErrorCode(error.code)).toBe(true);
  expect(expected.codes, `${what}: code ${error.code}`).toContain(error.code);
}

/** Feeds a tampered request to the gateway; returns the error and the plaintext chunks released. */
async function gatewayReads(
  keys: OhttpGatewayKeys,
  tampered: Uint8Array,
  cuts: readonly number[],
): Promise<{ out: Uint8Array[]; error: unknown }> {
  try {
    const accepted = await acceptChunkedOhttpRequest(keys, streamOf(split(tampered, cuts)));
    return await drain(accepted.request);
  } catch (error) {
    return { out: [], error };
  }
}

const CHUNK_CODES: Code[] = ['OHTTP_DECRYPT_FAILED', 'OHTTP_STREAM_TRUNCATED', 'OHTTP_CHUNK_TOO_LARGE'];

/** Expected outcome of flipping bit `bit` of a message with `layout` (prefix = header or nonce). */
function flipExpectation(layout: Layout, bit: number, isRequest: boolean): Expectation {
  const byte = bit >> 3;
  if (byte < layout.prefix.length) {
    if (!isRequest) return { codes: ['OHTTP_DECRYPT_FAILED'], affected: 0 };
    if (byte < 3) return { codes: ['OHTTP_KEY_ID_UNKNOWN'], affected: 0 };
    if (byte < 7) return { codes: ['HPKE_SUITE_UNSUPPORTED'], affected: 0 };
    return { codes: ['OHTTP_DECRYPT_FAILED'], affected: 0 };
  }
  let start = layout.prefix.length;
  for (const [i, chunk] of layout.chunks.entries()) {
    if (byte < start + chunk.length) {
      const lengthBytes = 1 << (chunk[0]! >> 6);
      // A changed length re-frames the stream: too large, never completed, or not authentic.
      const inLength = byte < start + lengthBytes;
      return { codes: inLength ? CHUNK_CODES : ['OHTTP_DECRYPT_FAILED'], affected: i };
    }
    start += chunk.length;
  }
  throw new Error('bit beyond the message');
}

/** Expected outcome of keeping only the first `length` bytes. */
function truncationExpectation(layout: Layout, length: number): Expectation {
  if (length <= layout.prefix.length) return { codes: ['OHTTP_STREAM_TRUNCATED'], affected: 0 };
  let end = layout.prefix.length;
  const finalIndex = layout.chunks.length - 1;
  for (const [i, chunk] of layout.chunks.entries()) {
    if (i === finalIndex) {
      // The final chunk runs to the end: once its 0x00 arrived, a cut is an authentication failure.
      return { codes: ['OHTTP_DECRYPT_FAILED'], affected: finalIndex };
    }
    end += chunk.length;
    if (length < end) return { codes: ['OHTTP_STREAM_TRUNCATED'], affected: i };
    if (length === end) return { codes: ['OHTTP_STREAM_TRUNCATED'], affected: i + 1 };
  }
  throw new Error('unreachable');
}

type Mutation =
  | { readonly kind: 'flip'; readonly bit: number }
  | { readonly kind: 'truncate'; readonly length: number }
  | { readonly kind: 'swap'; readonly i: number; readonly j: number }
  | { readonly kind: 'duplicate'; readonly i: number }
  | { readonly kind: 'drop'; readonly i: number };

function mutation(): fc.Arbitrary<Mutation> {
  return fc.oneof(
    fc.nat().map((bit) => ({ kind: 'flip' as const, bit })),
    fc.nat().map((length) => ({ kind: 'truncate' as const, length })),
    fc.tuple(fc.nat(), fc.nat()).map(([i, j]) => ({ kind: 'swap' as const, i, j })),
    fc.nat().map((i) => ({ kind: 'duplicate' as const, i })),
    fc.nat().map((i) => ({ kind: 'drop' as const, i })),
  );
}

/** Applies `m` (indices taken modulo the message) and says what must happen. */
function apply(
  message: Uint8Array,
  layout: Layout,
  m: Mutation,
  isRequest: boolean,
): { tampered: Uint8Array; expected: Expectation } | undefined {
  const n = layout.chunks.length; // the final chunk is index n - 1
  const rebuild = (chunks: readonly Uint8Array[]): Uint8Array => concatBytes(layout.prefix, ...chunks);
  switch (m.kind) {
    case 'flip': {
      const bit = m.bit % (message.length * 8);
      const tampered = message.slice();
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      return { tampered, expected: flipExpectation(layout, bit, isRequest) };
    }
    case 'truncate': {
      const length = m.length % message.length;
      return { tampered: message.slice(0, length), expected: truncationExpectation(layout, length) };
    }
    case 'swap': {
      const i = Math.min(m.i % n, m.j % n);
      const j = Math.max(m.i % n, m.j % n);
      if (i === j) return undefined;
      const chunks = [...layout.chunks];
      [chunks[i], chunks[j]] = [chunks[j]!, chunks[i]!];
      return { tampered: rebuild(chunks), expected: { codes: ['OHTTP_DECRYPT_FAILED'], affected: i } };
    }
    case 'duplicate': {
      const i = m.i % n;
      const chunks = [...layout.chunks];
      chunks.splice(i + 1, 0, layout.chunks[i]!);
      // A copy of the final chunk is swallowed by it (it runs to the end) and breaks its tag.
      const affected = i === n - 1 ? i : i + 1;
      return { tampered: rebuild(chunks), expected: { codes: ['OHTTP_DECRYPT_FAILED'], affected } };
    }
    case 'drop': {
      const i = m.i % n;
      const chunks = layout.chunks.filter((_, k) => k !== i);
      const codes: Code[] = i === n - 1 ? ['OHTTP_STREAM_TRUNCATED'] : ['OHTTP_DECRYPT_FAILED'];
      return { tampered: rebuild(chunks), expected: { codes, affected: i } };
    }
  }
}

/** The plaintext of each non-final chunk a sealing stream makes of `pieces`. */
function plaintextChunks(pieces: readonly Uint8Array[], chunkSize: number): Uint8Array[] {
  return pieces.flatMap((p) => {
    const out: Uint8Array[] = [];
    for (let o = 0; o < p.length; o += chunkSize) out.push(p.subarray(o, o + chunkSize));
    return out;
  });
}

async function encapsulate(
  transform: TransformStream<Uint8Array, Uint8Array>,
  pieces: readonly Uint8Array[],
): Promise<Uint8Array> {
  const [, { out, error }] = await Promise.all([
    streamOf(pieces).pipeTo(transform.writable),
    drain(transform.readable),
  ]);
  expect(error).toBeUndefined();
  return concatBytes(...out);
}

const body = fc.array(fc.uint8Array({ minLength: 1, maxLength: 40 }), { maxLength: 5 });
const cuts = fc.array(fc.nat(), { maxLength: 4 });

describe('tampered chunked OHTTP requests (gateway side)', () => {
  it('every mutation is refused with its code; exactly the chunks before it are released', async () => {
    const key = createGatewayKey(1, await HpkeKeyPair.generate());
    const keys = gatewayKeysById([key]);
    await fc.assert(
      fc.asyncProperty(
        body,
        fc.integer({ min: 1, max: 16 }),
        mutation(),
        cuts,
        async (pieces, chunkSize, m, at) => {
          const client = await createChunkedOhttpClient(key.config, { chunkSize });
          const message = await encapsulate(client.requestEncapsulator, pieces);
          const layout = layoutOf(message, 7 + 32);
          const applied = apply(message, layout, m, true);
          if (applied === undefined) return;
          const { out, error } = await gatewayReads(keys, applied.tampered, at);
          expectRefusal(error, applied.expected, m.kind);
          expect(out).toEqual(plaintextChunks(pieces, chunkSize).slice(0, applied.expected.affected));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('tampered chunked OHTTP responses (client side)', () => {
  it('every mutation is refused with its code; nothing from the failed chunk on is released', async () => {
    const key = createGatewayKey(1, await HpkeKeyPair.generate());
    const keys = gatewayKeysById([key]);
    await fc.assert(
      fc.asyncProperty(
        body,
        fc.integer({ min: 1, max: 16 }),
        mutation(),
        cuts,
        async (pieces, chunkSize, m, at) => {
          const client = await createChunkedOhttpClient(key.config);
          const request = await encapsulate(client.requestEncapsulator, []);
          const gateway = await beginChunkedOhttpGatewayExchange(keys, request.subarray(0, 7 + 32));
          const { responseNonce, responseSealer } = await gateway.beginResponse();
          const sealed: Uint8Array[] = [responseNonce];
          for (const chunk of plaintextChunks(pieces, chunkSize))
            sealed.push(await responseSealer.sealChunk(chunk));
          sealed.push(await responseSealer.sealFinalChunk());
          const message = concatBytes(...sealed);
          const layout = layoutOf(message, 32);
          const applied = apply(message, layout, m, false);
          if (applied === undefined) return;
          const decapsulator = client.responseDecapsulator;
          const [, { out, error }] = await Promise.all([
            streamOf(split(applied.tampered, at))
              .pipeTo(decapsulator.writable)
              .catch(() => undefined),
            drain(decapsulator.readable),
          ]);
          expectRefusal(error, applied.expected, m.kind);
          // A transform stream drops what it queued when it errors, so fewer chunks may arrive.
          const released = plaintextChunks(pieces, chunkSize).slice(0, applied.expected.affected);
          expect(out).toEqual(released.slice(0, out.length));
        },
      ),
      { numRuns: 1000 },
    );
  });
});

describe('every single-bit flip of the draft-08 example', () => {
  const example = readTestdataJson('protocol/ohttp/chunked-ohttp-draft08-example.json') as Record<
    string,
    string
  >;
  const h = (name: string): Uint8Array => hexToBytes(example[name]!);

  it('request: each of the 920 flips is refused with the code of what it hits', async () => {
    const config = decodeKeyConfig(h('key_config'));
    const keyPair = await HpkeKeyPair.fromPrivateKey(0x20, h('gateway_private_key'));
    const keys: OhttpGatewayKeys = new Map([[1, { config, keyPair }]]);
    const message = h('encapsulated_request');
    const layout = layoutOf(message, 39);
    const plaintexts = [h('request_bhttp').subarray(0, 12), h('request_bhttp').subarray(12)];
    expect(message.length * 8).toBe(920);
    for (let bit = 0; bit < message.length * 8; bit++) {
      const expected = flipExpectation(layout, bit, true);
      const tampered = message.slice();
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      const { out, error } = await gatewayReads(keys, tampered, []);
      expectRefusal(error, expected, `bit ${bit}`);
      expect(out, `bit ${bit}`).toEqual(plaintexts.slice(0, expected.affected));
    }
  });

  it('response: each of the 560 flips is refused with the code of what it hits', async () => {
    const config = decodeKeyConfig(h('key_config'));
    const ephemeral = await HpkeKeyPair.fromPrivateKey(0x20, h('client_ephemeral_private_key'));
    const message = h('encapsulated_response');
    const layout = layoutOf(message, 16);
    expect(message.length * 8).toBe(560);
    for (let bit = 0; bit < message.length * 8; bit++) {
      const expected = flipExpectation(layout, bit, false);
      const client = await createChunkedOhttpClient(config, { testEphemeralKey: ephemeral });
      const tampered = message.slice();
      tampered[bit >> 3]! ^= 1 << (bit & 7);
      const decapsulator = client.responseDecapsulator;
      const [, { out, error }] = await Promise.all([
        streamOf([tampered])
          .pipeTo(decapsulator.writable)
          .catch(() => undefined),
        drain(decapsulator.readable),
      ]);
      expectRefusal(error, expected, `bit ${bit}`);
      expect(out.length, `bit ${bit}`).toBeLessThanOrEqual(expected.affected);
      expect(out, `bit ${bit}`).toEqual(
        [new Uint8Array([1]), new Uint8Array([0x40, 0xc8])].slice(0, out.length),
      );
    }
  });
});
