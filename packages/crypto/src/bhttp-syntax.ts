import { TresorError } from '@tresor/protocol';

/**
 * The syntax rules RFC 9292 imposes on what a message carries, shared by the encoder (which
 * refuses to write an invalid message) and the decoder (which refuses to accept one). Each rule
 * returns a reason, or undefined when the text is valid, so both sides word errors the same way.
 */

/** tchar (RFC 9110 §5.6.2): the characters of a token, as a lookup table over ASCII. */
const TCHAR = (() => {
  const table = new Uint8Array(128);
  const chars = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  for (let i = 0; i < chars.length; i++) table[chars.charCodeAt(i)] = 1;
  return table;
})();

function isTchar(code: number): boolean {
  return code < 128 && TCHAR[code] === 1;
}

function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) if (!isTchar(text.charCodeAt(i))) return false;
  return true;
}

/**
 * Field names must be tokens (RFC 9292 §3.6 via RFC 9110 §5.1). Upper case is a valid token
 * character and RFC 9292 does not require lower case (only HTTP/2 does), so it is kept as sent.
 * The colon is not a tchar, so pseudo-fields are refused too: the reserved ones are forbidden
 * by §3.6, and an unknown one makes a message malformed as in HTTP/2 (RFC 9113 §8.3) — Tresor
 * negotiates no extension that defines any.
 */
export function fieldNameProblem(name: string): string | undefined {
  if (name.length === 0) return 'a field name is empty';
  if (name.startsWith(':')) {
    return `pseudo-field ${JSON.stringify(name)} is not allowed (RFC 9292 §3.6: control data carries method, scheme, authority, path and status)`;
  }
  if (!isToken(name)) return 'a field name contains a character outside the HTTP token set';
  return undefined;
}

/**
 * Field values follow RFC 9113 §8.2.1 (RFC 9292 §3.6): no NUL, CR or LF anywhere (the
 * characters that split or smuggle fields when the message is turned back into HTTP/1.1), and
 * no leading or trailing space or tab.
 */
export function fieldValueProblem(value: string): string | undefined {
  for (let i = 0; i < value.length; i++) {
    const code = value.charCodeAt(i);
    if (code === 0x00 || code === 0x0a || code === 0x0d) {
      return 'a field value contains NUL, CR or LF';
    }
  }
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(value.length - 1);
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) {
    return 'a field value starts or ends with a space or tab';
  }
  return undefined;
}

/** The method is a token (RFC 9110 §9.1). */
export function methodProblem(method: string): string | undefined {
  return isToken(method) ? undefined : 'the method is not an HTTP token';
}

/** scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1), or empty. */
export function schemeProblem(scheme: string): string | undefined {
  return scheme === '' || /^[A-Za-z][A-Za-z0-9+.-]*$/.test(scheme)
    ? undefined
    : 'the scheme is not a URI scheme';
}

/**
 * The authority is host[:port] (RFC 3986 §3.2.2-3.2.3): unreserved, percent-encoded and
 * sub-delims characters, colons and IP-literal brackets. Userinfo is not allowed (RFC 9113
 * §8.3.1), and "/", "?", "#" and "@" would let an authority rewrite the URL it is placed in.
 */
export function authorityProblem(authority: string): string | undefined {
  return /^[A-Za-z0-9\-._~%!$&'()*+,;=:[\]]*$/.test(authority)
    ? undefined
    : 'the authority is not host[:port] (it contains a character such as "@", "/" or a space)';
}

/** The path is path and query (RFC 3986 §3.3-3.4): visible ASCII, never a fragment. */
export function pathProblem(path: string): string | undefined {
  if (!/^[\x21-\x7e]*$/.test(path)) return 'the path contains a character that is not visible ASCII';
  if (path.includes('#')) return 'the path contains a fragment (#), which is never sent';
  return undefined;
}

/** Final status codes are 200..599 (RFC 9292 §3.5). */
export function finalStatusProblem(status: number): string | undefined {
  return Number.isInteger(status) && status >= 200 && status <= 599
    ? undefined
    : `final status ${status} is outside 200..599`;
}

/** Informational status codes are 100..199 (RFC 9292 §3.5.1). */
export function informationalStatusProblem(status: number): string | undefined {
  return Number.isInteger(status) && status >= 100 && status <= 199
    ? undefined
    : `informational status ${status} is outside 100..199`;
}

/**
 * Byte string → bytes, one byte per character. A character above U+00FF has no byte, so it is
 * refused rather than silently replaced (RFC 9110 §5.5: field values are octets).
 */
export function byteStringToBytes(text: string, what: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code > 0xff) {
      throw new TresorError(
        'BHTTP_MALFORMED',
        `${what} contains a character above U+00FF; encode it (for example percent-encoding) first`,
      );
    }
    out[i] = code;
  }
  return out;
}

/** String.fromCharCode taking its arguments from an array-like: a typed array goes in as it is. */
const fromCharCodes = String.fromCharCode.apply.bind(String.fromCharCode) as (
  thisArg: null,
  codes: ArrayLike<number>,
) => string;

/**
 * Bytes → byte string. Built in slices because String.fromCharCode with one argument per byte
 * overflows the call stack on large inputs. The bytes go to it through `apply`, which reads the
 * typed array directly; spreading it runs the iterator protocol per byte, 3–8× slower for the
 * 10–300-byte header fields every request carries. (TextDecoder('latin1') is windows-1252 in the
 * Encoding Standard and would remap 0x80..0x9f.)
 */
export function bytesToByteString(bytes: Uint8Array): string {
  const slice = 4096;
  if (bytes.length <= slice) return fromCharCodes(null, bytes);
  let out = '';
  for (let i = 0; i < bytes.length; i += slice) {
    out += fromCharCodes(null, bytes.subarray(i, i + slice));
  }
  return out;
}

/** Throws BHTTP_MALFORMED with `context` when `problem` names one. */
export function refuse(problem: string | undefined, context: string, offset?: number): void {
  if (problem === undefined) return;
  throw new TresorError(
    'BHTTP_MALFORMED',
    `Binary HTTP ${context}: ${problem}`,
    offset === undefined ? {} : { details: { offset } },
  );
}
