import fc from 'fast-check';
import {
  acceptChunkedOhttpRequest,
  beginChunkedOhttpClientExchange,
  beginChunkedOhttpGatewayExchange,
  chunkedOhttpRequestHeaderLength,
  concatBytes,
  decapsulateRequest,
  decodeBhttpRequest,
  decodeBhttpResponse,
  decodeKeyConfig,
  decodeKeyConfigList,
  encapsulateRequest,
  hexToBytes,
  HpkeKeyPair,
  ModelKey,
  openSealedModel,
  byteSourceFromBytes,
  byteSourceFromChunks,
  parseModelKeyFile,
  sealModelBytes,
  utf8Encode,
  type OhttpGatewayKeys,
  type OhttpKeyConfig,
} from '@tresor/crypto';
import { ByteQueue, ChunkFrameReader } from '../../../packages/crypto/src/chunked-ohttp-framing.js';
import {
  parseSealedModelHeaderJson,
  parseSealedModelPreamble,
  SEALED_MODEL_PREAMBLE_LENGTH,
} from '../../../packages/crypto/src/sealed-model-format.js';
import { readTestdataJson } from '../../support/testdata.js';
import { target, type FuzzTarget } from './harness.js';
import { mutatedBytes } from './mutate.js';

/**
 * The crypto layer's decoders: OHTTP key configurations (RFC 9458 §3), encapsulated requests and
 * responses (§4), chunked OHTTP framing and chunk opening (draft-ietf-ohai-chunked-ohttp-08), Binary
 * HTTP (RFC 9292), sealed model preamble, header JSON and chunks, and model key files. Seeds are the
 * RFC and draft examples from testdata plus messages sealed here with fixed keys.
 */

const rfc = readTestdataJson('protocol/ohttp/rfc9458-appendix-a.json') as Record<string, string>;
const draft = readTestdataJson('protocol/ohttp/chunked-ohttp-draft08-example.json') as Record<
  string,
  string | string[]
>;
const bhttpExamples = (
  readTestdataJson('protocol/bhttp/rfc9292-examples.json') as { examples: { hex: string; framing: number }[] }
).examples;
const hex = (value: unknown): Uint8Array => hexToBytes(value as string);

async function gateway(
  privateKey: string,
  keyConfig: string,
): Promise<{ config: OhttpKeyConfig; keys: OhttpGatewayKeys }> {
  const keyPair = await HpkeKeyPair.fromPrivateKey(0x20, hex(privateKey));
  const config = decodeKeyConfig(hex(keyConfig));
  return { config, keys: new Map([[config.keyId, { config, keyPair }]]) };
}

const RFC = await gateway(rfc.gateway_private_key!, rfc.key_config!);
const DRAFT = await gateway(draft.gateway_private_key as string, draft.key_config as string);

const KEY_CONFIGS = [hex(rfc.key_config), hex(draft.key_config)];
const KEY_CONFIG_LISTS = [
  hex(rfc.application_ohttp_keys),
  concatBytes(hex(rfc.application_ohttp_keys), hex(rfc.application_ohttp_keys)),
];
const BHTTP_REQUESTS = bhttpExamples.filter((e) => e.framing % 2 === 0).map((e) => hex(e.hex));
const BHTTP_RESPONSES = bhttpExamples.filter((e) => e.framing % 2 === 1).map((e) => hex(e.hex));

/** A request sealed here with a body, so mutations reach the AEAD and the BHTTP inside. */
const SEALED_REQUEST = (
  await encapsulateRequest(RFC.config, concatBytes(BHTTP_REQUESTS[0]!, new Uint8Array(40).fill(0x61)))
).encapsulatedRequest;
const REQUESTS = [hex(rfc.encapsulated_request), SEALED_REQUEST];

/** The client context of the RFC's own exchange cannot be rebuilt (its ephemeral key is fixed in the
 * vector only), so responses are fuzzed against an exchange made here. */
const exchange = await encapsulateRequest(RFC.config, BHTTP_REQUESTS[0]!);
const opened = await decapsulateRequest(RFC.keys, exchange.encapsulatedRequest);
const RESPONSE = await opened.responder.encapsulateResponse(BHTTP_RESPONSES[0]!);

/** A chunked request as the draft example has it, and one sealed here with more chunks. */
const DRAFT_REQUEST = hex(draft.encapsulated_request);
async function chunkedRequest(): Promise<Uint8Array> {
  const client = await beginChunkedOhttpClientExchange(DRAFT.config);
  return concatBytes(
    client.header,
    await client.requestSealer.sealChunk(new Uint8Array(30).fill(1)),
    await client.requestSealer.sealChunk(new Uint8Array(70).fill(2)),
    await client.requestSealer.sealFinalChunk(new Uint8Array(5)),
  );
}
const CHUNKED_REQUESTS = [DRAFT_REQUEST, await chunkedRequest()];
const CHUNK_SECTIONS = CHUNKED_REQUESTS.map((r) => r.subarray(7 + 32));

/** Chunk boundaries for the stream decoders: where the network split the body. */
function split(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  return [...points, bytes.length].map((p, i, all) => bytes.subarray(i === 0 ? 0 : all[i - 1]!, p));
}
function streamOf(pieces: readonly Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const piece of pieces) controller.enqueue(piece);
      controller.close();
    },
  });
}

/** Frames and opens a whole chunked request, as the gateway does, without streams. */
async function openChunkedRequest(bytes: Uint8Array, maxChunkSize: number): Promise<void> {
  const headerLength = chunkedOhttpRequestHeaderLength(DRAFT.keys, bytes.subarray(0, 7));
  const exchange = await beginChunkedOhttpGatewayExchange(DRAFT.keys, bytes.subarray(0, headerLength), {
    maxChunkSize,
  });
  const opener = exchange.requestOpener;
  const reader = new ChunkFrameReader(new ByteQueue(), opener.maxSealedChunkSize);
  reader.push(bytes.subarray(headerLength));
  for (let chunk = reader.next(); chunk !== undefined; chunk = reader.next()) await opener.openChunk(chunk);
  await opener.openFinalChunk(reader.finish());
}

