import { TresorError } from '@tresor/protocol';
import { concatBytes } from './bytes.js';
import {
  authorityProblem,
  bytesToByteString,
  fieldNameProblem,
  fieldValueProblem,
  methodProblem,
  pathProblem,
  refuse,
  schemeProblem,
} from './bhttp-syntax.js';
import {
  resolveBhttpLimits,
  type BhttpField,
  type BhttpFraming,
  type BhttpInformationalResponse,
  type BhttpLimits,
  type BhttpRequest,
  type BhttpResponse,
  type DecodedBhttp,
} from './bhttp-types.js';
import { tryReadVarint } from './varint.js';

/**
 * Binary HTTP decoder (RFC 9292 §3). Strict (§8: "strict parsing ... can help avoid a number of
 * attacks"): every length is checked against the bytes that remain and against the configured
 * limits before anything is sliced or allocated, and every failure is BHTTP_MALFORMED with the
 * offset where it was found. Integers need not be in shortest form (§3).
 */

function malformed(message: string, offset: number): TresorError {
  return new TresorError('BHTTP_MALFORMED', `Binary HTTP ${message}`, { details: { offset } });
}

/** A cursor over the input that never reads past its end. */
class Cursor {
  constructor(
    private readonly input: Uint8Array,
    public offset = 0,
    private readonly end = input.length,
  ) {}

  get remaining(): number {
    return this.end - this.offset;
  }

  atEnd(): boolean {
    return this.offset >= this.end;
  }

  varint(what: string): number {
    const start = this.offset;
    if (this.atEnd()) throw malformed(`message ends before the ${what}`, start);
    const decoded = tryReadVarint(this.input.subarray(0, this.end), start, 'BHTTP_MALFORMED');
    if (decoded === undefined) throw malformed(`message ends inside the ${what}`, start);
    this.offset = decoded.next;
    return decoded.value;
  }

  /** `length` bytes as a view; the length is checked against the remaining input first. */
  take(length: number, what: string): Uint8Array {
    if (length > this.remaining) {
      throw malformed(`${what} declares ${length} bytes but only ${this.remaining} remain`, this.offset);
    }
    const view = this.input.subarray(this.offset, this.offset + length);
    this.offset += length;
    return view;
  }

  /** A cursor over the next `length` bytes (a known-length section), advancing past them. */
  section(length: number, what: string): Cursor {
    const start = this.offset;
    this.take(length, what);
    return new Cursor(this.input, start, start + length);
  }
}

/** Per-message state: the limits and how much of them is used up. */
class Budget {
  private fieldLines = 0;

  constructor(readonly limits: BhttpLimits) {}

  countFieldLine(offset: number): void {
    this.fieldLines += 1;
    if (this.fieldLines > this.limits.maxFieldLines) {
      throw malformed(`message has more than the limit of ${this.limits.maxFieldLines} field lines`, offset);
    }
  }

  checkFieldSize(size: number, what: string, offset: number): void {
    if (size > this.limits.maxFieldSize) {
      throw malformed(`${what} of ${size} bytes exceeds the limit of ${this.limits.maxFieldSize}`, offset);
    }
  }

  checkContentSize(size: number, offset: number): void {
    if (size > this.limits.maxContentSize) {
      throw malformed(
        `content of at least ${size} bytes exceeds the limit of ${this.limits.maxContentSize}`,
        offset,
      );
    }
  }
}

/** A length-prefixed control-data field (RFC 9292 §3.4). */
function readControlField(
  cursor: Cursor,
  budget: Budget,
  what: string,
  problem: (text: string) => string | undefined,
): string {
  const start = cursor.offset;
  const length = cursor.varint(`${what} length`);
  const bytes = cursor.take(length, what);
  budget.checkFieldSize(length, what, start);
  const text = bytesToByteString(bytes);
  refuse(problem(text), `request ${what}`, start);
  return text;
}

/** Field Line (RFC 9292 §3.6), after its non-zero name length has been read. */
function readFieldLine(
  cursor: Cursor,
  budget: Budget,
  nameLength: number,
  start: number,
  section: string,
): BhttpField {
  budget.countFieldLine(start);
  const nameBytes = cursor.take(nameLength, `${section} field name`);
  budget.checkFieldSize(nameLength, `${section} field name`, start);
  const name = bytesToByteString(nameBytes);
  refuse(fieldNameProblem(name), `${section} section`, start);
  const valueLength = cursor.varint(`${section} field value length`);
  const valueBytes = cursor.take(valueLength, `${section} field value`);
  budget.checkFieldSize(nameLength + valueLength, `${section} field line`, start);
  const value = bytesToByteString(valueBytes);
  refuse(fieldValueProblem(value), `${section} field ${JSON.stringify(name)}`, start);
  return [name, value];
}

/** A field section: length-prefixed (§3.1) or ended by a zero terminator (§3.2). */
function readFieldSection(
  cursor: Cursor,
  budget: Budget,
  framing: BhttpFraming,
  section: string,
): BhttpField[] {
  const fields: BhttpField[] = [];
  if (framing === 'known-length') {
    const length = cursor.varint(`${section} section length`);
    const lines = cursor.section(length, `${section} section`);
    while (!lines.atEnd()) {
      const start = lines.offset;
      const nameLength = lines.varint(`${section} field name length`);
      // Name Length (i) = 1.. (§3.6): a zero here cannot start a field line.
      if (nameLength === 0) throw malformed(`${section} section has an empty field name`, start);
      fields.push(readFieldLine(lines, budget, nameLength, start, section));
    }
    return fields;
  }
  for (;;) {
    const start = cursor.offset;
    if (cursor.atEnd()) throw malformed(`${section} section ends without its terminator`, start);
    const nameLength = cursor.varint(`${section} field name length`);
    if (nameLength === 0) return fields;
    fields.push(readFieldLine(cursor, budget, nameLength, start, section));
  }
}

