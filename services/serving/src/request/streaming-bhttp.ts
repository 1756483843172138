import { concatBytes, encodeVarint, tryReadVarint, type BhttpField } from '@tresor/crypto';
import { TresorError } from '@tresor/protocol';

/**
 * Binary HTTP responses sent piece by piece (RFC 9292 §3.2, indeterminate-length framing): the
 * control data and header section first, then one length-prefixed content chunk per server-sent
 * event, then the content terminator and an empty trailer section. Each piece goes into its own
 * chunked-OHTTP chunk, so the client opens every event as soon as it arrives.
 */

/** Framing indicator 3: an indeterminate-length response (RFC 9292 §3.3). */
const INDETERMINATE_RESPONSE = 3;
const encoder = new TextEncoder();

function fieldLine([name, value]: BhttpField): Uint8Array {
  const n = encoder.encode(name);
  const v = encoder.encode(value);
  return concatBytes(encodeVarint(n.length), n, encodeVarint(v.length), v);
}

/** Framing indicator, final status and header section (ended by a zero). */
export function streamingResponseHead(status: number, headers: readonly BhttpField[]): Uint8Array {
  return concatBytes(
    encodeVarint(INDETERMINATE_RESPONSE),
    encodeVarint(status),
    ...headers.map(fieldLine),
    encodeVarint(0),
  );
}

/** One content chunk; empty content is skipped (a zero length would end the content). */
export function streamingContentChunk(content: Uint8Array): Uint8Array {
  return content.length === 0 ? new Uint8Array(0) : concatBytes(encodeVarint(content.length), content);
}

/** Content terminator and an empty trailer section. */
export function streamingResponseEnd(): Uint8Array {
  return Uint8Array.of(0, 0);
}

/** What a reader of a streamed response has seen so far. */
export type StreamedResponsePart =
  | { readonly type: 'head'; readonly status: number; readonly headers: readonly BhttpField[] }
  | { readonly type: 'content'; readonly bytes: Uint8Array }
  | { readonly type: 'end' };

/**
 * The reading side, incremental: push bytes as chunks open, take the parts complete so far. Reads
 * indeterminate-length responses only (what serving streams); BHTTP_MALFORMED otherwise.
 */
export class StreamingBhttpResponseReader {
  #buffer: Uint8Array = new Uint8Array(0);
  #state: 'head' | 'content' | 'trailers' | 'done' = 'head';

  push(bytes: Uint8Array): StreamedResponsePart[] {
    this.#buffer = concatBytes(this.#buffer, bytes);
    const parts: StreamedResponsePart[] = [];
    for (;;) {
      const part = this.#next();
      if (part === undefined) return parts;
      parts.push(part);
    }
  }

  get done(): boolean {
    return this.#state === 'done';
  }

  #next(): StreamedResponsePart | undefined {
    const buf = this.#buffer;
    if (this.#state === 'head') {
      const framing = tryReadVarint(buf, 0, 'BHTTP_MALFORMED');
      if (framing === undefined) return undefined;
      if (framing.value !== INDETERMINATE_RESPONSE) {
        throw new TresorError('BHTTP_MALFORMED', 'not an indeterminate-length Binary HTTP response');
      }
      const status = tryReadVarint(buf, framing.next, 'BHTTP_MALFORMED');
      if (status === undefined) return undefined;
      const headers: BhttpField[] = [];
      let at = status.next;
      for (;;) {
        const nameLength = tryReadVarint(buf, at, 'BHTTP_MALFORMED');
        if (nameLength === undefined) return undefined;
        if (nameLength.value === 0) {
          at = nameLength.next;
          break;
        }
        const nameEnd = nameLength.next + nameLength.value;
        const valueLength = tryReadVarint(buf, nameEnd, 'BHTTP_MALFORMED');
        if (valueLength === undefined) return undefined;
        const valueEnd = valueLength.next + valueLength.value;
        if (valueEnd > buf.length) return undefined;
        const decoder = new TextDecoder();
        headers.push([
          decoder.decode(buf.subarray(nameLength.next, nameEnd)),
          decoder.decode(buf.subarray(valueLength.next, valueEnd)),
        ]);
        at = valueEnd;
      }
      this.#buffer = buf.slice(at);
      this.#state = 'content';
      return { type: 'head', status: status.value, headers };
    }
    if (this.#state === 'content') {
      const length = tryReadVarint(buf, 0, 'BHTTP_MALFORMED');
      if (length === undefined) return undefined;
      if (length.value === 0) {
        this.#buffer = buf.slice(length.next);
        this.#state = 'trailers';
        return this.#next();
      }
      const end = length.next + length.value;
      if (end > buf.length) return undefined;
      this.#buffer = buf.slice(end);
      return { type: 'content', bytes: buf.slice(length.next, end) };
    }
    if (this.#state === 'trailers') {
      // Serving sends no trailers: only the empty section's terminator is accepted.
      if (buf.length === 0) return undefined;
      if (buf[0] !== 0)
        throw new TresorError('BHTTP_MALFORMED', 'unexpected trailer fields in a streamed response');
      this.#buffer = buf.slice(1);
      this.#state = 'done';
      return { type: 'end' };
    }
    return undefined;
  }
}
