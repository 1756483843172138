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
    if (this.#started)
      throw new TresorError('INTERNAL_ERROR', 'a sealed model can be unsealed only once per source');
    this.#started = true;
    const { header } = this;
    const keys = await key.deriveFileKeys(hexToBytes(header.salt));
    await this.#checkKeyAndHeader(key, keys.headerMacKey);
    this.#checkSize();

    const aad = new Uint8Array(await crypto.subtle.digest('SHA-256', this.#headerBytes));
    const noncePrefix = hexToBytes(header.noncePrefix);
    const hasher = (options.sha256 ?? nobleSha256)();
    const pipeline = new ChunkPipeline(pipelineDepth(header.chunkSize));
    const count = chunkCount(header.plaintextLength, header.chunkSize);
    for (let index = 0; index < count; index++) {
      const expected = chunkPlaintextLength(header, index) + GCM_TAG_LENGTH;
      const sealed = await this.#source.read(expected);
      if (sealed.length < expected) {
        throw new TresorError(
          'SEALED_MODEL_TRUNCATED',
          `the file ends inside chunk ${String(index)} of ${String(count)}`,
          { details: { chunk: index, chunks: count } },
        );
      }
      const last = index === count - 1;
      pipeline.push(decryptChunk(keys.chunkKey, chunkNonce(noncePrefix, index, last), aad, sealed, index));
      if (last) {
        if ((await this.#source.read(1)).length !== 0) {
          throw new TresorError('SEALED_MODEL_TAMPERED', 'the file continues after its final chunk');
        }
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
    const digest = bytesToHex(hasher.digest());
    if (digest !== header.plaintextSha256) {
      throw new TresorError(
        'SEALED_MODEL_DIGEST_MISMATCH',
        `the decrypted model has SHA-256 ${digest}, but its header records ${header.plaintextSha256}`,
        { details: { expected: header.plaintextSha256, actual: digest } },
      );
    }
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
