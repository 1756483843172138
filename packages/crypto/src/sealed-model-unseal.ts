import { TresorError } from '@tresor/protocol';
import { bytesToHex, concatBytes, hexToBytes } from './bytes.js';
import { ChunkPipeline, chunkNonce, decryptChunk, pipelineDepth } from './sealed-model-chunks.js';
import {
  GCM_TAG_LENGTH,
  HEADER_MAC_LENGTH,
  SEALED_MODEL_PREAMBLE_LENGTH,
  chunkCount,
  chunkPlaintextLength,
  parseSealedModelHeaderJson,
  parseSealedModelPreamble,
  sealedModelSize,
  type SealedModelHeader,
} from './sealed-model-format.js';
import type { ModelKey } from './sealed-model-key.js';
import { nobleSha256, type Sha256Factory } from './sealed-model-sha256.js';
import { byteSourceFromBytes, joinBytes, type ByteSource } from './sealed-model-source.js';

export interface UnsealModelOptions {
  readonly sha256?: Sha256Factory;
}

/** What decrypting the chunks of an authenticated sealed model needs. */
export interface AuthenticatedSealedModel {
  /** AES-256-GCM key of the chunks (non-extractable). */
  readonly chunkKey: CryptoKey;
  /** SHA-256 of the header bytes: every chunk's associated data. */
  readonly aad: Uint8Array<ArrayBuffer>;
  readonly noncePrefix: Uint8Array;
  /** Offset of chunk 0 in the sealed file: header bytes and MAC come first. */
  readonly chunksOffset: number;
}

/**
 * Reads and validates the header of a sealed model, without a key (what `tresor model inspect`
 * shows). Nothing in it is authenticated until `unseal()` has checked the header MAC.
 */
export async function openSealedModel(source: ByteSource): Promise<SealedModelReader> {
  const preamble = await source.read(SEALED_MODEL_PREAMBLE_LENGTH);
  // Refuses a bad magic, version or header length before the header is read or allocated.
  const { headerLength } = parseSealedModelPreamble(preamble);
  const json = await source.read(headerLength);
  if (json.length < headerLength) {
    throw new TresorError('SEALED_MODEL_TRUNCATED', 'the file ends inside the sealed model header');
  }
  const header = parseSealedModelHeaderJson(json);
  const mac = await source.read(HEADER_MAC_LENGTH);
  if (mac.length < HEADER_MAC_LENGTH) {
    throw new TresorError('SEALED_MODEL_TRUNCATED', 'the file ends inside the sealed model header MAC');
  }
  return new SealedModelReader(header, concatBytes(preamble, json) as Uint8Array<ArrayBuffer>, mac, source);
}

/** A sealed model whose header has been parsed; `unseal()` authenticates and decrypts the rest. */
export class SealedModelReader {
  readonly header: SealedModelHeader;
  /** Size the whole sealed file must have, from the header. */
  readonly sealedSize: number;
  readonly #headerBytes: Uint8Array<ArrayBuffer>;
  readonly #mac: Uint8Array<ArrayBuffer>;
  readonly #source: ByteSource;
  #started = false;

  constructor(
    header: SealedModelHeader,
    headerBytes: Uint8Array<ArrayBuffer>,
    mac: Uint8Array,
    source: ByteSource,
  ) {
    this.header = header;
    this.sealedSize = sealedModelSize(header, headerBytes.length - SEALED_MODEL_PREAMBLE_LENGTH);
    this.#headerBytes = headerBytes;
    this.#mac = new Uint8Array(mac);
    this.#source = source;
  }

