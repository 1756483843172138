import { TresorError } from '@tresor/protocol';
import {
  EnvelopeCipher,
  parseWrappedKey,
  serializeWrappedKey,
  type FieldCipher,
  type KeyId,
  type KeyStore,
} from '@tresor/keystore';
import type { ResourcePath } from './resource-path.js';
import type { ResourceRepository } from './resource-repository.js';

/** Resources are keys, certificates and small secrets; anything larger is not a KBS resource. */
export const MAX_RESOURCE_BYTES = 64 * 1024;

/**
 * The KBS resources (secrets by repository/type/tag), encrypted at rest: each is sealed with
 * AES-256-GCM under a data key that exists only wrapped by a keystore KEK (EnvelopeCipher), with the
 * resource path as associated data, so a sealed resource copied to another path does not open.
 *
 * There is no call that returns a secret to a caller: `release` lends the plaintext to a function
 * (the JWE encryption to an attested TEE) and zeroes it when that function returns.
 */
export class ResourceStore {
  readonly #cipher: FieldCipher;
  readonly #repository: ResourceRepository;

  constructor(cipher: FieldCipher, repository: ResourceRepository) {
    this.#cipher = cipher;
    this.#repository = repository;
  }

  /** Opens the store, creating its data key under `kekId` on first use. */
  static async open(options: {
    readonly keyStore: KeyStore;
    readonly kekId: KeyId;
    readonly repository: ResourceRepository;
  }): Promise<ResourceStore> {
    const stored = await options.repository.readDataKey();
    let wrapped;
    if (stored === undefined) {
      wrapped = await EnvelopeCipher.newDataKey(options.keyStore, options.kekId);
      await options.repository.writeDataKey(serializeWrappedKey(wrapped));
    } else {
      wrapped = parseWrappedKey(stored.trim());
    }
    return new ResourceStore(new EnvelopeCipher(options.keyStore, wrapped), options.repository);
  }

  static #recordId(path: ResourcePath): string {
    return `kbs-resource:${path.text}`;
  }

  /** Seals and stores `secret` (the caller zeroes its copy). */
  async put(path: ResourcePath, secret: Uint8Array): Promise<void> {
    if (secret.length === 0 || secret.length > MAX_RESOURCE_BYTES) {
      throw new TresorError('INPUT_MALFORMED', `a resource is 1 to ${MAX_RESOURCE_BYTES} bytes`);
    }
    await this.#repository.write(
      path,
      await this.#cipher.encryptField(ResourceStore.#recordId(path), secret),
    );
  }

  /**
   * Opens the resource at `path` and lends it to `use`; the plaintext is zeroed when `use` settles.
   * @throws TresorError RESOURCE_NOT_FOUND, ENCRYPTED_FIELD_INVALID, keystore errors
   */
  async release<T>(path: ResourcePath, use: (secret: Uint8Array) => T | Promise<T>): Promise<T> {
    const sealed = await this.#repository.read(path);
    if (sealed === undefined) {
      throw new TresorError('RESOURCE_NOT_FOUND', `no resource ${path.text}`);
    }
    const secret = await this.#cipher.decryptField(ResourceStore.#recordId(path), sealed);
    try {
      return await use(secret);
    } finally {
      secret.fill(0);
    }
  }

  async has(path: ResourcePath): Promise<boolean> {
    return (await this.#repository.read(path)) !== undefined;
  }

  /** @throws TresorError RESOURCE_NOT_FOUND */
  async remove(path: ResourcePath): Promise<void> {
    if (!(await this.#repository.remove(path)))
      throw new TresorError('RESOURCE_NOT_FOUND', `no resource ${path.text}`);
  }

  /** The stored paths (names only, never contents). */
  list(): Promise<readonly ResourcePath[]> {
    return this.#repository.list();
  }
}
