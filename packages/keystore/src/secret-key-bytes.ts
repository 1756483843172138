import { TresorError } from '@tresor/protocol';

const INSPECT = Symbol.for('nodejs.util.inspect.custom');

/**
 * Key material as a typed secret: the bytes are reachable only through `expose`, the value refuses
 * JSON serialisation, prints as a placeholder in logs and `util.inspect`, and `dispose` zeroes it.
 * It holds its own copy, so zeroing it never touches a caller's buffer, and a caller zeroing its
 * buffer never corrupts the key.
 */
export class SecretKeyBytes {
  readonly #bytes: Uint8Array;
  #disposed = false;

  private constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  /** Copies `bytes`; the caller stays responsible for zeroing its own buffer. */
  static copyOf(bytes: Uint8Array): SecretKeyBytes {
    return new SecretKeyBytes(Uint8Array.from(bytes));
  }

  /** Copies `bytes` and zeroes the source, for buffers that held key material only transiently. */
  static takeFrom(bytes: Uint8Array): SecretKeyBytes {
    const key = new SecretKeyBytes(Uint8Array.from(bytes));
    bytes.fill(0);
    return key;
  }

  get length(): number {
    return this.#bytes.length;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Runs `use` with the raw bytes. The view must not be kept after `use` returns: the bytes are
   * zeroed by `dispose`.
   */
  expose<T>(use: (bytes: Uint8Array) => T): T {
    if (this.#disposed) {
      throw new TresorError('INTERNAL_ERROR', 'key material was used after it was disposed');
    }
    return use(this.#bytes);
  }

  /** An independent copy with its own lifetime. */
  clone(): SecretKeyBytes {
    return this.expose((b) => SecretKeyBytes.copyOf(b));
  }

  /** Zeroes the bytes; later `expose` calls refuse. Idempotent. */
  dispose(): void {
    this.#bytes.fill(0);
    this.#disposed = true;
  }

  toJSON(): never {
    throw new TresorError('INTERNAL_ERROR', 'refusing to serialise key material');
  }

  toString(): string {
    return '[SecretKeyBytes redacted]';
  }

  [INSPECT](): string {
    return this.toString();
  }
}
