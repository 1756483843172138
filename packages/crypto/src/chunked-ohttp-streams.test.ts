import fc from 'fast-check';
import { isTresorError } from '@tresor/protocol';
import { describe, expect, it } from 'vitest';
import { concatBytes } from './bytes.js';
import { acceptChunkedOhttpRequest, createChunkedOhttpClient } from './chunked-ohttp-streams.js';
import { HPKE_KEM, HpkeKeyPair } from './hpke.js';
import { createGatewayKey, gatewayKeysById } from './ohttp-keys.js';
import { encodeVarint } from './varint.js';

function streamOf(pieces: readonly Uint8Array[], close = true): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(piece);
      if (close) controller.close();
    },
  });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  const reader = stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) out.push(r.value);
  return out;
}

async function through(
  transform: TransformStream<Uint8Array, Uint8Array>,
  pieces: readonly Uint8Array[],
): Promise<Uint8Array[]> {
  const [, out] = await Promise.all([
    streamOf(pieces).pipeTo(transform.writable),
    readAll(transform.readable),
  ]);
  return out;
}

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

async function codeOf(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
    return 'ok';
  } catch (err) {
    if (!isTresorError(err)) throw err;
    return err.code;
  }
}

describe('chunked OHTTP streams round trip', () => {
  it('carries random bodies through random chunk sizes and random network splits, both ways', async () => {
    const key = createGatewayKey(1, await HpkeKeyPair.generate());
    const keys = gatewayKeysById([key]);
    const pieces = fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 5 });
    const cuts = fc.array(fc.nat(), { maxLength: 6 });
    const chunkSize = fc.oneof(fc.integer({ min: 5, max: 64 }), fc.constant(undefined));
    await fc.assert(
      fc.asyncProperty(pieces, pieces, chunkSize, cuts, cuts, async (req, res, size, reqCuts, resCuts) => {
        const options = size === undefined ? {} : { chunkSize: size };
        const client = await createChunkedOhttpClient(key.config, options);
        const encapsulated = concatBytes(...(await through(client.requestEncapsulator, req)));
        const nonEmpty = req.filter((p) => p.length > 0);
        const chunks = nonEmpty.reduce((n, p) => n + Math.ceil(p.length / (size ?? 16384)), 0);
        // header, then per chunk a 1- or 2-byte length and a 16-byte tag, then 0x00 and a tag.
        const framing = encapsulated.length - 39 - concatBytes(...req).length - 17;
        expect(framing).toBeGreaterThanOrEqual(chunks * 17);
        expect(framing).toBeLessThanOrEqual(chunks * 18);

        const accepted = await acceptChunkedOhttpRequest(keys, streamOf(split(encapsulated, reqCuts)));
        expect(accepted.keyId).toBe(1);
        expect(concatBytes(...(await readAll(accepted.request)))).toEqual(concatBytes(...req));

        const sealed = concatBytes(...(await through(accepted.createResponseEncapsulator(options), res)));
        const opened = await through(client.responseDecapsulator, split(sealed, resCuts));
        expect(concatBytes(...opened)).toEqual(concatBytes(...res));
      }),
      { numRuns: 1000 },
    );
  });

  it('works with X-Wing keys and large bodies split at the default 16384-byte chunk size', async () => {
    const key = createGatewayKey(9, await HpkeKeyPair.generate(HPKE_KEM.X_WING));
    const body = crypto.getRandomValues(new Uint8Array(40000));
    const client = await createChunkedOhttpClient(key.config);
    const encapsulated = concatBytes(...(await through(client.requestEncapsulator, [body])));
    // Sealed 16400-byte chunks need 4-byte varint lengths; the 7248-byte tail needs 2.
    expect(encapsulated).toHaveLength(7 + 1120 + (4 + 4 + 2) + 3 * 16 + 40000 + 1 + 16);
    const accepted = await acceptChunkedOhttpRequest(gatewayKeysById([key]), streamOf([encapsulated]));
    const out = await readAll(accepted.request);
    expect(out.map((c) => c.length)).toEqual([16384, 16384, 7232]);
    expect(concatBytes(...out)).toEqual(body);
  });

  it('a response can stream while the request is still arriving (one sealed chunk per write)', async () => {
    const key = createGatewayKey(1, await HpkeKeyPair.generate());
    const client = await createChunkedOhttpClient(key.config);
    const requestWriter = client.requestEncapsulator.writable.getWriter();
    const gatewayInput = client.requestEncapsulator.readable;
    const acceptance = acceptChunkedOhttpRequest(gatewayKeysById([key]), gatewayInput);
    // Backpressure: a write completes only once the gateway pulls, so it is awaited after the read.
    const written = requestWriter.write(new Uint8Array([1, 2, 3]));
    const accepted = await acceptance;
    const requestReader = accepted.request.getReader();
    expect((await requestReader.read()).value).toEqual(new Uint8Array([1, 2, 3]));
    await written;

    const encapsulator = accepted.createResponseEncapsulator();
    const responseWriter = encapsulator.writable.getWriter();
    const responseOut = encapsulator.readable.pipeThrough(client.responseDecapsulator).getReader();
    for (const event of ['data: a\n\n', 'data: b\n\n']) {
      void responseWriter.write(new TextEncoder().encode(event));
      expect(new TextDecoder().decode((await responseOut.read()).value)).toBe(event);
    }
    const requestClosed = requestWriter.close();
    expect((await requestReader.read()).done).toBe(true);
    await requestClosed;
    const responseClosed = responseWriter.close();
    expect((await responseOut.read()).done).toBe(true);
    await responseClosed;
    expect(() => accepted.createResponseEncapsulator()).toThrow(
      expect.objectContaining({ code: 'INTERNAL_ERROR' }),
    );
  });
});

