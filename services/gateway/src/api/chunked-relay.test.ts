import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  concatBytes,
  createChunkedOhttpClient,
  createGatewayKey,
  gatewayKeysById,
  HpkeKeyPair,
  utf8Encode,
} from '@tresor/crypto';
import { nodeOhttpAead } from '@tresor/crypto/node';
import { openChunkedRequest, sealChunkedRequest, SealedResponseBody } from './chunked-relay.js';

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const parts: Uint8Array[] = [];
  for await (const part of stream as unknown as AsyncIterable<Uint8Array>) parts.push(part);
  return parts;
}

async function setup(): Promise<{
  keys: ReturnType<typeof gatewayKeysById>;
  config: ReturnType<typeof createGatewayKey>['config'];
}> {
  const key = createGatewayKey(1, await HpkeKeyPair.generate());
  return { keys: gatewayKeysById([key]), config: key.config };
}

describe('chunked OHTTP relay without web streams', () => {
  it('opens a request sealed by the streams client and seals a response it opens, one chunk per write', async () => {
    const { keys, config } = await setup();
    const client = await createChunkedOhttpClient(config);
    const writer = client.requestEncapsulator.writable.getWriter();
    const sealedRequest = collect(client.requestEncapsulator.readable);
    const request = new Uint8Array(40_000).map((_, i) => i % 251);
    await writer.write(request);
    await writer.close();
    const opened = await openChunkedRequest(keys, concatBytes(...(await sealedRequest)), {
      aead: nodeOhttpAead,
    });
    expect(opened.request).toEqual(request);

    const response = new SealedResponseBody(await opened.exchange.beginResponse());
    const events = ['data: one\n\n', 'data: two\n\n', 'x'.repeat(20_000)].map(utf8Encode);
    const writing = (async () => {
      for (const event of events) await response.write(event);
      await response.end();
    })();
    const web = Readable.toWeb(response.body) as unknown as ReadableStream<Uint8Array>;
    const plaintexts = await collect(web.pipeThrough(client.responseDecapsulator));
    await writing;
    // 16384-byte chunks at most: the 20,000-byte write arrives as two.
    expect(plaintexts.map((p) => p.length)).toEqual([11, 11, 16384, 3616]);
    expect(concatBytes(...plaintexts)).toEqual(concatBytes(...events));
  });

  it('waits while the body is full and rejects once it is destroyed', async () => {
    const { keys, config } = await setup();
    const sealed = await sealChunkedRequest(config, utf8Encode('GET /'), { aead: nodeOhttpAead });
    const opened = await openChunkedRequest(keys, sealed.bytes, { aead: nodeOhttpAead });
    const response = new SealedResponseBody(await opened.exchange.beginResponse(), 1024);
    let settled = false;
    const write = response.write(new Uint8Array(2048).fill(7)).then(
      () => (settled = true),
      (err: unknown) => {
        settled = true;
        throw err;
      },
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(settled).toBe(false); // nobody reads: the writer waits
    response.body.destroy();
    await expect(write).rejects.toThrow(/closed the response stream/);
    await expect(response.write(new Uint8Array([1]))).rejects.toThrow(/closed the response stream/);
  });

  it('opens a response as it arrives in arbitrary pieces and refuses a truncated one', async () => {
    const { keys, config } = await setup();
    const sealed = await sealChunkedRequest(config, utf8Encode('POST /'), { aead: nodeOhttpAead });
    const opened = await openChunkedRequest(keys, sealed.bytes, { aead: nodeOhttpAead });
    expect(new TextDecoder().decode(opened.request)).toBe('POST /');
    const response = new SealedResponseBody(await opened.exchange.beginResponse());
    const writing = (async () => {
      await response.write(utf8Encode('alpha'));
      await response.write(utf8Encode('beta'));
      await response.end();
    })();
    const wire: Uint8Array[] = [];
    for await (const piece of response.body as AsyncIterable<Uint8Array>) wire.push(piece);
    await writing;
    const all = concatBytes(...wire);
    const pieces = (bytes: Uint8Array, size: number): Uint8Array[] =>
      Array.from({ length: Math.ceil(bytes.length / size) }, (_, i) => bytes.slice(i * size, (i + 1) * size));
    const out: string[] = [];
    for await (const p of sealed.open(Readable.from(pieces(all, 3)))) out.push(new TextDecoder().decode(p));
    expect(out).toEqual(['alpha', 'beta']);

    const again = await sealChunkedRequest(config, utf8Encode('POST /'), { aead: nodeOhttpAead });
    const read = async (): Promise<void> => {
      for await (const p of again.open(Readable.from([all.subarray(0, 10)]))) expect(p).toBeDefined();
    };
    await expect(read()).rejects.toMatchObject({ code: 'OHTTP_STREAM_TRUNCATED' });
  });
});
