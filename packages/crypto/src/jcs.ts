import canonicalize from 'canonicalize';
import { TresorError } from '@tresor/protocol';
import { equalBytes, toArrayBuffer, utf8Encode } from './bytes.js';

/**
 * Evidence binding (DESIGN.md §3): a TEE's runtime data is a JSON object (HPKE key config, TLS
 * key hash, nonce, ...) and its hardware report carries
 *
 *   report_data = SHA-384(JCS(runtime data)) ‖ 16 zero bytes   (64 bytes)
 *
 * — the rule Trustee uses (testdata/protocol/kbs/KBS.md), so one verifier serves both. JCS is
 * RFC 8785, via npm `canonicalize`, after a strict check that the value is JSON: canonicalize
 * itself writes `undefined` for a function member and throws plain errors, neither of which may
 * reach a hash.
 */

/** A JSON value as RFC 8785 canonicalises it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

/** Deeper nesting is refused before it can exhaust the stack of the recursive canonicaliser. */
const MAX_DEPTH = 256;

function invalid(message: string): TresorError {
  return new TresorError('JCS_VALUE_INVALID', message);
}

/** True for a lone UTF-16 surrogate: not expressible as Unicode, which RFC 8785 §3.1 (I-JSON) requires. */
function hasLoneSurrogate(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code >= 0xd800 && code <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return true;
      i++;
    } else if (code >= 0xdc00 && code <= 0xdfff) {
      return true;
    }
  }
  return false;
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function hasToJson(value: object): value is { toJSON: (key: string) => unknown } {
  return typeof (value as { toJSON?: unknown }).toJSON === 'function';
}

/**
 * Copies `value` into plain JSON data, refusing what JSON cannot carry. `undefined` object
 * members are left out and `undefined` array elements become null, as JSON.stringify does;
 * `toJSON` is honoured, as JSON.stringify does (Date). Maps, Sets, typed arrays and class
 * instances without `toJSON` are refused rather than silently serialised as `{}` or as
 * index-keyed objects. Error messages name the JSON path, never the value (it may be secret).
 */
function toJson(value: unknown, path: string, depth: number, seen: Set<object>): JsonValue | undefined {
  switch (typeof value) {
    case 'string':
      if (hasLoneSurrogate(value)) throw invalid(`${path} contains a lone UTF-16 surrogate`);
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw invalid(`${path} is NaN or Infinity, which JSON cannot represent`);
      return value;
    case 'boolean':
      return value;
    case 'undefined':
      return undefined;
    case 'bigint':
      throw invalid(`${path} is a BigInt; convert it to a string or a safe integer first`);
    case 'function':
    case 'symbol':
      throw invalid(`${path} is a ${typeof value}, which JSON cannot represent`);
    case 'object':
      break;
  }
  if (value === null) return null;
  if (depth > MAX_DEPTH) throw invalid(`${path} is nested more than ${MAX_DEPTH} levels deep`);
  if (seen.has(value)) throw invalid(`${path} is a circular reference`);
  seen.add(value);
  try {
    if (hasToJson(value)) return toJson(value.toJSON(''), path, depth + 1, seen);
    if (Array.isArray(value)) {
      return value.map((item: unknown, index) => toJson(item, `${path}[${index}]`, depth + 1, seen) ?? null);
    }
    if (!isPlainObject(value)) {
      throw invalid(`${path} is not a plain object or array (Map, Set, typed array or class instance)`);
    }
    // A null prototype keeps a member named "__proto__" an ordinary member (JSON.parse makes
    // it an own property; assigning it on a normal object would change the prototype instead).
    const out = Object.create(null) as Record<string, JsonValue>;
    for (const [key, member] of Object.entries(value)) {
      if (hasLoneSurrogate(key)) throw invalid(`${path} has a member name with a lone UTF-16 surrogate`);
      const json = toJson(member, `${path}.${key}`, depth + 1, seen);
      if (json !== undefined) out[key] = json;
    }
    return out;
  } finally {
    seen.delete(value);
  }
}

/**
 * The RFC 8785 canonical JSON text of `value`: members sorted by UTF-16 code units, numbers
 * in ECMAScript shortest form, minimal string escaping, no whitespace.
 *
 * @throws TresorError JCS_VALUE_INVALID for NaN, ±Infinity, BigInt, functions, symbols, lone
 *   surrogates, circular references, non-plain objects, or `undefined` as the whole value.
 */
export function canonicalJson(value: unknown): string {
  let json: JsonValue | undefined;
  try {
    json = toJson(value, '$', 0, new Set());
  } catch (cause) {
    if (cause instanceof TresorError) throw cause;
    // A getter or toJSON that throws: the value cannot be read, so it cannot be bound.
    throw new TresorError('JCS_VALUE_INVALID', 'reading the value threw an error', { cause });
  }
  if (json === undefined) throw invalid('$ is undefined, which JSON cannot represent');
  const text = canonicalize(json);
  // Unreachable for checked JSON data; kept so a library change cannot hand back "undefined".
  if (text === undefined) throw invalid('the value has no JSON form');
  return text;
}

/** Length of SNP, TDX, SGX and CCA report data (KBS.md: "zero-padded on the right"). */
export const REPORT_DATA_LENGTH = 64;

/**
 * The report data that binds `runtimeData` into a TEE report: SHA-384 of its RFC 8785 canonical
 * JSON, zero-padded to 64 bytes (DESIGN.md §3, Trustee's rule).
 *
 * @throws TresorError JCS_VALUE_INVALID when `runtimeData` is not JSON (see {@link canonicalJson}).
 */
export async function runtimeDataHash(runtimeData: unknown): Promise<Uint8Array> {
  const text = canonicalJson(runtimeData);
  const digest = await crypto.subtle.digest('SHA-384', toArrayBuffer(utf8Encode(text)));
  const reportData = new Uint8Array(REPORT_DATA_LENGTH);
  reportData.set(new Uint8Array(digest));
  return reportData;
}

/**
 * Whether `reportData` (from a verified report) binds `runtimeData`. Compares all 64 bytes,
 * padding included, in constant time; report data of any other length never matches.
 *
 * @throws TresorError JCS_VALUE_INVALID when `runtimeData` is not JSON.
 */
export async function reportDataMatches(reportData: Uint8Array, runtimeData: unknown): Promise<boolean> {
  const expected = await runtimeDataHash(runtimeData);
  return equalBytes(reportData, expected);
}
