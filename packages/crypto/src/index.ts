export {
  base64ToBytes,
  bytesToBase64,
  bytesToBase64Url,
  bytesToHex,
  concatBytes,
  equalBytes,
  hexToBytes,
  toArrayBuffer,
  utf8Decode,
  utf8Encode,
} from './bytes.js';
export {
  encodeVarint,
  readVarint,
  tryReadVarint,
  varintLength,
  writeVarint,
  type DecodedVarint,
} from './varint.js';
/** Binary HTTP (RFC 9292): message model, encoder, hardened decoder, fetch-shaped converters. */
export {
  DEFAULT_BHTTP_LIMITS,
  type BhttpEncodeOptions,
  type BhttpField,
  type BhttpFraming,
  type BhttpInformationalResponse,
  type BhttpLayout,
  type BhttpLimits,
  type BhttpRequest,
  type BhttpResponse,
  type DecodedBhttp,
} from './bhttp-types.js';
export { encodeBhttpRequest, encodeBhttpResponse } from './bhttp-encode.js';
export { decodeBhttpRequest, decodeBhttpResponse } from './bhttp-decode.js';
export {
  bhttpRequestToFetch,
  bhttpResponseToFetch,
  fetchToBhttpRequest,
  fetchToBhttpResponse,
  type FetchRequestLike,
  type FetchResponseLike,
} from './bhttp-fetch.js';
/** Evidence binding: RFC 8785 canonical JSON and the SHA-384 report_data rule. */
export {
  canonicalJson,
  REPORT_DATA_LENGTH,
  reportDataMatches,
  runtimeDataHash,
  type JsonValue,
} from './jcs.js';
/** Sealed models (.tresor): header format, model keys, streaming seal and unseal. */
export {
  DEFAULT_CHUNK_SIZE,
  MAX_CHUNK_SIZE,
  MAX_HEADER_JSON_BYTES,
  MIN_CHUNK_SIZE,
  SEALED_MODEL_ALGORITHM,
  SEALED_MODEL_FORMAT_VERSION,
  SEALED_MODEL_MAGIC,
  chunkCount,
  type SealedModelHeader,
} from './sealed-model-format.js';
export { MODEL_KEY_LENGTH, ModelKey, importModelKeyFile, parseModelKeyFile } from './sealed-model-key.js';
export { nobleSha256, type Sha256Factory, type Sha256Hasher } from './sealed-model-sha256.js';
export {
  byteSourceFromBytes,
  byteSourceFromChunks,
  type ByteChunks,
  type ByteSource,
} from './sealed-model-source.js';
export { defaultKeyId, sealModel, sealModelBytes, type SealModelOptions } from './sealed-model-seal.js';
export {
  openSealedModel,
  unsealModelBytes,
  type AuthenticatedSealedModel,
  type SealedModelReader,
  type UnsealModelOptions,
} from './sealed-model-unseal.js';
/** HPKE (RFC 9180): suites by IANA id, key pairs that never print their private half. */
export {
  DEFAULT_HPKE_SUITE,
  HPKE_AEAD,
  HPKE_KDF,
  HPKE_KEM,
  HpkeKeyPair,
  HpkePublicKey,
  HpkeSuite,
  type HpkeAeadId,
  type HpkeKdfId,
  type HpkeKemId,
  type HpkeSuiteIds,
} from './hpke.js';
/** OHTTP key configurations (RFC 9458 §3) and the application/ohttp-keys list. */
export {
  DEFAULT_OHTTP_SYMMETRIC_ALGORITHMS,
  OHTTP_KEYS_MEDIA_TYPE,
  createGatewayKey,
  decodeKeyConfig,
  decodeKeyConfigList,
  encodeKeyConfig,
  encodeKeyConfigList,
  gatewayKeysById,
  type OhttpGatewayKey,
  type OhttpGatewayKeys,
  type OhttpKeyConfig,
  type OhttpSymmetricAlgorithm,
} from './ohttp-keys.js';
/** Oblivious HTTP (RFC 9458 §4): one sealed request, one sealed response. */
export type { OhttpClientOptions } from './ohttp-context.js';
export { REQUEST_HEADER_LENGTH } from './ohttp-context.js';
export type { OhttpResponseOptions } from './ohttp-response-key.js';
/** The symmetric backend of OHTTP responses: WebCrypto by default, node:crypto on servers. */
export {
  webCryptoOhttpAead,
  type MaybePromise,
  type OhttpAeadBackend,
  type OhttpAeadKey,
  type OhttpAeadOptions,
} from './ohttp-aead.js';
export {
  OHTTP_REQUEST_MEDIA_TYPE,
  OHTTP_RESPONSE_MEDIA_TYPE,
  OhttpClientContext,
  OhttpResponder,
  decapsulateRequest,
  encapsulateRequest,
  type OhttpClientRequest,
  type OhttpGatewayRequest,
} from './ohttp.js';
/** Chunked OHTTP (draft-ietf-ohai-chunked-ohttp-08): per-chunk API and WHATWG streams. */
export {
  DEFAULT_OHTTP_CHUNK_SIZE,
  OHTTP_CHUNKED_REQUEST_MEDIA_TYPE,
  OHTTP_CHUNKED_RESPONSE_MEDIA_TYPE,
  beginChunkedOhttpClientExchange,
  beginChunkedOhttpGatewayExchange,
  chunkedOhttpRequestHeaderLength,
  openChunkNow,
  sealChunkNow,
  type ChunkedOhttpClientExchange,
  type ChunkedOhttpGatewayExchange,
  type ChunkedOhttpGatewayOptions,
  type ChunkedOhttpResponseStart,
  type OhttpChunkLimits,
  type OhttpChunkOpener,
  type OhttpChunkSealer,
} from './chunked-ohttp.js';
/** Chunk framing parsed from pieces as they arrive (for relays that drive the per-chunk API). */
export { ByteQueue, ChunkFrameReader } from './chunked-ohttp-framing.js';
export {
  acceptChunkedOhttpRequest,
  createChunkedOhttpClient,
  type ChunkedOhttpClient,
  type ChunkedOhttpClientOptions,
  type ChunkedOhttpGatewayRequest,
  type OhttpChunkSizeOptions,
} from './chunked-ohttp-streams.js';