const MODEL_KEY = await ModelKey.import(new Uint8Array(32).fill(1));
const SEALED_MODELS = [
  await sealModelBytes(new Uint8Array(3000).fill(0x42), {
    key: MODEL_KEY,
    chunkSize: 1024,
    metadata: { name: 'fuzz' },
  }),
  await sealModelBytes(new Uint8Array(10), { key: MODEL_KEY, chunkSize: 4096 }),
];
const headerJsonOf = (sealed: Uint8Array): Uint8Array =>
  sealed.subarray(
    SEALED_MODEL_PREAMBLE_LENGTH,
    SEALED_MODEL_PREAMBLE_LENGTH + new DataView(sealed.buffer, sealed.byteOffset).getUint32(9),
  );

async function unseal(bytes: Uint8Array, sized: boolean): Promise<void> {
  const reader = await openSealedModel(sized ? byteSourceFromBytes(bytes) : byteSourceFromChunks([bytes]));
  for await (const _part of reader.unseal(MODEL_KEY));
}

export function ohttpTargets(): FuzzTarget<unknown>[] {
  const family = 'OHTTP and BHTTP' as const;
  return [
    target({
      family,
      name: 'decodeKeyConfig',
      input: mutatedBytes(KEY_CONFIGS),
      run: (b) => decodeKeyConfig(b),
      ciRuns: 12_000,
    }),
    target({
      family,
      name: 'decodeKeyConfigList',
      input: mutatedBytes(KEY_CONFIG_LISTS),
      run: (b) => decodeKeyConfigList(b),
      ciRuns: 12_000,
    }),
    target({
      family,
      name: 'decapsulateRequest',
      async: true,
      input: mutatedBytes(REQUESTS),
      run: (b) => decapsulateRequest(RFC.keys, b),
      ciRuns: 5_000,
    }),
    target({
      family,
      name: 'decapsulateResponse',
      async: true,
      input: mutatedBytes([RESPONSE]),
      run: (b) => exchange.context.decapsulateResponse(b),
      ciRuns: 5_000,
    }),
    target({
      family,
      name: 'ChunkFrameReader (chunk framing)',
      input: fc.tuple(mutatedBytes(CHUNK_SECTIONS), fc.integer({ min: 17, max: 300 })),
      run: ([b, max]) => {
        const reader = new ChunkFrameReader(new ByteQueue(), max);
        reader.push(b);
        while (reader.next() !== undefined);
        reader.finish();
      },
      ciRuns: 20_000,
    }),
    target({
      family,
      name: 'chunked request: frame and open',
      async: true,
      input: fc.tuple(mutatedBytes(CHUNKED_REQUESTS), fc.integer({ min: 1, max: 200 })),
      run: ([b, max]) => openChunkedRequest(b, max),
      ciRuns: 4_000,
    }),
    target({
      family,
      name: 'acceptChunkedOhttpRequest (streams)',
      async: true,
      input: fc.tuple(
        mutatedBytes(CHUNKED_REQUESTS),
        fc.array(fc.nat(), { maxLength: 5 }),
        fc.integer({ min: 1, max: 200 }),
      ),
      run: async ([b, cuts, maxChunkSize]) => {
        const accepted = await acceptChunkedOhttpRequest(DRAFT.keys, streamOf(split(b, cuts)), {
          maxChunkSize,
        });
        const reader = accepted.request.getReader();
        while (!(await reader.read()).done);
      },
      ciRuns: 1_500,
    }),
    target({
      family,
      name: 'decodeBhttpRequest',
      input: mutatedBytes(BHTTP_REQUESTS),
      run: (b) => decodeBhttpRequest(b),
      ciRuns: 22_000,
    }),
    target({
      family,
      name: 'decodeBhttpResponse',
      input: mutatedBytes(BHTTP_RESPONSES),
      run: (b) => decodeBhttpResponse(b),
      ciRuns: 22_000,
    }),
  ];
}

export function sealedModelTargets(): FuzzTarget<unknown>[] {
  const family = 'sealed models' as const;
  return [
    target({
      family,
      name: 'parseSealedModelPreamble',
      input: mutatedBytes(SEALED_MODELS.map((s) => s.subarray(0, SEALED_MODEL_PREAMBLE_LENGTH))),
      run: (b) => parseSealedModelPreamble(b),
      ciRuns: 25_000,
    }),
    target({
      family,
      name: 'parseSealedModelHeaderJson',
      input: mutatedBytes(SEALED_MODELS.map(headerJsonOf)),
      run: (b) => parseSealedModelHeaderJson(b),
      ciRuns: 30_000,
    }),
    target({
      family,
      name: 'openSealedModel + unseal (sized source)',
      async: true,
      input: mutatedBytes(SEALED_MODELS),
      run: (b) => unseal(b, true),
      ciRuns: 12_000,
    }),
    target({
      family,
      name: 'openSealedModel + unseal (stream source)',
      async: true,
      input: mutatedBytes(SEALED_MODELS),
      run: (b) => unseal(b, false),
      ciRuns: 8_000,
    }),
    target({
      family,
      name: 'parseModelKeyFile',
      input: mutatedBytes([utf8Encode(`${'ab'.repeat(32)}\n`), new Uint8Array(32).fill(5)]),
      run: (b) => parseModelKeyFile(b),
      ciRuns: 25_000,
    }),
  ];
}
