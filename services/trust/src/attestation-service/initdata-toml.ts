import { TresorError } from '@tresor/protocol';

/**
 * A reader for the initdata document (confidential-containers/trustee kbs/docs/initdata.md): a TOML
 * file with top-level `version` and `algorithm` strings and a `[data]` table of strings. Trustee
 * parses it into `Initdata { version, algorithm, data: HashMap<String, String> }`, so anything else
 * (numbers, arrays, other tables, dotted keys) is not initdata and is refused here too.
 *
 * The TOML 1.0.0 subset read: comments, bare keys and quoted keys, and the four string forms —
 * basic "…" with the escapes of TOML §String, literal '…', multi-line basic """…""" (line-ending
 * backslash, first newline trimmed) and multi-line literal '''…'''.
 */
export interface InitDataDocument {
  readonly version: string;
  readonly algorithm: string;
  readonly data: Readonly<Record<string, string>>;
}

/** CoCo initdata bodies carry agent policies and config files; far larger is not initdata. */
export const MAX_INIT_DATA_BYTES = 256 * 1024;

const BARE_KEY = /[A-Za-z0-9_-]/;
const TOP_LEVEL_KEYS = new Set(['version', 'algorithm']);

function malformed(why: string, line: number): TresorError {
  return new TresorError(
    'INIT_DATA_MALFORMED',
    `the init-data is not an initdata TOML document: ${why} (line ${line})`,
  );
}

class Reader {
  #pos = 0;
  readonly #text: string;

  constructor(text: string) {
    this.#text = text;
  }

