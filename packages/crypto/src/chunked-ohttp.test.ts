import { isTresorError } from '@tresor/protocol';
import { describe, expect, it } from 'vitest';
import { readTestdataJson } from '../../../test/support/testdata.js';
import { bytesToHex, concatBytes, hexToBytes, utf8Encode } from './bytes.js';
import {
  beginChunkedOhttpClientExchange,
  beginChunkedOhttpGatewayExchange,
  chunkedOhttpRequestHeaderLength,
  DEFAULT_OHTTP_CHUNK_SIZE,
  OHTTP_CHUNKED_REQUEST_MEDIA_TYPE,
  OHTTP_CHUNKED_RESPONSE_MEDIA_TYPE,
} from './chunked-ohttp.js';
import { acceptChunkedOhttpRequest, createChunkedOhttpClient } from './chunked-ohttp-streams.js';
import { HpkeKeyPair, HpkeSuite, setupRecipient } from './hpke.js';
import { createGatewayKey, decodeKeyConfig, gatewayKeysById, type OhttpGatewayKeys } from './ohttp-keys.js';
import { CHUNKED_RESPONSE_LABEL, deriveResponseKeyMaterial, ResponseAead } from './ohttp-response-key.js';

const example = readTestdataJson('protocol/ohttp/chunked-ohttp-draft08-example.json') as Record<
  string,
  unknown
>;
const verification = readTestdataJson('protocol/ohttp/verification.json') as {
  results: { chunked: { request_chunk_plaintexts: string[]; response_chunk_plaintexts: string[] } };
};

function hexField(name: string): Uint8Array {
  const value = example[name];
  if (typeof value !== 'string') throw new Error(`test vector field ${name} missing`);
  return hexToBytes(value);
}
function hexList(name: string): Uint8Array[] {
  const value = example[name];
  if (!Array.isArray(value)) throw new Error(`test vector field ${name} missing`);
  return value.map((v) => hexToBytes(String(v)));
}

const requestParts = hexList('encapsulated_request_parts'); // hdr, enc, chunk, chunk, final
const responseParts = hexList('encapsulated_response_parts'); // nonce, chunk, chunk, final
const requestPlaintexts = verification.results.chunked.request_chunk_plaintexts.map(hexToBytes);
const responsePlaintexts = verification.results.chunked.response_chunk_plaintexts.map(hexToBytes);
const header = concatBytes(requestParts[0]!, requestParts[1]!);
/** A non-final chunk's wire form without its one-byte varint length (all example lengths are < 64). */
const sealedOf = (part: Uint8Array): Uint8Array => part.subarray(1);

async function exampleGateway(): Promise<OhttpGatewayKeys> {
  const config = decodeKeyConfig(hexField('key_config'));
  const keyPair = await HpkeKeyPair.fromPrivateKey(0x20, hexField('gateway_private_key'));
  return new Map([[config.keyId, { config, keyPair }]]);
}

function streamOf(pieces: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(piece);
      controller.close();
    },
  });
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  const reader = stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) out.push(r.value);
  return out;
}

/** Pipes `pieces` through `transform` and collects its output. */
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

