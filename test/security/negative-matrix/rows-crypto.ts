import {
  acceptChunkedOhttpRequest,
  beginChunkedOhttpClientExchange,
  concatBytes,
  createGatewayKey,
  decapsulateRequest,
  decodeBhttpRequest,
  decodeKeyConfig,
  encapsulateRequest,
  encodeKeyConfig,
  gatewayKeysById,
  HpkeKeyPair,
  importModelKeyFile,
  ModelKey,
  openSealedModel,
  byteSourceFromBytes,
  sealModelBytes,
  unsealModelBytes,
  utf8Encode,
  type OhttpGatewayKeys,
  type OhttpKeyConfig,
} from '@tresor/crypto';
import { refusal, type Attack, type Control } from './attack.js';

/**
 * Sealed models and OHTTP at the crypto layer: the formats the gateway and serving enclaves will
 * parse, attacked directly (the gateway's HTTP-level rows are in rows-pending.ts until it lands).
 */

// ── Sealed models ─────────────────────────────────────────────────────────────────────────────────

const KEY = await ModelKey.import(new Uint8Array(32).fill(1));
const OTHER_KEY = await ModelKey.import(new Uint8Array(32).fill(2));
const CHUNK = 1024;
const PLAINTEXT = new Uint8Array(4 * CHUNK + 100).map((_, i) => i & 0xff);
const SEALED = await sealModelBytes(PLAINTEXT, { key: KEY, chunkSize: CHUNK, metadata: { name: 'matrix' } });
const JSON_LENGTH = new DataView(SEALED.buffer, SEALED.byteOffset).getUint32(9);
const CHUNKS_AT = 13 + JSON_LENGTH + 32;
const SEALED_CHUNK = CHUNK + 16;

function edited(f: (copy: Uint8Array) => void): Uint8Array {
  const copy = SEALED.slice();
  f(copy);
  return copy;
}
const chunkAt = (bytes: Uint8Array, i: number): Uint8Array =>
  bytes.slice(CHUNKS_AT + i * SEALED_CHUNK, CHUNKS_AT + (i + 1) * SEALED_CHUNK);

const unseal = (bytes: Uint8Array, key = KEY) => refusal(() => unsealModelBytes(bytes, key));

const sealedModels = 'sealed models' as const;

export const sealedModelControls: readonly Control[] = [
  { component: sealedModels, what: 'the sealed model unseals with its key', run: () => unseal(SEALED) },
];

export const sealedModelAttacks: readonly Attack[] = [
  {
    component: sealedModels,
    attack: 'not a sealed model (magic changed)',
    expect: 'SEALED_MODEL_MALFORMED',
    run: () =>
      unseal(
        edited((c) => {
          c[0] = c[0]! ^ 0xff;
        }),
      ),
  },
  {
    component: sealedModels,
    attack: 'format version from the future',
    expect: 'SEALED_MODEL_VERSION_UNSUPPORTED',
    run: () =>
      unseal(
        edited((c) => {
          c[8] = 0x7f;
        }),
      ),
  },
  {
    component: sealedModels,
    attack: 'unsealed with another model key',
    expect: 'SEALED_MODEL_WRONG_KEY',
    run: () => unseal(SEALED, OTHER_KEY),
  },
  {
    component: sealedModels,
    attack: 'header metadata edited (name "matrix" → "matriy")',
    expect: 'SEALED_MODEL_TAMPERED',
    run: () =>
      unseal(
        edited((c) => {
          const at = Buffer.from(c).indexOf('matrix');
          c[at + 5] = 'y'.charCodeAt(0);
        }),
      ),
  },
  {
    component: sealedModels,
    attack: 'one bit flipped in a chunk',
    expect: 'SEALED_MODEL_TAMPERED',
    run: () =>
      unseal(
        edited((c) => {
          c[CHUNKS_AT + SEALED_CHUNK + 5] = c[CHUNKS_AT + SEALED_CHUNK + 5]! ^ 1;
        }),
      ),
  },
  {
    component: sealedModels,
    attack: 'two chunks swapped (reordered)',
    expect: 'SEALED_MODEL_TAMPERED',
    run: () =>
      unseal(
        edited((c) => {
          const [a, b] = [chunkAt(SEALED, 1), chunkAt(SEALED, 2)];
          c.set(b, CHUNKS_AT + SEALED_CHUNK);
          c.set(a, CHUNKS_AT + 2 * SEALED_CHUNK);
        }),
      ),
  },
  {
    component: sealedModels,
    attack: 'a chunk duplicated over the next one',
    expect: 'SEALED_MODEL_TAMPERED',
    run: () =>
      unseal(
        edited((c) => {
          c.set(chunkAt(SEALED, 0), CHUNKS_AT + SEALED_CHUNK);
        }),
      ),
  },
  {
    component: sealedModels,
    attack: 'file truncated (last chunk dropped)',
    expect: 'SEALED_MODEL_TRUNCATED',
    run: () => unseal(SEALED.slice(0, CHUNKS_AT + 4 * SEALED_CHUNK)),
  },
  {
    component: sealedModels,
    attack: 'bytes appended after the last chunk',
    expect: 'SEALED_MODEL_TAMPERED',
    run: () => unseal(concatBytes(SEALED, new Uint8Array(16))),
  },
  {
    component: sealedModels,
    attack: 'header length field at its maximum (allocation attack)',
    expect: 'SEALED_MODEL_MALFORMED',
    run: () =>
      refusal(() =>
        openSealedModel(
          byteSourceFromBytes(
            edited((c) => {
              c.fill(0xff, 9, 13);
            }),
          ),
        ),
      ),
  },
  {
    component: sealedModels,
    attack: 'model key file of the wrong length',
    expect: 'SEALED_MODEL_KEY_INVALID',
    run: () => refusal(() => importModelKeyFile(utf8Encode('ab'.repeat(31)))),
  },
];

