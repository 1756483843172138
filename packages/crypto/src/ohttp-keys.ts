import { TresorError } from '@tresor/protocol';
import { concatBytes } from './bytes.js';
import {
  HPKE_AEAD,
  HPKE_KDF,
  HpkeSuite,
  kemSizes,
  requireKem,
  type HpkeKemId,
  type HpkeKeyPair,
} from './hpke.js';

/**
 * OHTTP key configurations (RFC 9458 §3.1) and the `application/ohttp-keys` list (RFC 9458 §3.2),
 * which the gateway serves at `/.well-known/ohttp-gateway` (RFC 9540).
 */

/** Media type of a key configuration list. */
export const OHTTP_KEYS_MEDIA_TYPE = 'application/ohttp-keys';

/** One (KDF, AEAD) pair a gateway accepts with a key (RFC 9458 §3.1 "HPKE Symmetric Algorithms"). */
export interface OhttpSymmetricAlgorithm {
  readonly kdf: number;
  readonly aead: number;
}

/**
 * A decoded key configuration. Symmetric algorithms keep their wire ids, known or not: a client
 * picks among those it supports (RFC 9458 §3).
 */
export interface OhttpKeyConfig {
  /** 0..255, chosen by the gateway; it names the key in every request header. */
  readonly keyId: number;
  readonly kem: HpkeKemId;
  /** Raw public key, Npk bytes for `kem`. */
  readonly publicKey: Uint8Array;
  /** At least one pair, in the gateway's order. */
  readonly symmetricAlgorithms: readonly OhttpSymmetricAlgorithm[];
}

/** AES-256-GCM with HKDF-SHA256: what a Tresor gateway offers unless configured otherwise. */
export const DEFAULT_OHTTP_SYMMETRIC_ALGORITHMS: readonly OhttpSymmetricAlgorithm[] = Object.freeze([
  Object.freeze({ kdf: HPKE_KDF.HKDF_SHA256, aead: HPKE_AEAD.AES_256_GCM }),
]);

/** Key id (1) + KEM id (2) + algorithms length (2): the fixed part around the public key. */
const FIXED_LENGTH = 5;
/** §3.1: "HPKE Symmetric Algorithms Length (16) = 4..65532". */
const MAX_ALGORITHMS_LENGTH = 65532;

function malformed(message: string, offset?: number): TresorError {
  return new TresorError(
    'OHTTP_KEY_CONFIG_MALFORMED',
    message,
    offset === undefined ? {} : { details: { offset } },
  );
}

function isUint(value: number, bits: 8 | 16): boolean {
  return Number.isInteger(value) && value >= 0 && value < 2 ** bits;
}

/** Encodes one key configuration (RFC 9458 §3.1), refusing values that would not decode. */
export function encodeKeyConfig(config: OhttpKeyConfig): Uint8Array {
  if (!isUint(config.keyId, 8)) throw malformed(`key id ${config.keyId} is not an 8-bit value`);
  const kem = requireKem(config.kem);
  const { publicKeySize } = kemSizes(kem);
  if (config.publicKey.length !== publicKeySize) {
    throw new TresorError(
      'HPKE_KEY_INVALID',
      `the public key for KEM 0x${kem.toString(16)} must be ${publicKeySize} bytes, not ${config.publicKey.length}`,
    );
  }
  const algorithmsLength = config.symmetricAlgorithms.length * 4;
  if (algorithmsLength === 0 || algorithmsLength > MAX_ALGORITHMS_LENGTH) {
    throw malformed('a key configuration needs 1 to 16383 symmetric algorithms');
  }
  const out = new Uint8Array(FIXED_LENGTH + publicKeySize + algorithmsLength);
  const view = new DataView(out.buffer);
  out[0] = config.keyId;
  view.setUint16(1, kem);
  out.set(config.publicKey, 3);
  let offset = 3 + publicKeySize;
  view.setUint16(offset, algorithmsLength);
  offset += 2;
  for (const { kdf, aead } of config.symmetricAlgorithms) {
    if (!isUint(kdf, 16) || !isUint(aead, 16)) throw malformed('KDF and AEAD ids are 16-bit values');
    view.setUint16(offset, kdf);
    view.setUint16(offset + 2, aead);
    offset += 4;
  }
  return out;
}

/**
 * Decodes exactly one key configuration (no length prefix) spanning all of `bytes`.
 * HPKE_SUITE_UNSUPPORTED when its KEM is unknown (the public key length then cannot be known);
 * OHTTP_KEY_CONFIG_MALFORMED for truncation, bad lengths or trailing bytes.
 */
export function decodeKeyConfig(bytes: Uint8Array): OhttpKeyConfig {
  return readKeyConfig(bytes, 0, bytes.length);
}