/** Content: length-prefixed (§3.1) or non-empty chunks ended by a zero (§3.2). */
function readContent(cursor: Cursor, budget: Budget, framing: BhttpFraming): Uint8Array {
  if (framing === 'known-length') {
    const start = cursor.offset;
    const length = cursor.varint('content length');
    const content = cursor.take(length, 'content');
    budget.checkContentSize(length, start);
    return content.slice();
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const start = cursor.offset;
    if (cursor.atEnd()) throw malformed('content ends without its terminator', start);
    const length = cursor.varint('content chunk length');
    if (length === 0) return concatBytes(...chunks);
    const chunk = cursor.take(length, 'content chunk');
    total += length;
    budget.checkContentSize(total, start);
    chunks.push(chunk);
  }
}

interface DecodedBody {
  readonly headers: BhttpField[];
  readonly content: Uint8Array;
  readonly trailers: BhttpField[];
  readonly truncated: boolean;
}

/**
 * Header section, content and trailer section. The message may end before any of them (§3.1,
 * §3.8); what is missing is empty, exactly as if sent with length zero.
 */
function readBody(cursor: Cursor, budget: Budget, framing: BhttpFraming): DecodedBody {
  const empty = new Uint8Array(0);
  if (cursor.atEnd()) return { headers: [], content: empty, trailers: [], truncated: true };
  const headers = readFieldSection(cursor, budget, framing, 'header');
  if (cursor.atEnd()) return { headers, content: empty, trailers: [], truncated: true };
  const content = readContent(cursor, budget, framing);
  if (cursor.atEnd()) return { headers, content, trailers: [], truncated: true };
  const trailers = readFieldSection(cursor, budget, framing, 'trailer');
  return { headers, content, trailers, truncated: false };
}

/** Padding (§3.8): any number of zero bytes; a non-zero byte makes the message invalid. */
function readPadding(input: Uint8Array, cursor: Cursor): number {
  const start = cursor.offset;
  for (let i = start; i < input.length; i++) {
    if (input[i] !== 0) throw malformed('message has a non-zero byte after its end', i);
  }
  return input.length - start;
}

function readFraming(cursor: Cursor, kind: 'request' | 'response'): BhttpFraming {
  const indicator = cursor.varint('framing indicator');
  // Framing indicator (RFC 9292 §3.3): 0/1 known-length, 2/3 indeterminate; even = request.
  const framing: Record<number, [BhttpFraming, 'request' | 'response']> = {
    0: ['known-length', 'request'],
    1: ['known-length', 'response'],
    2: ['indeterminate-length', 'request'],
    3: ['indeterminate-length', 'response'],
  };
  const found = framing[indicator];
  if (found === undefined) throw malformed(`framing indicator ${indicator} is not 0..3`, 0);
  if (found[1] !== kind) {
    throw malformed(`message is a ${found[1]} (framing indicator ${indicator}), not a ${kind}`, 0);
  }
  return found[0];
}

/** Decodes a `message/bhttp` request (RFC 9292 §3.1-3.4, §3.8). */
export function decodeBhttpRequest(
  input: Uint8Array,
  limits: Partial<BhttpLimits> = {},
): DecodedBhttp<BhttpRequest> {
  const budget = new Budget(resolveBhttpLimits(limits));
  const cursor = new Cursor(input);
  const framing = readFraming(cursor, 'request');
  const method = readControlField(cursor, budget, 'method', methodProblem);
  const scheme = readControlField(cursor, budget, 'scheme', schemeProblem);
  const authority = readControlField(cursor, budget, 'authority', authorityProblem);
  const path = readControlField(cursor, budget, 'path', pathProblem);
  const { headers, content, trailers, truncated } = readBody(cursor, budget, framing);
  const padding = readPadding(input, cursor);
  return {
    message: { method, scheme, authority, path, headers, content, trailers },
    layout: { framing, truncated, padding },
  };
}

/** Decodes a `message/bhttp` response, informational (1xx) responses included (§3.5). */
export function decodeBhttpResponse(
  input: Uint8Array,
  limits: Partial<BhttpLimits> = {},
): DecodedBhttp<BhttpResponse> {
  const budget = new Budget(resolveBhttpLimits(limits));
  const cursor = new Cursor(input);
  const framing = readFraming(cursor, 'response');
  const informational: BhttpInformationalResponse[] = [];
  for (;;) {
    const start = cursor.offset;
    const status = cursor.varint('status code');
    if (status >= 200 && status <= 599) {
      const { headers, content, trailers, truncated } = readBody(cursor, budget, framing);
      const padding = readPadding(input, cursor);
      return {
        message: { informational, status, headers, content, trailers },
        layout: { framing, truncated, padding },
      };
    }
    if (status < 100 || status > 599) {
      throw malformed(`status ${status} is outside 100..599`, start);
    }
    if (informational.length >= budget.limits.maxInformationalResponses) {
      throw malformed(
        `response has more than the limit of ${budget.limits.maxInformationalResponses} informational responses`,
        start,
      );
    }
    // An informational response is not truncatable: its header section must be present (§3.8).
    const headers = readFieldSection(cursor, budget, framing, `informational ${status}`);
    informational.push({ status, headers });
  }
}