  /**
   * Yields the plaintext chunk by chunk, each only after its GCM tag verified. The plaintext is
   * untrusted until the generator completes: only then have the final chunk, the absence of
   * trailing bytes and the plaintext SHA-256 been checked (a failure throws instead of completing).
   *
   * Refusals, in the order they are checked: SEALED_MODEL_WRONG_KEY (key commitment), then
   * SEALED_MODEL_TAMPERED (header MAC), then per chunk SEALED_MODEL_TRUNCATED or
   * SEALED_MODEL_TAMPERED, then SEALED_MODEL_DIGEST_MISMATCH.
   */
  async *unseal(
    key: ModelKey,
    options: UnsealModelOptions = {},
  ): AsyncGenerator<Uint8Array<ArrayBuffer>, void, undefined> {
    const { chunkKey, aad, noncePrefix } = await this.authenticate(key);
    const { header } = this;
    const hasher = (options.sha256 ?? nobleSha256)();
    const pipeline = new ChunkPipeline(pipelineDepth(header.chunkSize));
    const count = chunkCount(header.plaintextLength, header.chunkSize);
    for (let index = 0; index < count; index++) {
      const expected = chunkPlaintextLength(header, index) + GCM_TAG_LENGTH;
      const sealed = await this.#source.read(expected);
      if (sealed.length < expected) throw truncatedInChunk(index, count);
      const last = index === count - 1;
      pipeline.push(decryptChunk(chunkKey, chunkNonce(noncePrefix, index, last), aad, sealed, index));
      if (last) {
        if ((await this.#source.read(1)).length !== 0) throw trailingBytes();
        while (pipeline.size > 0) {
          const plaintext = await pipeline.take();
          hasher.update(plaintext);
          // The empty final chunk of an empty model is verified but not yielded.
          if (plaintext.length > 0) yield plaintext;
        }
      } else if (pipeline.full) {
        const plaintext = await pipeline.take();
        hasher.update(plaintext);
        yield plaintext;
      }
    }
    checkPlaintextDigest(header, hasher.digest());
  }

  /**
   * Checks the key commitment, the header MAC and (for a source of known size) the file size,
   * and returns what decrypting the chunks needs. `unseal()` starts with it; a reader that
   * decrypts the chunks itself (the Node file unsealer) calls it instead. Once per source.
   */
  async authenticate(key: ModelKey): Promise<AuthenticatedSealedModel> {
    if (this.#started)
      throw new TresorError('INTERNAL_ERROR', 'a sealed model can be unsealed only once per source');
    this.#started = true;
    const keys = await key.deriveFileKeys(hexToBytes(this.header.salt));
    await this.#checkKeyAndHeader(key, keys.headerMacKey);
    this.#checkSize();
    return {
      chunkKey: keys.chunkKey,
      aad: new Uint8Array(await crypto.subtle.digest('SHA-256', this.#headerBytes)),
      noncePrefix: hexToBytes(this.header.noncePrefix),
      chunksOffset: this.#headerBytes.length + HEADER_MAC_LENGTH,
    };
  }

  /** With the header authenticated, a source of known size can be refused before any chunk is read. */
  #checkSize(): void {
    const size = this.#source.size;
    if (size === undefined || size === this.sealedSize) return;
    if (size < this.sealedSize) {
      throw new TresorError(
        'SEALED_MODEL_TRUNCATED',
        `the file is ${String(size)} bytes, but its header describes ${String(this.sealedSize)} bytes`,
        { details: { size, expected: this.sealedSize } },
      );
    }
    throw new TresorError(
      'SEALED_MODEL_TAMPERED',
      `the file is ${String(size)} bytes, longer than the ${String(this.sealedSize)} bytes its header describes`,
      { details: { size, expected: this.sealedSize } },
    );
  }

  /**
   * The header MAC commits to the key (HMAC-SHA256 is collision resistant in its key), but a MAC
   * failure alone cannot say whether the key or the header is wrong. The salt-independent key
   * fingerprint decides: it differs only when the key differs (or the fingerprint itself was hit).
   */
  async #checkKeyAndHeader(key: ModelKey, headerMacKey: CryptoKey): Promise<void> {
    const macValid = await crypto.subtle.verify('HMAC', headerMacKey, this.#mac, this.#headerBytes);
    const fingerprintMatches = key.fingerprint === this.header.keyFingerprint;
    if (!macValid && !fingerprintMatches) {
      throw new TresorError(
        'SEALED_MODEL_WRONG_KEY',
        `this model was sealed with key ${this.header.keyId} (fingerprint ${this.header.keyFingerprint}), not the key given (fingerprint ${key.fingerprint})`,
        {
          details: {
            keyId: this.header.keyId,
            expected: this.header.keyFingerprint,
            actual: key.fingerprint,
          },
        },
      );
    }
    if (!macValid || !fingerprintMatches) {
      throw new TresorError(
        'SEALED_MODEL_TAMPERED',
        'the header was modified after sealing (its MAC does not verify)',
      );
    }
  }
}

/** SEALED_MODEL_TRUNCATED for an input that ends inside (or before) chunk `index`. */
export function truncatedInChunk(index: number, count: number): TresorError {
  return new TresorError(
    'SEALED_MODEL_TRUNCATED',
    `the file ends inside chunk ${String(index)} of ${String(count)}`,
    { details: { chunk: index, chunks: count } },
  );
}

/** SEALED_MODEL_TAMPERED for bytes after the final chunk (appended after the size was checked). */
export function trailingBytes(): TresorError {
  return new TresorError('SEALED_MODEL_TAMPERED', 'the file continues after its final chunk');
}

/** The last check of an unseal: the released plaintext must be the model the header names. */
export function checkPlaintextDigest(header: SealedModelHeader, sha256: Uint8Array): void {
  const digest = bytesToHex(sha256);
  if (digest !== header.plaintextSha256) {
    throw new TresorError(
      'SEALED_MODEL_DIGEST_MISMATCH',
      `the decrypted model has SHA-256 ${digest}, but its header records ${header.plaintextSha256}`,
      { details: { expected: header.plaintextSha256, actual: digest } },
    );
  }
}

/** Unseals a model held in memory (small models, tests). */
export async function unsealModelBytes(
  sealed: Uint8Array,
  key: ModelKey,
  options: UnsealModelOptions = {},
): Promise<Uint8Array<ArrayBuffer>> {
  const reader = await openSealedModel(byteSourceFromBytes(sealed));
  const parts: Uint8Array[] = [];
  for await (const part of reader.unseal(key, options)) parts.push(part);
  return joinBytes(parts);
}