describe('chunked OHTTP stream limits', () => {
  async function acceptedWith(
    tail: readonly Uint8Array[],
    close: boolean,
    maxChunkSize?: number,
  ): Promise<ReadableStream<Uint8Array>> {
    const key = createGatewayKey(1, await HpkeKeyPair.generate());
    const client = await createChunkedOhttpClient(key.config);
    const header = concatBytes(...(await through(client.requestEncapsulator, []))).subarray(0, 39);
    const accepted = await acceptChunkedOhttpRequest(
      gatewayKeysById([key]),
      streamOf([header, ...tail], close),
      maxChunkSize === undefined ? {} : { maxChunkSize },
    );
    return accepted.request;
  }

  it('refuses a declared chunk length above the limit before its bytes arrive', async () => {
    // The stream never closes and never sends the 16401 bytes: the length alone must be refused.
    const request = await acceptedWith([encodeVarint(16384 + 16 + 1)], false);
    expect(await codeOf(() => readAll(request))).toBe('OHTTP_CHUNK_TOO_LARGE');
    const small = await acceptedWith([encodeVarint(100 + 16 + 1)], false, 100);
    expect(await codeOf(() => readAll(small))).toBe('OHTTP_CHUNK_TOO_LARGE');
    const huge = await acceptedWith(
      [new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
      false,
    );
    expect(await codeOf(() => readAll(huge))).toBe('OHTTP_CHUNK_TOO_LARGE');
  });

  it('refuses a final chunk that grows past the limit before the stream ends', async () => {
    const request = await acceptedWith([new Uint8Array([0]), new Uint8Array(100 + 16 + 1)], false, 100);
    expect(await codeOf(() => readAll(request))).toBe('OHTTP_CHUNK_TOO_LARGE');
  });

  it('reports a stream that ends before the final chunk as OHTTP_STREAM_TRUNCATED', async () => {
    expect(await codeOf(() => acceptedWith([], true).then(readAll))).toBe('OHTTP_STREAM_TRUNCATED');
    expect(await codeOf(() => acceptedWith([encodeVarint(40), new Uint8Array(10)], true).then(readAll))).toBe(
      'OHTTP_STREAM_TRUNCATED',
    );
    const key = createGatewayKey(1, await HpkeKeyPair.generate());
    const keys = gatewayKeysById([key]);
    expect(
      await codeOf(() => acceptChunkedOhttpRequest(keys, streamOf([new Uint8Array([1, 0, 0x20])]))),
    ).toBe('OHTTP_STREAM_TRUNCATED');
    const client = await createChunkedOhttpClient(key.config);
    expect(await codeOf(() => through(client.responseDecapsulator, [new Uint8Array(31)]))).toBe(
      'OHTTP_STREAM_TRUNCATED',
    );
  });

  it('refuses bytes after the final chunk: they become part of it and break its tag', async () => {
    const key = createGatewayKey(1, await HpkeKeyPair.generate());
    const client = await createChunkedOhttpClient(key.config);
    const message = concatBytes(...(await through(client.requestEncapsulator, [new Uint8Array([7])])));
    const accepted = await acceptChunkedOhttpRequest(
      gatewayKeysById([key]),
      streamOf([message, new Uint8Array([0])]),
    );
    const reader = accepted.request.getReader();
    expect((await reader.read()).value).toEqual(new Uint8Array([7]));
    expect(await codeOf(() => reader.read())).toBe('OHTTP_DECRYPT_FAILED');
  });

  it('refuses pieces that are not bytes, and invalid sizes', async () => {
    const key = createGatewayKey(1, await HpkeKeyPair.generate());
    const client = await createChunkedOhttpClient(key.config);
    const notBytes = streamOf(['text' as unknown as Uint8Array]);
    expect(await codeOf(() => acceptChunkedOhttpRequest(gatewayKeysById([key]), notBytes))).toBe(
      'INPUT_MALFORMED',
    );
    expect(await codeOf(() => through(client.requestEncapsulator, [[1, 2] as unknown as Uint8Array]))).toBe(
      'INPUT_MALFORMED',
    );
    expect(await codeOf(() => createChunkedOhttpClient(key.config, { chunkSize: 0 }))).toBe('CONFIG_INVALID');
    expect(await codeOf(() => createChunkedOhttpClient(key.config, { maxChunkSize: 1.5 }))).toBe(
      'CONFIG_INVALID',
    );
    expect(
      await codeOf(() =>
        acceptChunkedOhttpRequest(gatewayKeysById([key]), streamOf([]), { maxChunkSize: 0 }),
      ),
    ).toBe('CONFIG_INVALID');
  });

  it('cancelling the request stream cancels the underlying body', async () => {
    const key = createGatewayKey(1, await HpkeKeyPair.generate());
    const client = await createChunkedOhttpClient(key.config);
    const header = concatBytes(...(await through(client.requestEncapsulator, []))).subarray(0, 39);
    let cancelled: unknown;
    const source = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(header);
      },
      cancel(reason) {
        cancelled = reason;
      },
    });
    const accepted = await acceptChunkedOhttpRequest(gatewayKeysById([key]), source);
    await accepted.request.cancel('client went away');
    expect(cancelled).toBe('client went away');
  });
});