  get line(): number {
    let line = 1;
    for (let i = 0; i < this.#pos && i < this.#text.length; i++) if (this.#text[i] === '\n') line++;
    return line;
  }

  get done(): boolean {
    return this.#pos >= this.#text.length;
  }

  peek(offset = 0): string {
    return this.#text[this.#pos + offset] ?? '';
  }

  startsWith(token: string): boolean {
    return this.#text.startsWith(token, this.#pos);
  }

  take(count = 1): string {
    const taken = this.#text.slice(this.#pos, this.#pos + count);
    this.#pos += count;
    return taken;
  }

  fail(why: string): TresorError {
    return malformed(why, this.line);
  }

  skipSpaces(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.#pos++;
  }

  /** Spaces, an optional comment, then a newline or the end. */
  endOfLine(): void {
    this.skipSpaces();
    if (this.peek() === '#') this.skipComment();
    if (this.peek() === '\r' && this.peek(1) === '\n') this.#pos += 2;
    else if (this.peek() === '\n') this.#pos += 1;
    else if (!this.done) throw this.fail('unexpected text after a value');
  }

  skipComment(): void {
    while (!this.done && this.peek() !== '\n' && !(this.peek() === '\r' && this.peek(1) === '\n')) {
      const c = this.take();
      if (isControl(c) && c !== '\t') throw this.fail('control character in a comment');
    }
  }

  /** Blank lines and comment lines. */
  skipBlank(): void {
    for (;;) {
      this.skipSpaces();
      if (this.peek() === '#') this.skipComment();
      if (this.peek() === '\n') this.#pos++;
      else if (this.peek() === '\r' && this.peek(1) === '\n') this.#pos += 2;
      else return;
    }
  }
}

function isControl(c: string): boolean {
  const code = c.charCodeAt(0);
  return code < 0x20 || code === 0x7f;
}

function readKey(r: Reader): string {
  const c = r.peek();
  if (c === '"') {
    if (r.startsWith('"""')) throw r.fail('a key cannot be a multi-line string');
    return readBasic(r);
  }
  if (c === "'") {
    if (r.startsWith("'''")) throw r.fail('a key cannot be a multi-line string');
    return readLiteral(r);
  }
  let key = '';
  while (BARE_KEY.test(r.peek()) && r.peek() !== '') key += r.take();
  if (key.length === 0) throw r.fail('expected a key');
  return key;
}

function readEscape(r: Reader): string {
  const c = r.take();
  switch (c) {
    case 'b':
      return '\b';
    case 't':
      return '\t';
    case 'n':
      return '\n';
    case 'f':
      return '\f';
    case 'r':
      return '\r';
    case '"':
      return '"';
    case '\\':
      return '\\';
    case 'u':
    case 'U': {
      const digits = r.take(c === 'u' ? 4 : 8);
      if (!/^[0-9A-Fa-f]+$/.test(digits) || digits.length !== (c === 'u' ? 4 : 8))
        throw r.fail('bad \\u escape');
      const code = parseInt(digits, 16);
      // TOML §String: only Unicode scalar values (no surrogates, at most U+10FFFF).
      if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        throw r.fail('escape is not a Unicode scalar value');
      return String.fromCodePoint(code);
    }
    default:
      throw r.fail(`unknown escape \\${c}`);
  }
}

function readBasic(r: Reader): string {
  r.take(); // "
  let out = '';
  for (;;) {
    if (r.done) throw r.fail('unterminated string');
    const c = r.take();
    if (c === '"') return out;
    if (c === '\\') out += readEscape(r);
    else if (c === '\n' || (isControl(c) && c !== '\t'))
      throw r.fail('control character or newline in a string');
    else out += c;
  }
}

function readLiteral(r: Reader): string {
  r.take(); // '
  let out = '';
  for (;;) {
    if (r.done) throw r.fail('unterminated string');
    const c = r.take();
    if (c === "'") return out;
    if (c === '\n' || (isControl(c) && c !== '\t')) throw r.fail('control character or newline in a string');
    out += c;
  }
}

/** Up to two quote characters may end the content right before the closing delimiter (TOML §String). */
function closingQuotes(r: Reader, quote: string): string | null {
  const delimiter = quote.repeat(3);
  if (!r.startsWith(delimiter)) return null;
  let extra = 0;
  while (extra < 2 && r.peek(3 + extra) === quote) extra++;
  r.take(3 + extra);
  return quote.repeat(extra);
}

function trimFirstNewline(r: Reader): void {
  if (r.peek() === '\n') r.take();
  else if (r.peek() === '\r' && r.peek(1) === '\n') r.take(2);
}

function readMultiLineBasic(r: Reader): string {
  r.take(3);
  trimFirstNewline(r);
  let out = '';
  for (;;) {
    if (r.done) throw r.fail('unterminated multi-line string');
    const end = closingQuotes(r, '"');
    if (end !== null) return out + end;
    const c = r.take();
    if (c === '\\') {
      // A line-ending backslash trims the newline and all whitespace up to the next character.
      let look = 0;
      while (r.peek(look) === ' ' || r.peek(look) === '\t') look++;
      if (r.peek(look) === '\n' || (r.peek(look) === '\r' && r.peek(look + 1) === '\n')) {
        while ([' ', '\t', '\n', '\r'].includes(r.peek())) r.take();
      } else {
        out += readEscape(r);
      }
    } else if (c === '\r' && r.peek() === '\n') {
      out += '\r';
    } else if (isControl(c) && c !== '\t' && c !== '\n') {
      throw r.fail('control character in a string');
    } else {
      out += c;
    }
  }
}

function readMultiLineLiteral(r: Reader): string {
  r.take(3);
  trimFirstNewline(r);
  let out = '';
  for (;;) {
    if (r.done) throw r.fail('unterminated multi-line string');
    const end = closingQuotes(r, "'");
    if (end !== null) return out + end;
    const c = r.take();
    if (isControl(c) && c !== '\t' && c !== '\n' && !(c === '\r' && r.peek() === '\n')) {
      throw r.fail('control character in a string');
    }
    out += c;
  }
}

function readString(r: Reader): string {
  if (r.startsWith('"""')) return readMultiLineBasic(r);
  if (r.startsWith("'''")) return readMultiLineLiteral(r);
  if (r.peek() === '"') return readBasic(r);
  if (r.peek() === "'") return readLiteral(r);
  throw r.fail('initdata values are strings');
}

/**
 * Parses an initdata document. @throws TresorError INIT_DATA_MALFORMED for anything that is not
 * one (including TOML features initdata does not use).
 */
export function parseInitDataToml(text: string): InitDataDocument {
  if (text.length > MAX_INIT_DATA_BYTES)
    throw malformed(`it is longer than ${MAX_INIT_DATA_BYTES} characters`, 1);
  const r = new Reader(text);
  const top = new Map<string, string>();
  const data = new Map<string, string>();
  let table: 'top' | 'data' = 'top';
  for (;;) {
    r.skipBlank();
    if (r.done) break;
    if (r.peek() === '[') {
      r.take();
      r.skipSpaces();
      const name = readKey(r);
      r.skipSpaces();
      if (r.take() !== ']' || r.peek() === ']') throw r.fail('expected a [table] header');
      if (name !== 'data') throw r.fail(`initdata has one table, [data], not [${name}]`);
      if (table === 'data') throw r.fail('[data] appears twice');
      table = 'data';
      r.endOfLine();
      continue;
    }
    const key = readKey(r);
    r.skipSpaces();
    if (r.peek() === '.') throw r.fail('dotted keys are not initdata');
    if (r.take() !== '=') throw r.fail(`expected "=" after key ${JSON.stringify(key.slice(0, 64))}`);
    r.skipSpaces();
    const value = readString(r);
    r.endOfLine();
    const target = table === 'top' ? top : data;
    if (table === 'top' && !TOP_LEVEL_KEYS.has(key))
      throw r.fail(`unknown top-level key ${JSON.stringify(key.slice(0, 64))}`);
    if (target.has(key)) throw r.fail(`key ${JSON.stringify(key.slice(0, 64))} appears twice`);
    target.set(key, value);
  }
  const version = top.get('version');
  const algorithm = top.get('algorithm');
  if (version === undefined || algorithm === undefined)
    throw malformed('version and algorithm are required', 1);
  return { version, algorithm, data: Object.fromEntries(data) };
}