describe('chunked OHTTP against the draft-08 example, chunk by chunk', () => {
  it('uses the draft labels, media types and the 16384-byte default chunk limit', () => {
    expect(OHTTP_CHUNKED_REQUEST_MEDIA_TYPE).toBe('message/ohttp-chunked-req');
    expect(OHTTP_CHUNKED_RESPONSE_MEDIA_TYPE).toBe('message/ohttp-chunked-res');
    expect(DEFAULT_OHTTP_CHUNK_SIZE).toBe(16384);
    expect(
      bytesToHex(
        concatBytes(utf8Encode('message/bhttp chunked request'), new Uint8Array([0]), requestParts[0]!),
      ),
    ).toBe(bytesToHex(hexField('hpke_info')));
    expect(bytesToHex(concatBytes(...requestParts))).toBe(bytesToHex(hexField('encapsulated_request')));
    expect(bytesToHex(concatBytes(...responseParts))).toBe(bytesToHex(hexField('encapsulated_response')));
  });

  it('gateway: opens each request chunk, then seals each response chunk to the exact bytes', async () => {
    const keys = await exampleGateway();
    expect(chunkedOhttpRequestHeaderLength(keys, requestParts[0]!)).toBe(39);
    const exchange = await beginChunkedOhttpGatewayExchange(keys, header);
    expect(exchange.keyId).toBe(1);
    expect(exchange.suite).toEqual({ kem: 0x20, kdf: 1, aead: 1 });
    const opener = exchange.requestOpener;
    expect(await opener.openChunk(sealedOf(requestParts[2]!))).toEqual(requestPlaintexts[0]);
    expect(await opener.openChunk(sealedOf(requestParts[3]!))).toEqual(requestPlaintexts[1]);
    expect(opener.finished).toBe(false);
    expect(await opener.openFinalChunk(sealedOf(requestParts[4]!))).toEqual(requestPlaintexts[2]);
    expect(opener.finished).toBe(true);
    expect(bytesToHex(concatBytes(...requestPlaintexts))).toBe(bytesToHex(hexField('request_bhttp')));

    const { responseNonce, responseSealer } = await exchange.beginResponse({
      testResponseNonce: hexField('response_nonce'),
    });
    expect(bytesToHex(responseNonce)).toBe(bytesToHex(responseParts[0]!));
    expect(bytesToHex(await responseSealer.sealChunk(responsePlaintexts[0]!))).toBe(
      bytesToHex(responseParts[1]!),
    );
    expect(bytesToHex(await responseSealer.sealChunk(responsePlaintexts[1]!))).toBe(
      bytesToHex(responseParts[2]!),
    );
    expect(bytesToHex(await responseSealer.sealFinalChunk(responsePlaintexts[2]))).toBe(
      bytesToHex(responseParts[3]!),
    );
    expect(responseSealer.finished).toBe(true);
  });

  it('client: seals each request chunk to the exact bytes with the example ephemeral key, opens each response chunk', async () => {
    const config = decodeKeyConfig(hexField('key_config'));
    const ephemeral = await HpkeKeyPair.fromPrivateKey(0x20, hexField('client_ephemeral_private_key'));
    const exchange = await beginChunkedOhttpClientExchange(config, { testEphemeralKey: ephemeral });
    expect(bytesToHex(exchange.header)).toBe(bytesToHex(header));
    const sealer = exchange.requestSealer;
    expect(bytesToHex(await sealer.sealChunk(requestPlaintexts[0]!))).toBe(bytesToHex(requestParts[2]!));
    expect(bytesToHex(await sealer.sealChunk(requestPlaintexts[1]!))).toBe(bytesToHex(requestParts[3]!));
    expect(bytesToHex(await sealer.sealFinalChunk())).toBe(bytesToHex(requestParts[4]!));

    expect(exchange.responseNonceLength).toBe(16);
    const opener = await exchange.openResponse(responseParts[0]!);
    expect(await opener.openChunk(sealedOf(responseParts[1]!))).toEqual(responsePlaintexts[0]);
    expect(await opener.openChunk(sealedOf(responseParts[2]!))).toEqual(responsePlaintexts[1]);
    expect(await opener.openFinalChunk(sealedOf(responseParts[3]!))).toEqual(responsePlaintexts[2]);
    expect(bytesToHex(concatBytes(...responsePlaintexts))).toBe(bytesToHex(hexField('response_bhttp')));
  });

  it('derives the example exported secret, response key, nonce and per-chunk nonces', async () => {
    const keyPair = await HpkeKeyPair.fromPrivateKey(0x20, hexField('gateway_private_key'));
    const suite = HpkeSuite.of({ kem: 0x20, kdf: 1, aead: 1 });
    const enc = requestParts[1]!;
    const context = await setupRecipient(suite, keyPair, enc, hexField('hpke_info'));
    expect(bytesToHex(await context.export(utf8Encode(CHUNKED_RESPONSE_LABEL), 16))).toBe(
      bytesToHex(hexField('response_exported_secret')),
    );
    const nonce = hexField('response_nonce');
    const material = await deriveResponseKeyMaterial(suite, context, CHUNKED_RESPONSE_LABEL, enc, nonce);
    expect(bytesToHex(material.key)).toBe(bytesToHex(hexField('response_aead_key')));
    expect(bytesToHex(material.nonce)).toBe(bytesToHex(hexField('response_aead_nonce')));
    const aead = await ResponseAead.derive(suite, context, CHUNKED_RESPONSE_LABEL, enc, nonce);
    expect([0, 1, 2].map((counter) => bytesToHex(aead.chunkNonce(counter)))).toEqual(
      example.response_chunk_nonces,
    );
    expect(bytesToHex(aead.chunkNonce(0x0102))).toBe('fead854635d2d5527d64f444');
  });

  it('streams: the gateway reads the example request and writes the example response', async () => {
    const keys = await exampleGateway();
    const whole = hexField('encapsulated_request');
    // Delivered one byte at a time, so every framing state sees a split.
    const accepted = await acceptChunkedOhttpRequest(
      keys,
      streamOf([...whole].map((b) => new Uint8Array([b]))),
    );
    expect(await readAll(accepted.request)).toEqual(requestPlaintexts.filter((p) => p.length > 0));
    const encapsulator = accepted.createResponseEncapsulator({
      testResponseNonce: hexField('response_nonce'),
    });
    const out = await through(encapsulator, responsePlaintexts.slice(0, 2));
    expect(bytesToHex(concatBytes(...out))).toBe(bytesToHex(hexField('encapsulated_response')));
  });

  it('streams: the client writes the example request and reads the example response', async () => {
    const config = decodeKeyConfig(hexField('key_config'));
    const ephemeral = await HpkeKeyPair.fromPrivateKey(0x20, hexField('client_ephemeral_private_key'));
    const client = await createChunkedOhttpClient(config, { testEphemeralKey: ephemeral });
    const request = await through(client.requestEncapsulator, requestPlaintexts.slice(0, 2));
    expect(bytesToHex(concatBytes(...request))).toBe(bytesToHex(hexField('encapsulated_request')));
    const whole = hexField('encapsulated_response');
    const response = await through(client.responseDecapsulator, [whole.subarray(0, 5), whole.subarray(5)]);
    expect(bytesToHex(concatBytes(...response))).toBe(bytesToHex(hexField('response_bhttp')));
  });
});

