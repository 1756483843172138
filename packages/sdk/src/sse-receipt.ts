import { TresorError, RECEIPT_SSE_PREFIX } from '@tresor/protocol';
import { bytesToHex, concatBytes, toArrayBuffer, utf8Decode, utf8Encode } from '@tresor/crypto';

const NEWLINE = 0x0a;
const PREFIX = utf8Encode(RECEIPT_SSE_PREFIX);

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

/**
 * Passes server-sent events through line by line, hashing them, and takes out the final
 * `: tresor-receipt <jws>` comment line (protocol/attestation-bundle.ts). A complete line goes out
 * as soon as its newline arrives, so tokens are not delayed. Anything but blank lines after the
 * receipt is refused: the receipt must cover the whole stream.
 */
export function sseReceiptSplitter(
  onEnd: (result: SseReceiptResult) => Promise<void>,
): TransformStream<Uint8Array, Uint8Array> {
  // WebCrypto has no incremental digest; a chat stream is small enough to hash at its end.
  const seen: Uint8Array[] = [];
  let pending: Uint8Array = new Uint8Array(0);
  let receipt: string | null = null;
  const take = (line: Uint8Array, controller: TransformStreamDefaultController<Uint8Array>): void => {
    const content = line[line.length - 1] === NEWLINE ? line.subarray(0, -1) : line;
    const bare = content[content.length - 1] === 0x0d ? content.subarray(0, -1) : content;
    if (receipt !== null) {
      if (bare.length > 0) throw new TresorError('RECEIPT_INVALID', 'the stream continued after its receipt');
      return;
    }
    if (startsWith(bare, PREFIX)) {
      receipt = utf8Decode(bare.subarray(PREFIX.length)).trim();
      return;
    }
    seen.push(line);
    controller.enqueue(line);
  };
  return new TransformStream<Uint8Array, Uint8Array>({
    transform(piece, controller) {
      const bytes = concatBytes(pending, piece);
      let start = 0;
      for (let i = 0; i < bytes.length; i++) {
        if (bytes[i] === NEWLINE) {
          take(bytes.slice(start, i + 1), controller);
          start = i + 1;
        }
      }
      pending = bytes.slice(start);
    },
    async flush(controller) {
      if (pending.length > 0) take(pending, controller);
      const digest = await crypto.subtle.digest('SHA-256', toArrayBuffer(concatBytes(...seen)));
      await onEnd({ receipt, responseSha256: bytesToHex(new Uint8Array(digest)) });
    },
  });
}
