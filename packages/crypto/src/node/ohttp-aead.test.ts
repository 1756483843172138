import fc from 'fast-check';
import { isTresorError } from '@tresor/protocol';
import { describe, expect, it } from 'vitest';
import { readTestdataJson } from '../../../../test/support/testdata.js';
import { bytesToHex, concatBytes, hexToBytes } from '../bytes.js';
import {
  beginChunkedOhttpClientExchange,
  beginChunkedOhttpGatewayExchange,
  openChunkNow,
  sealChunkNow,
} from '../chunked-ohttp.js';
import { acceptChunkedOhttpRequest, createChunkedOhttpClient } from '../chunked-ohttp-streams.js';
import { HpkeKeyPair, HpkeSuite, setupRecipient } from '../hpke.js';
import { webCryptoOhttpAead, type OhttpAeadBackend } from '../ohttp-aead.js';
import { createGatewayKey, decodeKeyConfig, gatewayKeysById, type OhttpGatewayKeys } from '../ohttp-keys.js';
import { CHUNKED_RESPONSE_LABEL, deriveResponseKeyMaterial, RESPONSE_LABEL } from '../ohttp-response-key.js';
import { decapsulateRequest, encapsulateRequest } from '../ohttp.js';
import { nodeOhttpAead } from './ohttp-aead.js';

/**
 * The node:crypto backend must be a drop-in for WebCrypto: the RFC 9458 and chunked-OHTTP
 * draft-08 vectors through it, and byte-for-byte equality with WebCrypto on random inputs.
 */

const rfc = readTestdataJson('protocol/ohttp/rfc9458-appendix-a.json') as Record<string, unknown>;
const draft = readTestdataJson('protocol/ohttp/chunked-ohttp-draft08-example.json') as Record<
  string,
  unknown
>;
function hexOf(vectors: Record<string, unknown>, name: string): Uint8Array {
  const value = vectors[name];
  if (typeof value !== 'string') throw new Error(`test vector field ${name} missing`);
  return hexToBytes(value);
}
function hexListOf(vectors: Record<string, unknown>, name: string): Uint8Array[] {
  const value = vectors[name];
  if (!Array.isArray(value)) throw new Error(`test vector field ${name} missing`);
  return value.map((v) => hexToBytes(String(v)));
}

async function gatewayOf(vectors: Record<string, unknown>): Promise<OhttpGatewayKeys> {
  const config = decodeKeyConfig(hexOf(vectors, 'key_config'));
  const keyPair = await HpkeKeyPair.fromPrivateKey(0x20, hexOf(vectors, 'gateway_private_key'));
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

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const out: Uint8Array[] = [];
  const reader = stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) out.push(r.value);
  return concatBytes(...out);
}

