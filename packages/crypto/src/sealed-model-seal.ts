import { TresorError } from '@tresor/protocol';
import { bytesToHex, equalBytes } from './bytes.js';
import { ChunkPipeline, chunkNonce, encryptChunk, pipelineDepth } from './sealed-model-chunks.js';
import {
  DEFAULT_CHUNK_SIZE,
  NONCE_PREFIX_LENGTH,
  SALT_LENGTH,
  SEALED_MODEL_ALGORITHM,
  SEALED_MODEL_FORMAT_VERSION,
  chunkCount,
  chunkPlaintextLength,
  encodeSealedModelHeader,
  type SealedModelHeader,
} from './sealed-model-format.js';
import type { ModelKey, SealedModelFileKeys } from './sealed-model-key.js';
import { nobleSha256, type Sha256Factory } from './sealed-model-sha256.js';
import { byteSourceFromBytes, joinBytes, type ByteSource } from './sealed-model-source.js';

/** What a sealer decides before it reads the plaintext. */
export interface SealPlanOptions {
  readonly key: ModelKey;
  /** Length of the plaintext that will be sealed. */
  readonly plaintextLength: number;
  /** Name under which the key is released (e.g. `kbs:///repo/type/tag`); default `key-fingerprint:<hex>`. */
  readonly keyId?: string;
  readonly chunkSize?: number;
  readonly metadata?: Readonly<Record<string, string>>;
  /**
   * FOR KNOWN-ANSWER TESTS ONLY: the source of the per-file salt and nonce prefix. Reusing them
   * under one key reuses GCM nonces, which forfeits confidentiality and integrity; production
   * code never sets this.
   */
  readonly randomBytes?: (length: number) => Uint8Array;
}

export interface SealModelOptions extends SealPlanOptions {
  /**
   * SHA-256 of that plaintext, from a first pass over it: the header comes first and every
   * chunk's AAD covers it, so the digest must be known before the first chunk is sealed.
   * Sealing hashes the plaintext again and refuses (SEALED_MODEL_INPUT_CHANGED) on a mismatch.
   */
  readonly plaintextSha256: Uint8Array;
  readonly sha256?: Sha256Factory;
}

/**
 * Everything about a file being sealed except the plaintext digest: the header fields, the
 * per-file randomness and the keys derived from it. A sealer that learns the digest only after
 * encrypting (the Node file sealer) fixes these first and builds the header block at the end.
 */
export interface SealPlan {
  readonly header: Omit<SealedModelHeader, 'plaintextSha256'>;
  readonly noncePrefix: Uint8Array;
  readonly keys: SealedModelFileKeys;
  /** Length of the header block (preamble and JSON): the digest is fixed-width hex, so it is known now. */
  readonly headerLength: number;
}

/** The bytes that precede the chunks, and the associated data every chunk authenticates. */
export interface SealedHeaderBlock {
  readonly header: SealedModelHeader;
  /** Preamble and header JSON: what the MAC covers and the AAD hashes. */
  readonly headerBytes: Uint8Array<ArrayBuffer>;
  readonly mac: Uint8Array<ArrayBuffer>;
  /** SHA-256 of `headerBytes`: the associated data of every chunk. */
  readonly aad: Uint8Array<ArrayBuffer>;
}

const systemRandom = (length: number): Uint8Array => crypto.getRandomValues(new Uint8Array(length));

/** The key id written when the caller names none: derived from the key, never the key itself. */
export function defaultKeyId(key: ModelKey): string {
  return `key-fingerprint:${key.fingerprint}`;
}

/**
 * Seals a model: yields the header block, then each sealed chunk, and returns the header.
 * Memory stays at a few chunks whatever the model size. If the source delivers other bytes than
 * `plaintextLength`/`plaintextSha256` declare, it throws SEALED_MODEL_INPUT_CHANGED before
 * yielding the last chunks, so the output can never pass for a complete sealed file.
 */
