import { TresorError, RECEIPT_SSE_PREFIX } from '@tresor/protocol';
import { concatBytes, utf8Decode, utf8Encode } from '@tresor/crypto';
import { sha256Hex } from './component-evidence.js';

const NEWLINE = 0x0a;
const PREFIX = utf8Encode(RECEIPT_SSE_PREFIX);
const EMPTY = new Uint8Array(0);

function startsWith(line: Uint8Array, prefix: Uint8Array): boolean {
  if (line.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (line[i] !== prefix[i]) return false;
  return true;
}

/** What the splitter found once the stream ended. */
export interface SseReceiptResult {
  /** The receipt JWS, or null when the stream carried none. */
  readonly receipt: string | null;
  /** SHA-256 (hex) of every SSE byte before the receipt line. */
  readonly responseSha256: string;
}

export interface SseReceiptOptions {
  /** SHA-256 (hex) of the bytes before the receipt (default: WebCrypto); see ConnectOptions.sha256Hex. */
  readonly sha256Hex?: (bytes: Uint8Array) => string | Promise<string>;
}

/**
 * The line logic of both splitters. Every complete line of a piece is looked at; the lines
 * before the receipt pass on together, as one chunk per piece (a subarray, not a copy), as soon
 * as the piece that ends them arrived.
 */
class ReceiptLines {
  #pending: Uint8Array = EMPTY;
  readonly #seen: Uint8Array[] = [];
  #receipt: string | null = null;

  /** What of `piece` (with the unterminated line before it) passes on now. */
  push(piece: Uint8Array): Uint8Array | undefined {
    const bytes = this.#pending.length === 0 ? piece : concatBytes(this.#pending, piece);
    const passing = this.#receipt === null;
    let start = 0; // the current line's first byte
    let passEnd = -1; // the receipt line's first byte, once it is in this piece
    for (let end = bytes.indexOf(NEWLINE); end !== -1; end = bytes.indexOf(NEWLINE, start)) {
      const line = bytes.subarray(start, end + 1);
      if (this.#receipt !== null || startsWith(line, PREFIX)) {
        if (this.#receipt === null) passEnd = start;
        this.#take(line);
      }
      start = end + 1;
    }
    this.#pending = bytes.subarray(start);
    return passing ? this.#pass(bytes.subarray(0, passEnd === -1 ? start : passEnd)) : undefined;
  }

  /** At the end of the stream: the last line, if it had no newline and passes on. */
  end(): Uint8Array | undefined {
    const last = this.#pending;
    this.#pending = EMPTY;
    if (last.length === 0) return undefined;
    if (this.#receipt !== null || startsWith(last, PREFIX)) {
      this.#take(last);
      return undefined;
    }
    return this.#pass(last);
  }

  async result(digest: (bytes: Uint8Array) => string | Promise<string>): Promise<SseReceiptResult> {
    return { receipt: this.#receipt, responseSha256: await digest(concatBytes(...this.#seen)) };
  }

  #pass(bytes: Uint8Array): Uint8Array | undefined {
    if (bytes.length === 0) return undefined;
    this.#seen.push(bytes);
    return bytes;
  }

  /** The receipt line, or a line after it: only blank lines may follow the receipt. */
  #take(line: Uint8Array): void {
    const content = line[line.length - 1] === NEWLINE ? line.subarray(0, -1) : line;
    const bare = content[content.length - 1] === 0x0d ? content.subarray(0, -1) : content;
    if (this.#receipt !== null) {
      if (bare.length > 0) throw new TresorError('RECEIPT_INVALID', 'the stream continued after its receipt');
      return;
    }
    this.#receipt = utf8Decode(bare.subarray(PREFIX.length)).trim();
  }
}

/**
 * Passes server-sent events through, hashing them, and takes out the final
 * `: tresor-receipt <jws>` comment line (protocol/attestation-bundle.ts). Complete lines go out
 * as soon as their newline arrives, so tokens are not delayed. Anything but blank lines after the
 * receipt is refused: the receipt must cover the whole stream.
 */
export function sseReceiptSplitter(
  onEnd: (result: SseReceiptResult) => Promise<void>,
  options: SseReceiptOptions = {},
): TransformStream<Uint8Array, Uint8Array> {
  const lines = new ReceiptLines();
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(piece, controller) {
      const out = lines.push(piece);
      if (out !== undefined) controller.enqueue(out);
    },
    async flush(controller) {
      const out = lines.end();
      if (out !== undefined) controller.enqueue(out);
      await onEnd(await lines.result(options.sha256Hex ?? sha256Hex));
    },
  });
}

/**
 * `source` with its receipt taken out, as `sseReceiptSplitter` does, but as one pull-driven
 * stream rather than a TransformStream and a pipe: the client's path of every streamed answer,
 * where a TransformStream's set-up and the pipe's promises per event are a visible share of the
 * client's CPU. An error of `source`, a line after the receipt or a failing `onEnd` errors the
 * result (and cancels `source`); cancelling the result cancels `source`.
 */
export function splitSseReceipt(
  source: ReadableStream<Uint8Array>,
  onEnd: (result: SseReceiptResult) => Promise<void>,
  options: SseReceiptOptions = {},
): ReadableStream<Uint8Array> {
  const reader = source.getReader();
  const lines = new ReceiptLines();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          for (;;) {
            const next = await reader.read();
            if (next.done) {
              const out = lines.end();
              if (out !== undefined) controller.enqueue(out);
              await onEnd(await lines.result(options.sha256Hex ?? sha256Hex));
              controller.close();
              return;
            }
            const out = lines.push(next.value);
            if (out !== undefined) {
              controller.enqueue(out);
              return;
            }
          }
        } catch (err) {
          await reader.cancel(err).catch(() => undefined);
          throw err;
        }
      },
      cancel: (reason) => reader.cancel(reason),
    },
    { highWaterMark: 0 },
  );
}
