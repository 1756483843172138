import { TresorError } from '@tresor/protocol';
import { concatBytes } from './bytes.js';
import {
  authorityProblem,
  byteStringToBytes,
  fieldNameProblem,
  fieldValueProblem,
  finalStatusProblem,
  informationalStatusProblem,
  methodProblem,
  pathProblem,
  refuse,
  schemeProblem,
} from './bhttp-syntax.js';
import type {
  BhttpEncodeOptions,
  BhttpField,
  BhttpFraming,
  BhttpLayout,
  BhttpRequest,
  BhttpResponse,
} from './bhttp-types.js';
import { encodeVarint } from './varint.js';

/**
 * Binary HTTP encoder (RFC 9292 §3). Writes exactly what the message holds, in the order it
 * holds it, with shortest-form integers, so the RFC's §5 examples come out byte for byte.
 * Refuses (BHTTP_MALFORMED) a message that a conforming decoder would have to refuse.
 */

/** Framing indicators (RFC 9292 §3.3). */
const FRAMING_INDICATOR = {
  request: { 'known-length': 0, 'indeterminate-length': 2 },
  response: { 'known-length': 1, 'indeterminate-length': 3 },
} as const satisfies Record<'request' | 'response', Record<BhttpFraming, number>>;

/** Collects the encoded parts; one copy into the result at the end. */
class EncodedParts {
  private readonly parts: Uint8Array[] = [];

  varint(value: number): void {
    this.parts.push(encodeVarint(value));
  }

  /** A length-prefixed byte string (RFC 9292 §3.4 control data, §3.6 field lines). */
  prefixed(bytes: Uint8Array): void {
    this.varint(bytes.length);
    this.parts.push(bytes);
  }

  raw(bytes: Uint8Array): void {
    this.parts.push(bytes);
  }

  bytes(): Uint8Array {
    return concatBytes(...this.parts);
  }
}

function resolveLayout(options: BhttpEncodeOptions): BhttpLayout {
  const layout: BhttpLayout = {
    framing: options.framing ?? 'known-length',
    truncated: options.truncated ?? false,
    padding: options.padding ?? 0,
  };
  if (!Number.isSafeInteger(layout.padding) || layout.padding < 0) {
    throw new TresorError('BHTTP_MALFORMED', 'Binary HTTP padding must be a non-negative integer');
  }
  return layout;
}

function encodeFieldLines(fields: readonly BhttpField[], section: string): EncodedParts {
  const lines = new EncodedParts();
  fields.forEach(([name, value], index) => {
    const context = `${section} field ${index}`;
    refuse(fieldNameProblem(name), context);
    refuse(fieldValueProblem(value), context);
    lines.prefixed(byteStringToBytes(name, `${context} name`));
    lines.prefixed(byteStringToBytes(value, `${context} value`));
  });
  return lines;
}

/** A field section: length-prefixed (§3.1) or terminated by a zero (§3.2). */
function writeFieldSection(
  out: EncodedParts,
  fields: readonly BhttpField[],
  framing: BhttpFraming,
  section: string,
): void {
  const lines = encodeFieldLines(fields, section).bytes();
  if (framing === 'known-length') {
    out.prefixed(lines);
  } else {
    out.raw(lines);
    out.varint(0);
  }
}

/** Content: length-prefixed (§3.1), or one chunk then the zero terminator (§3.2). */
function writeContent(out: EncodedParts, content: Uint8Array, framing: BhttpFraming): void {
  if (framing === 'known-length') {
    out.prefixed(content);
    return;
  }
  if (content.length > 0) out.prefixed(content);
  out.varint(0);
}

interface MessageBody {
  readonly headers: readonly BhttpField[];
  readonly content: Uint8Array;
  readonly trailers: readonly BhttpField[];
}

/**
 * How many of header section, content and trailer section to write. A truncated layout leaves
 * out trailing empty ones (§3.8: trailers if empty, then content if it is empty too; §3.1 allows
 * truncation before any section, which RFC 9458 Appendix A uses for the header section too).
 */
function sectionsToWrite(body: MessageBody, truncated: boolean): 0 | 1 | 2 | 3 {
  if (!truncated || body.trailers.length > 0) return 3;
  if (body.content.length > 0) return 2;
  return body.headers.length > 0 ? 1 : 0;
}

function writeBody(out: EncodedParts, body: MessageBody, layout: BhttpLayout, kind: string): void {
  const sections = sectionsToWrite(body, layout.truncated);
  if (sections >= 1) writeFieldSection(out, body.headers, layout.framing, `${kind} header`);
  if (sections >= 2) writeContent(out, body.content, layout.framing);
  if (sections >= 3) writeFieldSection(out, body.trailers, layout.framing, `${kind} trailer`);
  if (layout.padding > 0) out.raw(new Uint8Array(layout.padding));
}

/** Encodes a request as `message/bhttp` (RFC 9292 §3.1-3.4). */
export function encodeBhttpRequest(request: BhttpRequest, options: BhttpEncodeOptions = {}): Uint8Array {
  const layout = resolveLayout(options);
  refuse(methodProblem(request.method), 'request');
  refuse(schemeProblem(request.scheme), 'request');
  refuse(authorityProblem(request.authority), 'request');
  refuse(pathProblem(request.path), 'request');
  const out = new EncodedParts();
  out.varint(FRAMING_INDICATOR.request[layout.framing]);
  out.prefixed(byteStringToBytes(request.method, 'request method'));
  out.prefixed(byteStringToBytes(request.scheme, 'request scheme'));
  out.prefixed(byteStringToBytes(request.authority, 'request authority'));
  out.prefixed(byteStringToBytes(request.path, 'request path'));
  writeBody(out, request, layout, 'request');
  return out.bytes();
}

/** Encodes a response, informational (1xx) responses first (RFC 9292 §3.5, §3.5.1). */
export function encodeBhttpResponse(response: BhttpResponse, options: BhttpEncodeOptions = {}): Uint8Array {
  const layout = resolveLayout(options);
  const out = new EncodedParts();
  out.varint(FRAMING_INDICATOR.response[layout.framing]);
  response.informational.forEach((interim, index) => {
    refuse(informationalStatusProblem(interim.status), `informational response ${index}`);
    out.varint(interim.status);
    writeFieldSection(out, interim.headers, layout.framing, `informational response ${index}`);
  });
  refuse(finalStatusProblem(response.status), 'response');
  out.varint(response.status);
  writeBody(out, response, layout, 'response');
  return out.bytes();
}
