import { TresorError } from '@tresor/protocol';
import { concatBytes, decodeBhttpResponse, tryReadVarint, type BhttpField } from '@tresor/crypto';

/** The head of a streamed response: known once its header section has arrived. */
export interface StreamedResponseHead {
  readonly status: number;
  readonly headers: readonly BhttpField[];
}

export interface StreamedBhttpResponse {
  readonly head: Promise<StreamedResponseHead>;
  /** The content, piece by piece as it arrives; errors with BHTTP_MALFORMED on bad framing. */
  readonly body: ReadableStream<Uint8Array>;
}

const MAX_FIELD_BYTES = 16 * 1024;
const MAX_FIELD_LINES = 256;
const MAX_INFORMATIONAL = 16;

function malformed(message: string): TresorError {
  return new TresorError('BHTTP_MALFORMED', `Binary HTTP response ${message}`);
}

const latin1 = (bytes: Uint8Array): string => String.fromCharCode(...bytes);

/**
 * Reads a Binary HTTP response (RFC 9292) as it streams out of a chunked OHTTP response. The
 * indeterminate-length framing (§3.2, indicator 3) is read incrementally: the head resolves once
 * the header section ended, and every content chunk is released as it arrives, so tokens reach
 * the caller one server-sent event at a time. A known-length response (indicator 1) is read
 * whole and decoded by @tresor/crypto's strict decoder. Ending anywhere but between sections is
 * BHTTP_MALFORMED (truncation is allowed only there, §3.8).
 */
export function readStreamedBhttpResponse(source: ReadableStream<Uint8Array>): StreamedBhttpResponse {
  let resolveHead!: (head: StreamedResponseHead) => void;
  let rejectHead!: (err: unknown) => void;
  const head = new Promise<StreamedResponseHead>((resolve, reject) => {
    resolveHead = resolve;
    rejectHead = reject;
  });
  // A caller that only awaits the body must not see an unhandled rejection of the head.
  head.catch(() => undefined);
  const reader = source.getReader();
  let buffer: Uint8Array = new Uint8Array(0);
  let offset = 0;
  let done = false;
  type State = 'framing' | 'status' | 'fields' | 'content' | 'trailers' | 'padding' | 'known';
  let state: State = 'framing';
  let fieldsFor: 'informational' | 'final' | 'trailers' = 'final';
  let status = 0;
  let fields: BhttpField[] = [];
  let informational = 0;
  let lines = 0;
  const known: Uint8Array[] = [];

  const more = async (): Promise<boolean> => {
    if (done) return false;
    const next = await reader.read();
    if (next.done) {
      done = true;
      return false;
    }
    buffer = concatBytes(buffer.subarray(offset), next.value);
    offset = 0;
    return true;
  };
  const varint = (): number | undefined => {
    const v = tryReadVarint(buffer, offset, 'BHTTP_MALFORMED');
    if (v === undefined) return undefined;
    offset = v.next;
    return v.value;
  };

  /** Advances the parser; returns content bytes to release, 'end' at the end, or undefined for "need more". */
  const step = (): Uint8Array | 'end' | undefined => {
    for (;;) {
      const mark = offset;
      switch (state) {
        case 'framing': {
          const f = varint();
          if (f === undefined) return undefined;
          if (f === 1) state = 'known';
          else if (f === 3) state = 'status';
          else throw malformed(`has framing indicator ${f}, not a response (1 or 3)`);
          break;
        }
        case 'known':
          known.push(buffer.slice(offset));
          offset = buffer.length;
          return undefined;
        case 'status': {
          const s = varint();
          if (s === undefined) return undefined;
          if (s < 100 || s > 599) throw malformed(`has status ${s}`);
          if (s < 200) {
            if (++informational > MAX_INFORMATIONAL) throw malformed('has too many informational responses');
            fieldsFor = 'informational';
          } else {
            status = s;
            fieldsFor = 'final';
          }
          state = 'fields';
          break;
        }
        case 'fields':
        case 'trailers': {
          const nameLength = varint();
          if (nameLength === undefined) return undefined;
          if (nameLength === 0) {
            if (state === 'trailers') {
              state = 'padding';
              break;
            }
            if (fieldsFor === 'informational') {
              fields = [];
              state = 'status';
              break;
            }
            resolveHead({ status, headers: fields });
            state = 'content';
            break;
          }
          const valueAt = offset + nameLength;
          if (nameLength > MAX_FIELD_BYTES) throw malformed('has a field name above 16 KiB');
          const valueLength = tryReadVarint(buffer, valueAt, 'BHTTP_MALFORMED');
          if (valueLength === undefined || valueLength.next + valueLength.value > buffer.length) {
            if (valueLength !== undefined && valueLength.value > MAX_FIELD_BYTES)
              throw malformed('has a field value above 16 KiB');
            offset = mark;
            return undefined;
          }
          if (++lines > MAX_FIELD_LINES) throw malformed(`has more than ${MAX_FIELD_LINES} field lines`);
          const name = latin1(buffer.subarray(offset, valueAt));
          const value = latin1(buffer.subarray(valueLength.next, valueLength.next + valueLength.value));
          offset = valueLength.next + valueLength.value;
          if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name))
            throw malformed('has a field name that is not a token');
          if (/[\0\r\n]/.test(value)) throw malformed('has a field value with NUL, CR or LF');
          if (state === 'fields' && fieldsFor === 'final') fields.push([name, value]);
          break;
        }
        case 'content': {
          const length = varint();
          if (length === undefined) return undefined;
          if (length === 0) {
            state = 'trailers';
            break;
          }
          if (offset + length > buffer.length) {
            offset = mark;
            return undefined;
          }
          const piece = buffer.slice(offset, offset + length);
          offset += length;
          return piece;
        }
        case 'padding':
          while (offset < buffer.length) {
            if (buffer[offset] !== 0) throw malformed('has non-zero padding');
            offset++;
          }
          return undefined;
      }
    }
  };

  const finish = (): 'end' => {
    if (state === 'known') {
      const decoded = decodeBhttpResponse(concatBytes(...known)).message;
      resolveHead({ status: decoded.status, headers: decoded.headers });
      knownBody = decoded.content;
      return 'end';
    }
    // Truncation (§3.8) is allowed after the header section, after the content, after the trailers.
    const atBoundary =
      offset === buffer.length && (state === 'content' || state === 'trailers' || state === 'padding');
    if (!atBoundary) throw malformed('ended inside a section');
    return 'end';
  };
  let knownBody: Uint8Array | undefined;

  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          for (;;) {
            const out = step();
            if (out instanceof Uint8Array) {
              controller.enqueue(out);
              return;
            }
            if (!(await more())) {
              finish();
              if (knownBody !== undefined && knownBody.length > 0) controller.enqueue(knownBody);
              controller.close();
              return;
            }
          }
        } catch (err) {
          rejectHead(err);
          await reader.cancel(err).catch(() => undefined);
          controller.error(err);
        }
      },
      async cancel(reason) {
        rejectHead(reason);
        await reader.cancel(reason);
      },
    },
    // One piece ahead: the stream starts pulling at once, so the head resolves without a reader.
    { highWaterMark: 1 },
  );
  return { head, body };
}
