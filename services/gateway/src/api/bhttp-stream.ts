import { TresorError } from '@tresor/protocol';
import {
  decodeBhttpResponse,
  encodeVarint,
  tryReadVarint,
  varintLength,
  writeVarint,
  type BhttpField,
} from '@tresor/crypto';

/**
 * Binary HTTP responses (RFC 9292) as streams: the gateway writes its answers in the
 * indeterminate-length framing (§3.2: header section, then content chunks, each sent as soon as it
 * exists) and reads the replicas' answers incrementally in either framing.
 */

const FRAMING_KNOWN_LENGTH_RESPONSE = 1;
const FRAMING_INDETERMINATE_RESPONSE = 3;
const MAX_FIELD_BYTES = 16 * 1024;
const MAX_FIELDS = 256;

function latin1(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i) & 0xff;
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Framing indicator, status and header section of an indeterminate-length response (§3.2, §3.5). */
export function encodeResponseHead(status: number, headers: readonly BhttpField[]): Uint8Array {
  const parts: Uint8Array[] = [encodeVarint(FRAMING_INDETERMINATE_RESPONSE), encodeVarint(status)];
  for (const [name, value] of headers) {
    const n = latin1(name.toLowerCase());
    const v = latin1(value);
    parts.push(encodeVarint(n.length), n, encodeVarint(v.length), v);
  }
  parts.push(encodeVarint(0));
  return concat(parts);
}

/** One content chunk (§3.2: length, then bytes; never empty, since 0 ends the content). */
export function encodeContentChunk(bytes: Uint8Array): Uint8Array {
  const prefix = varintLength(bytes.length);
  const out = new Uint8Array(prefix + bytes.length);
  writeVarint(out, 0, bytes.length);
  out.set(bytes, prefix);
  return out;
}

/** End of content and an empty trailer section. */
export const RESPONSE_END = new Uint8Array([0, 0]);

/** What the incremental reader reports. */
export type BhttpResponseEvent =
  | { readonly kind: 'head'; readonly status: number; readonly headers: readonly BhttpField[] }
  | { readonly kind: 'content'; readonly bytes: Uint8Array }
  | { readonly kind: 'end' };

function malformed(why: string): TresorError {
  return new TresorError('UPSTREAM_FAILED', `the replica's Binary HTTP response is malformed: ${why}`);
}

type State = 'framing' | 'status' | 'fields' | 'content' | 'trailers' | 'done' | 'known-length';

/**
 * Reads a Binary HTTP response as its bytes arrive. The indeterminate framing is parsed
 * incrementally, reporting each content chunk as soon as it is complete; the known-length framing
 * is buffered and decoded at the end. Informational (1xx) responses are skipped.
 */
export class BhttpResponseReader {
  #buffer: Uint8Array = new Uint8Array(0);
  #state: State = 'framing';
  #status = 0;
  #fields: BhttpField[] = [];
  #fieldCount = 0;
  #informational = false;
  readonly #maxBytes: number;
  #total = 0;

  constructor(maxBytes = 64 * 1024 * 1024) {
    this.#maxBytes = maxBytes;
  }

  push(bytes: Uint8Array): BhttpResponseEvent[] {
    this.#total += bytes.length;
    if (this.#total > this.#maxBytes) throw malformed(`longer than ${this.#maxBytes} bytes`);
    this.#buffer = this.#buffer.length === 0 ? bytes : concat([this.#buffer, bytes]);
    return this.#drain();
  }

  /** At the end of the bytes: the rest of the message, or UPSTREAM_FAILED if it stopped early. */
  finish(): BhttpResponseEvent[] {
    if (this.#state === 'known-length') {
      const { message } = decodeBhttpResponse(this.#buffer);
      this.#state = 'done';
      return [
        { kind: 'head', status: message.status, headers: message.headers },
        ...(message.content.length > 0 ? [{ kind: 'content' as const, bytes: message.content }] : []),
        { kind: 'end' },
      ];
    }
    // §3.8: a response may be truncated after its content terminator (no trailer section).
    if (this.#state === 'trailers' && this.#buffer.length === 0) {
      this.#state = 'done';
      return [{ kind: 'end' }];
    }
    if (this.#state !== 'done') throw malformed('it ended early');
    return [];
  }

  #drain(): BhttpResponseEvent[] {
    const events: BhttpResponseEvent[] = [];
    let offset = 0;
    const varint = (): number | undefined => {
      const read = tryReadVarint(this.#buffer, offset, 'UPSTREAM_FAILED');
      if (read === undefined) return undefined;
      offset = read.next;
      return read.value;
    };
    for (;;) {
      const start = offset;
      if (this.#state === 'framing') {
        const framing = varint();
        if (framing === undefined) break;
        if (framing === FRAMING_KNOWN_LENGTH_RESPONSE) {
          this.#state = 'known-length';
          return events; // buffered whole, decoded by finish()
        }
        if (framing !== FRAMING_INDETERMINATE_RESPONSE)
          throw malformed(`framing indicator ${framing} is not a response`);
        this.#state = 'status';
      } else if (this.#state === 'status') {
        const status = varint();
        if (status === undefined) break;
        if (status < 100 || status > 599) throw malformed(`status ${status}`);
        this.#status = status;
        this.#informational = status < 200;
        this.#fields = [];
        this.#state = 'fields';
      } else if (this.#state === 'fields' || this.#state === 'trailers') {
        const nameLength = varint();
        if (nameLength === undefined) break;
        if (nameLength === 0) {
          if (this.#state === 'trailers') {
            this.#state = 'done';
            events.push({ kind: 'end' });
            continue;
          }
          if (this.#informational) {
            this.#state = 'status';
          } else {
            events.push({ kind: 'head', status: this.#status, headers: this.#fields });
            this.#state = 'content';
          }
          continue;
        }
        if (nameLength > MAX_FIELD_BYTES) throw malformed('a field name is too long');
        if (this.#buffer.length - offset < nameLength) {
          offset = start;
          break;
        }
        const name = String.fromCharCode(...this.#buffer.subarray(offset, offset + nameLength));
        offset += nameLength;
        const valueLength = varint();
        if (valueLength === undefined || this.#buffer.length - offset < valueLength) {
          offset = start;
          break;
        }
        if (valueLength > MAX_FIELD_BYTES) throw malformed('a field value is too long');
        const value = String.fromCharCode(...this.#buffer.subarray(offset, offset + valueLength));
        offset += valueLength;
        if (++this.#fieldCount > MAX_FIELDS) throw malformed('too many field lines');
        if (this.#state === 'fields') this.#fields.push([name, value]);
      } else if (this.#state === 'content') {
        const length = varint();
        if (length === undefined) break;
        if (length === 0) {
          this.#state = 'trailers';
          continue;
        }
        if (this.#buffer.length - offset < length) {
          offset = start;
          break;
        }
        events.push({ kind: 'content', bytes: this.#buffer.slice(offset, offset + length) });
        offset += length;
      } else {
        if (offset < this.#buffer.length && this.#buffer.subarray(offset).some((b) => b !== 0)) {
          throw malformed('bytes after the end of the message');
        }
        offset = this.#buffer.length;
        break;
      }
    }
    this.#buffer = this.#buffer.subarray(offset);
    return events;
  }
}

/** The value of header `name` (case-insensitive), first occurrence. */
export function headerValue(headers: readonly BhttpField[], name: string): string | undefined {
  const lower = name.toLowerCase();
  return headers.find(([n]) => n.toLowerCase() === lower)?.[1];
}
