/**
 * The exact source text of one member's value in a JSON object, as served. Intel PCS signs the
 * `tcbInfo` and `enclaveIdentity` objects over the bytes it sends (PCS API v4, "Get TCB Info":
 * the signature is "calculated over tcbInfo body"), so they must be cut out of the response
 * verbatim: parsing and re-serialising could reorder keys or change number and escape spellings,
 * and the signature would no longer verify (testdata README, trap 8).
 *
 * The document is first validated by JSON.parse, so the scanner below only ever walks well-formed
 * JSON (RFC 8259) and can stay simple. A repeated member of that name is refused: parsers differ
 * on which one wins, and the verifier must read the same member as everybody else.
 */

export type RawJsonMember =
  { readonly found: true; readonly text: string } | { readonly found: false; readonly problem: string };

export function rawJsonMember(document: string, name: string): RawJsonMember {
  let parsed: unknown;
  try {
    parsed = JSON.parse(document);
  } catch {
    return { found: false, problem: 'the response is not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { found: false, problem: 'the response is not a JSON object' };
  }
  const scanner = new JsonScanner(document);
  let text: string | undefined;
  for (const member of scanner.topLevelMembers()) {
    if (member.name !== name) continue;
    if (text !== undefined)
      return { found: false, problem: `the response has more than one "${name}" member` };
    text = member.value;
  }
  return text === undefined
    ? { found: false, problem: `the response has no "${name}" member` }
    : { found: true, text };
}

/** Walks the top level of a JSON object already known to be well formed. */
class JsonScanner {
  constructor(private readonly text: string) {}

  *topLevelMembers(): Generator<{ readonly name: string; readonly value: string }> {
    let i = this.skipSpace(0) + 1; // past '{'
    for (;;) {
      i = this.skipSpace(i);
      if (this.text[i] !== '"') return; // '}' of an empty object
      const keyEnd = this.stringEnd(i);
      const name = JSON.parse(this.text.slice(i, keyEnd)) as string;
      const valueStart = this.skipSpace(this.skipSpace(keyEnd) + 1); // past ':'
      const valueEnd = this.valueEnd(valueStart);
      yield { name, value: this.text.slice(valueStart, valueEnd) };
      i = this.skipSpace(valueEnd);
      if (this.text[i] !== ',') return;
      i++;
    }
  }

  /** JSON whitespace is exactly space, tab, line feed and carriage return (RFC 8259 §2). */
  private skipSpace(i: number): number {
    let j = i;
    while (j < this.text.length && ' \t\n\r'.includes(this.text[j]!)) j++;
    return j;
  }

  /** Index just past the string starting at `i` (a '"'). */
  private stringEnd(i: number): number {
    let j = i + 1;
    while (j < this.text.length && this.text[j] !== '"') j += this.text[j] === '\\' ? 2 : 1;
    return j + 1;
  }

  /** Index just past the value starting at `i`. */
  private valueEnd(i: number): number {
    const first = this.text[i];
    if (first === '"') return this.stringEnd(i);
    if (first === '{' || first === '[') {
      let depth = 0;
      let j = i;
      while (j < this.text.length) {
        const c = this.text[j]!;
        if (c === '"') {
          j = this.stringEnd(j);
          continue;
        }
        if (c === '{' || c === '[') depth++;
        else if (c === '}' || c === ']') {
          depth--;
          if (depth === 0) return j + 1;
        }
        j++;
      }
      return j;
    }
    // A number, true, false or null runs up to the next delimiter.
    let j = i;
    while (j < this.text.length && !',}] \t\n\r'.includes(this.text[j]!)) j++;
    return j;
  }
}