describe('chunked OHTTP chunk API refusals', () => {
  async function pair(maxChunkSize?: number) {
    const key = createGatewayKey(1, await HpkeKeyPair.generate());
    const client = await beginChunkedOhttpClientExchange(key.config);
    const gateway = await beginChunkedOhttpGatewayExchange(
      gatewayKeysById([key]),
      client.header,
      maxChunkSize === undefined ? {} : { maxChunkSize },
    );
    return { client, gateway };
  }
  const code = async (run: () => Promise<unknown>): Promise<string> => {
    try {
      await run();
      return 'ok';
    } catch (err) {
      if (!isTresorError(err)) throw err;
      return err.code;
    }
  };
  const body = (chunk: Uint8Array): Uint8Array => chunk.subarray(chunk[0]! >> 6 === 0 ? 1 : 2);

  it('refuses a reordered chunk and then every chunk of the message', async () => {
    const { client, gateway } = await pair();
    const c1 = body(await client.requestSealer.sealChunk(utf8Encode('one')));
    const c2 = body(await client.requestSealer.sealChunk(utf8Encode('two')));
    const fin = body(await client.requestSealer.sealFinalChunk(utf8Encode('end')));
    expect(await code(() => gateway.requestOpener.openChunk(c2))).toBe('OHTTP_DECRYPT_FAILED');
    expect(await code(() => gateway.requestOpener.openChunk(c1))).toBe('OHTTP_DECRYPT_FAILED'); // poisoned
    expect(await code(() => gateway.requestOpener.openFinalChunk(fin))).toBe('OHTTP_DECRYPT_FAILED');
    expect(gateway.requestOpener.finished).toBe(false);
  });

  it('each misuse of the sequence fails at the first wrong chunk', async () => {
    const cases: [
      string,
      (s: { c1: Uint8Array; c2: Uint8Array; fin: Uint8Array }) => [Uint8Array, boolean][],
      number,
    ][] = [
      [
        'duplicate',
        ({ c1 }) => [
          [c1, false],
          [c1, false],
        ],
        1,
      ],
      ['dropped', ({ c2 }) => [[c2, false]], 0],
      [
        'final as non-final',
        ({ c1, c2, fin }) => [
          [c1, false],
          [c2, false],
          [fin, false],
        ],
        2,
      ],
      [
        'non-final as final',
        ({ c1, c2 }) => [
          [c1, false],
          [c2, true],
        ],
        1,
      ],
      [
        'final early',
        ({ c1, fin }) => [
          [c1, false],
          [fin, true],
        ],
        1,
      ],
    ];
    for (const [name, steps, failAt] of cases) {
      const { client, gateway } = await pair();
      const c1 = body(await client.requestSealer.sealChunk(utf8Encode('one')));
      const c2 = body(await client.requestSealer.sealChunk(utf8Encode('two')));
      const fin = body(await client.requestSealer.sealFinalChunk(utf8Encode('end')));
      const plan = steps({ c1, c2, fin });
      for (const [i, [chunk, final]] of plan.entries()) {
        const run = () =>
          final ? gateway.requestOpener.openFinalChunk(chunk) : gateway.requestOpener.openChunk(chunk);
        expect(await code(run), `${name} step ${i}`).toBe(i === failAt ? 'OHTTP_DECRYPT_FAILED' : 'ok');
      }
    }
  });

  it('refuses chunks after the final one, empty and oversized chunks, and sealing misuse', async () => {
    const { client, gateway } = await pair(8);
    const c1 = body(await client.requestSealer.sealChunk(utf8Encode('12345678')));
    const fin = body(await client.requestSealer.sealFinalChunk());
    expect(await gateway.requestOpener.openChunk(c1)).toEqual(utf8Encode('12345678'));
    expect(await gateway.requestOpener.openFinalChunk(fin)).toEqual(new Uint8Array(0));
    expect(await code(() => gateway.requestOpener.openChunk(c1))).toBe('OHTTP_MESSAGE_MALFORMED');
    expect(await code(() => gateway.requestOpener.openFinalChunk(fin))).toBe('OHTTP_MESSAGE_MALFORMED');
    expect(await code(() => client.requestSealer.sealChunk(utf8Encode('x')))).toBe('INTERNAL_ERROR');
    expect(await code(() => client.requestSealer.sealFinalChunk())).toBe('INTERNAL_ERROR');

    const big = await pair(8);
    const tooLarge = body(await big.client.requestSealer.sealChunk(utf8Encode('123456789')));
    expect(await code(() => big.gateway.requestOpener.openChunk(tooLarge))).toBe('OHTTP_CHUNK_TOO_LARGE');
    expect(await code(() => big.client.requestSealer.sealChunk(new Uint8Array(0)))).toBe('INTERNAL_ERROR');

    const empty = await pair();
    // A sealed empty plaintext is just a tag: §6 treats an empty non-final chunk as a decryption error.
    const emptyChunk = body(await empty.client.requestSealer.sealFinalChunk());
    expect(await code(() => empty.gateway.requestOpener.openChunk(emptyChunk))).toBe('OHTTP_DECRYPT_FAILED');

    const once = await pair();
    await once.gateway.beginResponse();
    expect(await code(() => once.gateway.beginResponse())).toBe('INTERNAL_ERROR');
    expect(await code(() => once.client.openResponse(new Uint8Array(5)))).toBe('OHTTP_MESSAGE_MALFORMED');
    expect(await code(() => beginChunkedOhttpGatewayExchange(gatewayKeysById([]), once.client.header))).toBe(
      'OHTTP_KEY_ID_UNKNOWN',
    );
    expect(await code(() => beginChunkedOhttpGatewayExchange(new Map(), new Uint8Array(3)))).toBe(
      'OHTTP_MESSAGE_MALFORMED',
    );
  });

  it('concurrent calls keep their order', async () => {
    const { client, gateway } = await pair();
    const texts = ['a', 'bb', 'ccc', 'dddd', 'eeeee'].map(utf8Encode);
    const sealed = await Promise.all(texts.map((t) => client.requestSealer.sealChunk(t)));
    const opened = await Promise.all(sealed.map((s) => gateway.requestOpener.openChunk(body(s))));
    expect(opened).toEqual(texts);
  });
});