function readKeyConfig(bytes: Uint8Array, start: number, end: number): OhttpKeyConfig {
  if (end - start < 3) throw malformed('key configuration truncated before its KEM id', start);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const keyId = bytes[start]!;
  const kem = requireKem(view.getUint16(start + 1));
  const { publicKeySize } = kemSizes(kem);
  let offset = start + 3;
  if (end - offset < publicKeySize + 2)
    throw malformed('key configuration truncated in its public key', offset);
  const publicKey = bytes.slice(offset, offset + publicKeySize);
  offset += publicKeySize;
  const algorithmsLength = view.getUint16(offset);
  offset += 2;
  if (algorithmsLength === 0 || algorithmsLength % 4 !== 0 || algorithmsLength > MAX_ALGORITHMS_LENGTH) {
    throw malformed(
      `symmetric algorithms length ${algorithmsLength} is not a non-zero multiple of 4 (RFC 9458 §3.1)`,
      offset - 2,
    );
  }
  if (algorithmsLength > end - offset) {
    throw malformed('symmetric algorithms length runs past the end of the configuration', offset - 2);
  }
  const symmetricAlgorithms: OhttpSymmetricAlgorithm[] = [];
  for (const stop = offset + algorithmsLength; offset < stop; offset += 4) {
    symmetricAlgorithms.push(
      Object.freeze({ kdf: view.getUint16(offset), aead: view.getUint16(offset + 2) }),
    );
  }
  if (offset !== end) throw malformed(`${end - offset} unexpected bytes after the key configuration`, offset);
  return Object.freeze({ keyId, kem, publicKey, symmetricAlgorithms: Object.freeze(symmetricAlgorithms) });
}

/** Encodes an `application/ohttp-keys` list: each configuration behind a 2-byte length. */
export function encodeKeyConfigList(configs: readonly OhttpKeyConfig[]): Uint8Array {
  if (configs.length === 0)
    throw malformed('an application/ohttp-keys list needs at least one configuration');
  const parts: Uint8Array[] = [];
  for (const config of configs) {
    const encoded = encodeKeyConfig(config);
    if (encoded.length > 0xffff)
      throw malformed('a key configuration longer than 65535 bytes cannot be listed');
    parts.push(new Uint8Array([encoded.length >> 8, encoded.length & 0xff]), encoded);
  }
  return concatBytes(...parts);
}

/**
 * Decodes an `application/ohttp-keys` list. Any encoding error rejects the whole list, as
 * RFC 9458 §3.2 requires ("Clients MUST discard incorrectly encoded key configuration
 * collections"). Configurations for a KEM Tresor does not support are skipped (their length
 * prefix delimits them); if none is left, HPKE_SUITE_UNSUPPORTED.
 */
export function decodeKeyConfigList(bytes: Uint8Array): OhttpKeyConfig[] {
  if (bytes.length === 0) throw malformed('the application/ohttp-keys list is empty');
  const configs: OhttpKeyConfig[] = [];
  let unsupported: TresorError | undefined;
  let offset = 0;
  while (offset < bytes.length) {
    if (bytes.length - offset < 2) throw malformed('truncated key configuration length', offset);
    const length = (bytes[offset]! << 8) | bytes[offset + 1]!;
    offset += 2;
    if (length === 0) throw malformed('zero-length key configuration', offset - 2);
    if (length > bytes.length - offset) {
      throw malformed(`key configuration length ${length} runs past the end of the list`, offset - 2);
    }
    try {
      configs.push(readKeyConfig(bytes, offset, offset + length));
    } catch (err) {
      if (!(err instanceof TresorError) || err.code !== 'HPKE_SUITE_UNSUPPORTED') throw err;
      unsupported = err;
    }
    offset += length;
  }
  if (configs.length === 0 && unsupported !== undefined) {
    throw new TresorError(
      'HPKE_SUITE_UNSUPPORTED',
      `no key configuration uses a supported KEM: ${unsupported.message}`,
    );
  }
  return configs;
}

/** A gateway's key: the configuration it publishes and the key pair that opens requests to it. */
export interface OhttpGatewayKey {
  readonly config: OhttpKeyConfig;
  readonly keyPair: HpkeKeyPair;
}

/** The keys a gateway holds, by key id. */
export type OhttpGatewayKeys = ReadonlyMap<number, OhttpGatewayKey>;

/**
 * Builds the published configuration for `keyPair` under `keyId`. Every symmetric algorithm must
 * be one Tresor can seal with (HPKE_SUITE_UNSUPPORTED otherwise), so a gateway never advertises
 * a suite it would then refuse.
 */
export function createGatewayKey(
  keyId: number,
  keyPair: HpkeKeyPair,
  symmetricAlgorithms: readonly OhttpSymmetricAlgorithm[] = DEFAULT_OHTTP_SYMMETRIC_ALGORITHMS,
): OhttpGatewayKey {
  for (const { kdf, aead } of symmetricAlgorithms) {
    if (!HpkeSuite.of({ kem: keyPair.kem, kdf, aead }).canEncrypt) {
      throw new TresorError('HPKE_SUITE_UNSUPPORTED', 'OHTTP needs an AEAD that encrypts, not export-only');
    }
  }
  const config: OhttpKeyConfig = Object.freeze({
    keyId,
    kem: keyPair.kem,
    publicKey: keyPair.publicKey.toBytes(),
    symmetricAlgorithms: Object.freeze(symmetricAlgorithms.map((a) => Object.freeze({ ...a }))),
  });
  encodeKeyConfig(config); // refuses a key id or algorithm list that could not be published
  return Object.freeze({ config, keyPair });
}

/** Indexes gateway keys by key id, refusing two keys with one id (CONFIG_INVALID). */
export function gatewayKeysById(keys: Iterable<OhttpGatewayKey>): OhttpGatewayKeys {
  const byId = new Map<number, OhttpGatewayKey>();
  for (const key of keys) {
    if (byId.has(key.config.keyId)) {
      throw new TresorError('CONFIG_INVALID', `two OHTTP gateway keys share key id ${key.config.keyId}`);
    }
    byId.set(key.config.keyId, key);
  }
  return byId;
}