async function through(
  transform: TransformStream<Uint8Array, Uint8Array>,
  pieces: readonly Uint8Array[],
): Promise<Uint8Array> {
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

async function codeOf(run: () => unknown): Promise<string> {
  try {
    await run();
    return 'ok';
  } catch (err) {
    if (!isTresorError(err)) throw err;
    return err.code;
  }
}

async function rejects(run: () => unknown): Promise<boolean> {
  try {
    await run();
    return false;
  } catch {
    return true;
  }
}

const BACKENDS: readonly OhttpAeadBackend[] = [webCryptoOhttpAead, nodeOhttpAead];

describe('nodeOhttpAead against the RFC 9458 Appendix A vectors', () => {
  it('derives the RFC response key and nonce', async () => {
    const keyPair = await HpkeKeyPair.fromPrivateKey(0x20, hexOf(rfc, 'gateway_private_key'));
    const suite = HpkeSuite.of({ kem: 0x20, kdf: 1, aead: 1 });
    const enc = hexOf(rfc, 'client_ephemeral_public_key');
    const context = await setupRecipient(suite, keyPair, enc, hexOf(rfc, 'hpke_info'));
    const material = await deriveResponseKeyMaterial(
      suite,
      context,
      RESPONSE_LABEL,
      enc,
      hexOf(rfc, 'response_nonce'),
      nodeOhttpAead,
    );
    expect(bytesToHex(material.key)).toBe(bytesToHex(hexOf(rfc, 'response_aead_key')));
    expect(bytesToHex(material.nonce)).toBe(bytesToHex(hexOf(rfc, 'response_aead_nonce')));
  });

  it('the gateway re-creates the RFC response and the client opens it, byte for byte', async () => {
    const keys = await gatewayOf(rfc);
    const got = await decapsulateRequest(keys, hexOf(rfc, 'encapsulated_request'), { aead: nodeOhttpAead });
    const response = await got.responder.encapsulateResponse(hexOf(rfc, 'response_bhttp'), {
      testResponseNonce: hexOf(rfc, 'response_nonce'),
    });
    expect(bytesToHex(response)).toBe(bytesToHex(hexOf(rfc, 'encapsulated_response')));

    const ephemeral = await HpkeKeyPair.fromPrivateKey(0x20, hexOf(rfc, 'client_ephemeral_private_key'));
    const config = decodeKeyConfig(hexOf(rfc, 'key_config'));
    const { context } = await encapsulateRequest(config, hexOf(rfc, 'request_bhttp'), {
      testEphemeralKey: ephemeral,
      aead: nodeOhttpAead,
    });
    const opened = await context.decapsulateResponse(hexOf(rfc, 'encapsulated_response'));
    expect(bytesToHex(opened)).toBe(bytesToHex(hexOf(rfc, 'response_bhttp')));
  });

  it('refuses every single-bit flip of the RFC response with OHTTP_DECRYPT_FAILED', async () => {
    const ephemeral = await HpkeKeyPair.fromPrivateKey(0x20, hexOf(rfc, 'client_ephemeral_private_key'));
    const config = decodeKeyConfig(hexOf(rfc, 'key_config'));
    const response = hexOf(rfc, 'encapsulated_response');
    for (let bit = 0; bit < response.length * 8; bit += 7) {
      const { context } = await encapsulateRequest(config, hexOf(rfc, 'request_bhttp'), {
        testEphemeralKey: ephemeral,
        aead: nodeOhttpAead,
      });
      const flipped = response.slice();
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      // A flip in the nonce changes the derived key; anywhere else it breaks the tag.
      expect(await codeOf(() => context.decapsulateResponse(flipped)), `bit ${bit}`).toBe(
        'OHTTP_DECRYPT_FAILED',
      );
    }
  });
});

describe('nodeOhttpAead against the chunked OHTTP draft-08 example', () => {
  const requestParts = hexListOf(draft, 'encapsulated_request_parts'); // hdr, enc, chunk, chunk, final
  const responseParts = hexListOf(draft, 'encapsulated_response_parts'); // nonce, chunk, chunk, final
  const header = concatBytes(requestParts[0]!, requestParts[1]!);
  const verification = readTestdataJson('protocol/ohttp/verification.json') as {
    results: { chunked: { response_chunk_plaintexts: string[] } };
  };
  const responsePlaintexts = verification.results.chunked.response_chunk_plaintexts.map(hexToBytes);

  it('derives the example response key and nonce', async () => {
    const keyPair = await HpkeKeyPair.fromPrivateKey(0x20, hexOf(draft, 'gateway_private_key'));
    const suite = HpkeSuite.of({ kem: 0x20, kdf: 1, aead: 1 });
    const enc = requestParts[1]!;
    const context = await setupRecipient(suite, keyPair, enc, hexOf(draft, 'hpke_info'));
    const material = await deriveResponseKeyMaterial(
      suite,
      context,
      CHUNKED_RESPONSE_LABEL,
      enc,
      hexOf(draft, 'response_nonce'),
      nodeOhttpAead,
    );
    expect(bytesToHex(material.key)).toBe(bytesToHex(hexOf(draft, 'response_aead_key')));
    expect(bytesToHex(material.nonce)).toBe(bytesToHex(hexOf(draft, 'response_aead_nonce')));
  });

  it('the gateway seals each example response chunk to the exact bytes, synchronously', async () => {
    const exchange = await beginChunkedOhttpGatewayExchange(await gatewayOf(draft), header, {
      aead: nodeOhttpAead,
    });
    const { responseSealer } = await exchange.beginResponse({
      testResponseNonce: hexOf(draft, 'response_nonce'),
    });
    // The synchronous path answers in the same turn, not through a promise.
    const first = sealChunkNow(responseSealer, responsePlaintexts[0]!);
    expect(first).not.toBeInstanceOf(Promise);
    expect(bytesToHex(first as Uint8Array)).toBe(bytesToHex(responseParts[1]!));
    expect(bytesToHex(await responseSealer.sealChunk(responsePlaintexts[1]!))).toBe(
      bytesToHex(responseParts[2]!),
    );
    expect(bytesToHex(await responseSealer.sealFinalChunk(responsePlaintexts[2]))).toBe(
      bytesToHex(responseParts[3]!),
    );
  });

  it('the client opens each example response chunk, synchronously', async () => {
    const config = decodeKeyConfig(hexOf(draft, 'key_config'));
    const ephemeral = await HpkeKeyPair.fromPrivateKey(0x20, hexOf(draft, 'client_ephemeral_private_key'));
    const exchange = await beginChunkedOhttpClientExchange(config, {
      testEphemeralKey: ephemeral,
      aead: nodeOhttpAead,
    });
    const opener = await exchange.openResponse(responseParts[0]!);
    const first = openChunkNow(opener, responseParts[1]!.subarray(1));
    expect(first).not.toBeInstanceOf(Promise);
    expect(first).toEqual(responsePlaintexts[0]);
    expect(await opener.openChunk(responseParts[2]!.subarray(1))).toEqual(responsePlaintexts[1]);
    expect(await opener.openFinalChunk(responseParts[3]!.subarray(1))).toEqual(responsePlaintexts[2]);
    expect(opener.finished).toBe(true);
  });

  it('streams: the gateway writes the example response, the client reads it byte by byte', async () => {
    const keys = await gatewayOf(draft);
    const whole = hexOf(draft, 'encapsulated_request');
    const accepted = await acceptChunkedOhttpRequest(keys, streamOf([whole]), { aead: nodeOhttpAead });
    expect((await readAll(accepted.request)).length).toBeGreaterThan(0);
    const encapsulator = accepted.createResponseEncapsulator({
      testResponseNonce: hexOf(draft, 'response_nonce'),
    });
    const sealed = await through(encapsulator, responsePlaintexts.slice(0, 2));
    expect(bytesToHex(sealed)).toBe(bytesToHex(hexOf(draft, 'encapsulated_response')));

    const ephemeral = await HpkeKeyPair.fromPrivateKey(0x20, hexOf(draft, 'client_ephemeral_private_key'));
    const client = await createChunkedOhttpClient(decodeKeyConfig(hexOf(draft, 'key_config')), {
      testEphemeralKey: ephemeral,
      aead: nodeOhttpAead,
    });
    const bytes = [...sealed].map((b) => new Uint8Array([b]));
    expect(bytesToHex(await through(client.responseDecapsulator, bytes))).toBe(
      bytesToHex(hexOf(draft, 'response_bhttp')),
    );
  });
});

describe('nodeOhttpAead is byte-identical to WebCrypto', () => {
  it('seals to the same bytes and each opens what the other sealed (AES-128 and AES-256)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(16, 32).chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ maxLength: 600 }),
        fc.uint8Array({ maxLength: 24 }),
        fc.integer({ min: 0, max: 9 }),
        async (key, nonce, plaintext, aad, headroom) => {
          const web = await webCryptoOhttpAead.importAesGcmKey(key);
          const node = await nodeOhttpAead.importAesGcmKey(key);
          const byWeb = (await web.seal(nonce, plaintext, aad, headroom)).subarray(headroom);
          const byNode = (await node.seal(nonce, plaintext, aad, headroom)).subarray(headroom);
          expect(bytesToHex(byNode)).toBe(bytesToHex(byWeb));
          expect(byNode.length).toBe(plaintext.length + 16);
          expect(await node.open(nonce, byWeb, aad)).toEqual(plaintext);
          expect(await web.open(nonce, byNode, aad)).toEqual(plaintext);
        },
      ),
      { numRuns: 150, seed: 20261207 },
    );
  });

  it('hands out chunks that own their ArrayBuffer, so a byte stream may transfer them', async () => {
    const gatewayKey = createGatewayKey(1, await HpkeKeyPair.generate());
    const client = await beginChunkedOhttpClientExchange(gatewayKey.config, { aead: nodeOhttpAead });
    const gateway = await beginChunkedOhttpGatewayExchange(gatewayKeysById([gatewayKey]), client.header, {
      aead: nodeOhttpAead,
    });
    const { responseNonce, responseSealer } = await gateway.beginResponse();
    const opener = await client.openResponse(responseNonce);
    for (const size of [1, 63, 200, 5000]) {
      const framed = await responseSealer.sealChunk(new Uint8Array(size).fill(size & 0xff));
      expect(framed.buffer.byteLength).toBe(framed.length);
      const opened = await opener.openChunk(framed.subarray(framed[0]! >> 6 === 0 ? 1 : 2));
      expect(opened.buffer.byteLength).toBe(size);
      // Transferring a chunk (what a byte stream's enqueue does) detaches only that chunk.
      const moved = structuredClone(framed, { transfer: [framed.buffer] });
      expect(framed.length).toBe(0);
      expect(moved.length).toBeGreaterThan(size);
      expect(Buffer.allocUnsafe(16).length).toBe(16);
    }
  });

  it('derives the same HKDF-SHA256 output', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        fc.uint8Array({ maxLength: 80 }),
        fc.uint8Array({ maxLength: 16 }),
        fc.integer({ min: 1, max: 64 }),
        async (ikm, salt, info, length) => {
          const byWeb = await webCryptoOhttpAead.hkdfSha256(ikm, salt, info, length);
          const byNode = await nodeOhttpAead.hkdfSha256(ikm, salt, info, length);
          expect(bytesToHex(byNode)).toBe(bytesToHex(byWeb));
          expect(byNode.length).toBe(length);
        },
      ),
      { numRuns: 100, seed: 7 },
    );
  });

  it('a whole chunked response is the same wire bytes with either backend, and opens with either', async () => {
    const gatewayKey = createGatewayKey(3, await HpkeKeyPair.generate());
    const keys = gatewayKeysById([gatewayKey]);
    const ephemeral = await HpkeKeyPair.generate();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { maxLength: 12 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        async (events, responseNonce, cuts) => {
          const wires: Uint8Array[] = [];
          for (const aead of BACKENDS) {
            const client = await beginChunkedOhttpClientExchange(gatewayKey.config, {
              testEphemeralKey: ephemeral,
            });
            const gateway = await beginChunkedOhttpGatewayExchange(keys, client.header, { aead });
            const { responseSealer } = await gateway.beginResponse({ testResponseNonce: responseNonce });
            const chunks = [];
            for (const event of events) chunks.push(await responseSealer.sealChunk(event));
            chunks.push(await responseSealer.sealFinalChunk());
            wires.push(concatBytes(responseNonce, ...chunks));
          }
          expect(bytesToHex(wires[1]!)).toBe(bytesToHex(wires[0]!));
          for (const aead of BACKENDS) {
            const client = await createChunkedOhttpClient(gatewayKey.config, {
              testEphemeralKey: ephemeral,
              aead,
            });
            const opened = await through(client.responseDecapsulator, split(wires[0]!, cuts));
            expect(opened).toEqual(concatBytes(...events));
          }
        },
      ),
      { numRuns: 20, seed: 14 },
    );
  });
});