export async function* sealModel(
  source: ByteSource,
  options: SealModelOptions,
): AsyncGenerator<Uint8Array, SealedModelHeader, undefined> {
  if (options.plaintextSha256.length !== 32) {
    throw new TresorError('USAGE_INVALID', 'cannot seal: plaintextSha256 must be 32 bytes');
  }
  const plan = await planSeal(options);
  const { header, headerBytes, mac, aad } = await sealHeaderBlock(plan, options.plaintextSha256);
  const { keys, noncePrefix } = plan;
  yield headerBytes;
  yield mac;

  const hasher = (options.sha256 ?? nobleSha256)();
  const pipeline = new ChunkPipeline(pipelineDepth(header.chunkSize));
  const count = chunkCount(header.plaintextLength, header.chunkSize);
  for (let index = 0; index < count; index++) {
    const expected = chunkPlaintextLength(header, index);
    const plaintext = await source.read(expected);
    if (plaintext.length !== expected) {
      throw inputChanged(`it ended after ${String(index * header.chunkSize + plaintext.length)} bytes`);
    }
    const last = index === count - 1;
    // Start AES-GCM first: it runs in the thread pool while this thread hashes the same bytes.
    pipeline.push(encryptChunk(keys.chunkKey, chunkNonce(noncePrefix, index, last), aad, plaintext));
    hasher.update(plaintext);
    if (last) {
      if ((await source.read(1)).length !== 0) throw inputChanged('it grew');
      if (!equalBytes(hasher.digest(), options.plaintextSha256)) throw inputChanged('its SHA-256 changed');
      while (pipeline.size > 0) yield await pipeline.take();
    } else if (pipeline.full) {
      yield await pipeline.take();
    }
  }
  return header;
}

/** A zero digest with the width of a real one, to size the header before the digest is known. */
const DIGEST_PLACEHOLDER = new Uint8Array(32);

/**
 * Draws the per-file salt and nonce prefix, derives the file keys and checks the header fields
 * (USAGE_INVALID for anything a reader would refuse), before any plaintext is read.
 */
export async function planSeal(options: SealPlanOptions): Promise<SealPlan> {
  const random = options.randomBytes ?? systemRandom;
  const salt = random(SALT_LENGTH);
  const noncePrefix = random(NONCE_PREFIX_LENGTH);
  const header: SealPlan['header'] = {
    version: SEALED_MODEL_FORMAT_VERSION,
    algorithm: SEALED_MODEL_ALGORITHM,
    keyId: options.keyId ?? defaultKeyId(options.key),
    keyFingerprint: options.key.fingerprint,
    chunkSize: options.chunkSize ?? DEFAULT_CHUNK_SIZE,
    plaintextLength: options.plaintextLength,
    salt: bytesToHex(salt),
    noncePrefix: bytesToHex(noncePrefix),
    metadata: options.metadata ?? {},
  };
  const headerLength = encodeSealedModelHeader({
    ...header,
    plaintextSha256: bytesToHex(DIGEST_PLACEHOLDER),
  }).length;
  const keys = await options.key.deriveFileKeys(salt);
  return { header, noncePrefix, keys, headerLength };
}

/** The header block, its MAC and the chunk AAD, once the plaintext digest is known. */
export async function sealHeaderBlock(
  plan: SealPlan,
  plaintextSha256: Uint8Array,
): Promise<SealedHeaderBlock> {
  if (plaintextSha256.length !== DIGEST_PLACEHOLDER.length) {
    throw new TresorError('INTERNAL_ERROR', 'a sealed model digest must be 32 bytes');
  }
  const header: SealedModelHeader = { ...plan.header, plaintextSha256: bytesToHex(plaintextSha256) };
  const headerBytes = encodeSealedModelHeader(header);
  const [mac, aad] = await Promise.all([
    crypto.subtle.sign('HMAC', plan.keys.headerMacKey, headerBytes),
    crypto.subtle.digest('SHA-256', headerBytes),
  ]);
  return { header, headerBytes, mac: new Uint8Array(mac), aad: new Uint8Array(aad) };
}

/** SEALED_MODEL_INPUT_CHANGED: the plaintext is not what the header describes any more. */
export function inputChanged(what: string): TresorError {
  return new TresorError(
    'SEALED_MODEL_INPUT_CHANGED',
    `the plaintext changed while it was being sealed: ${what}, so the length and SHA-256 in the header no longer match`,
  );
}

/** Seals a model held in memory (small models, tests); computes the digest itself. */
export async function sealModelBytes(
  plaintext: Uint8Array,
  options: Omit<SealModelOptions, 'plaintextLength' | 'plaintextSha256'>,
): Promise<Uint8Array<ArrayBuffer>> {
  const hasher = (options.sha256 ?? nobleSha256)();
  hasher.update(plaintext);
  const parts: Uint8Array[] = [];
  const sealing = sealModel(byteSourceFromBytes(plaintext), {
    ...options,
    plaintextLength: plaintext.length,
    plaintextSha256: hasher.digest(),
  });
  for await (const part of sealing) parts.push(part);
  return joinBytes(parts);
}