// ── OHTTP ────────────────────────────────────────────────────────────────────────────────────────

interface Gateway {
  readonly config: OhttpKeyConfig;
  readonly keys: OhttpGatewayKeys;
}
async function gateway(keyId: number): Promise<Gateway> {
  const key = createGatewayKey(keyId, await HpkeKeyPair.generate());
  return { config: key.config, keys: gatewayKeysById([key]) };
}
const GATEWAY = await gateway(1);
/** Another gateway key under the same key id: a request sealed to it is not for this gateway. */
const IMPOSTOR = await gateway(1);
const ROTATED = await gateway(7);
const BHTTP_GET = Uint8Array.from(Buffer.from('00034745540568747470730b6578616d706c652e636f6d012f', 'hex'));

async function sealedRequest(to: Gateway = GATEWAY): Promise<Uint8Array> {
  return (await encapsulateRequest(to.config, BHTTP_GET)).encapsulatedRequest;
}
const decapsulate = (bytes: Uint8Array) => refusal(() => decapsulateRequest(GATEWAY.keys, bytes));

/** A chunked request split into its parts: header, each framed chunk, the framed final chunk. */
async function chunkedRequest(): Promise<{ header: Uint8Array; chunks: Uint8Array[]; final: Uint8Array }> {
  const client = await beginChunkedOhttpClientExchange(GATEWAY.config);
  const chunks = [];
  for (let i = 0; i < 3; i++)
    chunks.push(await client.requestSealer.sealChunk(new Uint8Array(20).fill(i + 1)));
  return {
    header: client.header,
    chunks,
    final: await client.requestSealer.sealFinalChunk(new Uint8Array(3)),
  };
}
async function acceptChunked(parts: readonly Uint8Array[], maxChunkSize = 64): Promise<void> {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(concatBytes(...parts));
      controller.close();
    },
  });
  const accepted = await acceptChunkedOhttpRequest(GATEWAY.keys, body, { maxChunkSize });
  const reader = accepted.request.getReader();
  while (!(await reader.read()).done);
}

const ohttp = 'OHTTP (crypto layer)' as const;

export const ohttpControls: readonly Control[] = [
  {
    component: ohttp,
    what: 'a sealed request decapsulates',
    run: async () => decapsulate(await sealedRequest()),
  },
  {
    component: ohttp,
    what: 'a chunked request streams through',
    run: async () => {
      const r = await chunkedRequest();
      return refusal(() => acceptChunked([r.header, ...r.chunks, r.final]));
    },
  },
];