describe('nodeOhttpAead refusals', () => {
  it('refuses any single-bit flip of nonce, AAD, ciphertext or tag, as WebCrypto does', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 12, maxLength: 12 }),
        fc.uint8Array({ maxLength: 100 }),
        fc.uint8Array({ minLength: 1, maxLength: 8 }),
        fc.constantFrom('nonce', 'aad', 'sealed'),
        fc.nat(),
        async (key, nonce, plaintext, aad, where, at) => {
          const node = nodeOhttpAead.importAesGcmKey(key) as Awaited<
            ReturnType<typeof nodeOhttpAead.importAesGcmKey>
          >;
          const web = await webCryptoOhttpAead.importAesGcmKey(key);
          const sealed = (await node.seal(nonce, plaintext, aad, 0)).slice();
          const inputs = { nonce: nonce.slice(), aad: aad.slice(), sealed };
          const target = inputs[where];
          target[at % target.length]! ^= 1 << (at % 8);
          expect(await rejects(() => node.open(inputs.nonce, inputs.sealed, inputs.aad))).toBe(true);
          expect(await rejects(() => web.open(inputs.nonce, inputs.sealed, inputs.aad))).toBe(true);
        },
      ),
      { numRuns: 150, seed: 99 },
    );
  });

  it('refuses AES keys of any length but 16 and 32 bytes, and ciphertexts shorter than a tag', async () => {
    for (const length of [0, 1, 15, 17, 24, 31, 33, 64]) {
      for (const aead of BACKENDS) {
        expect(await codeOf(() => aead.importAesGcmKey(new Uint8Array(length))), `${length}`).toBe(
          'INTERNAL_ERROR',
        );
      }
    }
    const key = nodeOhttpAead.importAesGcmKey(new Uint8Array(32)) as Awaited<
      ReturnType<typeof nodeOhttpAead.importAesGcmKey>
    >;
    expect(() => key.open(new Uint8Array(12), new Uint8Array(15), new Uint8Array(0))).toThrow(RangeError);
  });

  it('a tampered, reordered or mislabelled chunk fails with OHTTP_DECRYPT_FAILED, and so does everything after it', async () => {
    const gatewayKey = createGatewayKey(1, await HpkeKeyPair.generate());
    const keys = gatewayKeysById([gatewayKey]);
    // Each case: the chunks in the order they arrive; the first one is already wrong.
    const cases: readonly ((c: readonly Uint8Array[]) => Uint8Array[])[] = [
      (c) => [flip(c[0]!), c[1]!],
      (c) => [c[1]!, c[0]!],
      (c) => [c[0]!.subarray(0, 10), c[1]!],
      (c) => [c[2]!, c[0]!], // the final chunk opened as a non-final one (wrong AAD)
      (c) => [new Uint8Array(c[0]!.length), c[0]!],
    ];
    for (const mutate of cases) {
      const client = await beginChunkedOhttpClientExchange(gatewayKey.config, { aead: nodeOhttpAead });
      const gateway = await beginChunkedOhttpGatewayExchange(keys, client.header, { aead: nodeOhttpAead });
      const { responseNonce, responseSealer } = await gateway.beginResponse();
      const chunks = [
        (await responseSealer.sealChunk(new Uint8Array(40).fill(1))).subarray(1),
        (await responseSealer.sealChunk(new Uint8Array(40).fill(2))).subarray(1),
        (await responseSealer.sealFinalChunk()).subarray(1),
      ];
      const opener = await client.openResponse(responseNonce);
      const [bad, next] = mutate(chunks);
      expect(await codeOf(() => opener.openChunk(bad!))).toBe('OHTTP_DECRYPT_FAILED');
      expect(await codeOf(() => opener.openChunk(next!))).toBe('OHTTP_DECRYPT_FAILED');
      expect(await codeOf(() => opener.openFinalChunk(chunks[2]!))).toBe('OHTTP_DECRYPT_FAILED');
      expect(opener.finished).toBe(false);
    }
    // A duplicated chunk: the first copy opens, the second fails, and so does the rest.
    const client = await beginChunkedOhttpClientExchange(gatewayKey.config, { aead: nodeOhttpAead });
    const gateway = await beginChunkedOhttpGatewayExchange(keys, client.header, { aead: nodeOhttpAead });
    const { responseNonce, responseSealer } = await gateway.beginResponse();
    const first = (await responseSealer.sealChunk(new Uint8Array([7]))).subarray(1);
    const final = (await responseSealer.sealFinalChunk()).subarray(1);
    const opener = await client.openResponse(responseNonce);
    expect(await opener.openChunk(first)).toEqual(new Uint8Array([7]));
    expect(await codeOf(() => opener.openChunk(first))).toBe('OHTTP_DECRYPT_FAILED');
    expect(await codeOf(() => opener.openFinalChunk(final))).toBe('OHTTP_DECRYPT_FAILED');
  });

  it('the promise API rejects (never throws) when the synchronous backend refuses', async () => {
    const gatewayKey = createGatewayKey(1, await HpkeKeyPair.generate());
    const client = await beginChunkedOhttpClientExchange(gatewayKey.config, { aead: nodeOhttpAead });
    const gateway = await beginChunkedOhttpGatewayExchange(gatewayKeysById([gatewayKey]), client.header, {
      aead: nodeOhttpAead,
    });
    const { responseNonce, responseSealer } = await gateway.beginResponse();
    const opener = await client.openResponse(responseNonce);
    let sealing: Promise<Uint8Array> | undefined;
    expect(() => (sealing = responseSealer.sealChunk(new Uint8Array(0)))).not.toThrow();
    expect(await codeOf(() => sealing)).toBe('INTERNAL_ERROR');
    let opening: Promise<Uint8Array> | undefined;
    expect(() => (opening = opener.openChunk(new Uint8Array(20)))).not.toThrow();
    expect(await codeOf(() => opening)).toBe('OHTTP_DECRYPT_FAILED');
    await responseSealer.sealFinalChunk();
    expect(await codeOf(() => responseSealer.sealChunk(new Uint8Array(1)))).toBe('INTERNAL_ERROR');
  });

  it('a tampered or truncated response errors the stream with a catalogued code, with either backend', async () => {
    const gatewayKey = createGatewayKey(1, await HpkeKeyPair.generate());
    const keys = gatewayKeysById([gatewayKey]);
    for (const aead of BACKENDS) {
      for (const damage of ['flip', 'truncate', 'oversize'] as const) {
        const client = await createChunkedOhttpClient(gatewayKey.config, { aead, maxChunkSize: 64 });
        const request = await through(client.requestEncapsulator, [new Uint8Array([9])]);
        const accepted = await acceptChunkedOhttpRequest(keys, streamOf([request]), { aead });
        await readAll(accepted.request);
        const events = [new Uint8Array(30).fill(1), new Uint8Array(damage === 'oversize' ? 65 : 30)];
        const wire = (await through(accepted.createResponseEncapsulator(), events)).slice();
        if (damage === 'flip') wire[40]! ^= 0x10;
        const sent = damage === 'truncate' ? wire.subarray(0, wire.length - 20) : wire;
        expect(
          await codeOf(() => through(client.responseDecapsulator, [sent])),
          `${aead.name} ${damage}`,
        ).toBe(
          {
            flip: 'OHTTP_DECRYPT_FAILED',
            truncate: 'OHTTP_STREAM_TRUNCATED',
            oversize: 'OHTTP_CHUNK_TOO_LARGE',
          }[damage],
        );
      }
    }
  });

  it('a stream opens correctly when its producer reuses one buffer for every piece', async () => {
    const gatewayKey = createGatewayKey(1, await HpkeKeyPair.generate());
    const keys = gatewayKeysById([gatewayKey]);
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...BACKENDS),
        fc.array(fc.uint8Array({ minLength: 1, maxLength: 120 }), { minLength: 1, maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 10 }),
        async (aead, events, cuts) => {
          const client = await createChunkedOhttpClient(gatewayKey.config, { aead });
          const request = await through(client.requestEncapsulator, [new Uint8Array([1, 2, 3])]);
          const accepted = await acceptChunkedOhttpRequest(keys, streamOf([request]), { aead });
          expect(await readAll(accepted.request)).toEqual(new Uint8Array([1, 2, 3]));
          const wire = await through(accepted.createResponseEncapsulator(), events);

          const shared = new Uint8Array(wire.length);
          const writer = client.responseDecapsulator.writable.getWriter();
          const reading = readAll(client.responseDecapsulator.readable);
          for (const piece of split(wire, cuts)) {
            if (piece.length === 0) continue;
            shared.set(piece);
            await writer.write(shared.subarray(0, piece.length));
            shared.fill(0xee); // the producer reuses its buffer as soon as the write is taken
          }
          await writer.close();
          expect(await reading).toEqual(concatBytes(...events));
        },
      ),
      { numRuns: 40, seed: 5 },
    );
  });
});

function flip(bytes: Uint8Array): Uint8Array {
  const out = bytes.slice();
  out[out.length - 1]! ^= 1;
  return out;
}