export const ohttpAttacks: readonly Attack[] = [
  {
    component: ohttp,
    attack: 'request for a key id the gateway does not hold (rotated key)',
    expect: 'OHTTP_KEY_ID_UNKNOWN',
    run: async () => decapsulate(await sealedRequest(ROTATED)),
  },
  {
    component: ohttp,
    attack: 'request sealed to another key under the same key id',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: async () => decapsulate(await sealedRequest(IMPOSTOR)),
  },
  {
    component: ohttp,
    attack: 'request ciphertext tampered (one bit)',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: async () => {
      const r = await sealedRequest();
      r[r.length - 20] = r[r.length - 20]! ^ 1;
      return decapsulate(r);
    },
  },
  {
    component: ohttp,
    attack: 'request truncated inside its header',
    expect: 'OHTTP_MESSAGE_MALFORMED',
    run: async () => decapsulate((await sealedRequest()).slice(0, 5)),
  },
  {
    component: ohttp,
    attack: 'request naming an AEAD the key is not offered with',
    expect: 'HPKE_SUITE_UNSUPPORTED',
    run: async () => {
      const r = await sealedRequest();
      r[6] = 0x7f; // hdr = key_id(1) kem(2) kdf(2) aead(2)
      return decapsulate(r);
    },
  },
  {
    component: ohttp,
    attack: 'response tampered (one bit)',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: async () => {
      const client = await encapsulateRequest(GATEWAY.config, BHTTP_GET);
      const opened = await decapsulateRequest(GATEWAY.keys, client.encapsulatedRequest);
      const response = await opened.responder.encapsulateResponse(Uint8Array.from([1, 0x40, 0xc8]));
      response[response.length - 1] = response[response.length - 1]! ^ 0x80;
      return refusal(() => client.context.decapsulateResponse(response));
    },
  },
  {
    component: ohttp,
    attack: "response of one exchange opened as another's (cross-exchange splice)",
    expect: 'OHTTP_DECRYPT_FAILED',
    run: async () => {
      const a = await encapsulateRequest(GATEWAY.config, BHTTP_GET);
      const b = await encapsulateRequest(GATEWAY.config, BHTTP_GET);
      const opened = await decapsulateRequest(GATEWAY.keys, a.encapsulatedRequest);
      const response = await opened.responder.encapsulateResponse(Uint8Array.from([1, 0x40, 0xc8]));
      return refusal(() => b.context.decapsulateResponse(response));
    },
  },
  {
    component: ohttp,
    attack: 'response truncated below nonce and tag',
    expect: 'OHTTP_MESSAGE_MALFORMED',
    run: async () => {
      const client = await encapsulateRequest(GATEWAY.config, BHTTP_GET);
      return refusal(() => client.context.decapsulateResponse(new Uint8Array(20)));
    },
  },
  {
    component: ohttp,
    attack: 'key configuration truncated',
    expect: 'OHTTP_KEY_CONFIG_MALFORMED',
    run: () => refusal(() => decodeKeyConfig(encodeKeyConfig(GATEWAY.config).slice(0, 20))),
  },
  {
    component: ohttp,
    attack: 'chunked request cut before its final chunk (truncation)',
    expect: 'OHTTP_STREAM_TRUNCATED',
    run: async () => {
      const r = await chunkedRequest();
      return refusal(() => acceptChunked([r.header, ...r.chunks]));
    },
  },
  {
    component: ohttp,
    attack: 'chunked request with two chunks reordered',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: async () => {
      const r = await chunkedRequest();
      return refusal(() => acceptChunked([r.header, r.chunks[1]!, r.chunks[0]!, r.chunks[2]!, r.final]));
    },
  },
  {
    component: ohttp,
    attack: 'chunked request with a chunk duplicated (replayed within the stream)',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: async () => {
      const r = await chunkedRequest();
      return refusal(() =>
        acceptChunked([r.header, r.chunks[0]!, r.chunks[0]!, r.chunks[1]!, r.chunks[2]!, r.final]),
      );
    },
  },
  {
    component: ohttp,
    attack: 'chunked request with the final chunk moved first',
    expect: 'OHTTP_DECRYPT_FAILED',
    run: async () => {
      const r = await chunkedRequest();
      // Under a limit large enough that the moved chunk is not refused for its size.
      return refusal(() => acceptChunked([r.header, r.final, ...r.chunks], 1024));
    },
  },
  {
    component: ohttp,
    attack: 'oversized frame: a chunk declaring 2^30 bytes',
    expect: 'OHTTP_CHUNK_TOO_LARGE',
    run: async () => {
      const r = await chunkedRequest();
      return refusal(() =>
        acceptChunked([r.header, Uint8Array.from([0xc0, 0, 0, 0, 0x40, 0, 0, 0]), new Uint8Array(64)]),
      );
    },
  },
  {
    component: ohttp,
    attack: 'oversized frame: chunk above the gateway limit',
    expect: 'OHTTP_CHUNK_TOO_LARGE',
    run: async () => {
      const r = await chunkedRequest();
      return refusal(() => acceptChunked([r.header, ...r.chunks, r.final], 8));
    },
  },
  {
    component: ohttp,
    attack: 'Binary HTTP request with a length past its end',
    expect: 'BHTTP_MALFORMED',
    run: () => refusal(() => decodeBhttpRequest(concatBytes(BHTTP_GET.slice(0, 2), Uint8Array.from([0x3f])))),
  },
];
