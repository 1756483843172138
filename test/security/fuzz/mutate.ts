import fc from 'fast-check';

/**
 * Mutations of real vectors: what a corrupting network, a truncating proxy or an attacker editing
 * length fields produces. Every output is bounded (`maxLength` plus a small insertion), so a parser
 * that allocates from a length field it read is caught by the allocation check, not by the fuzzer
 * running out of memory itself.
 */

const EXTREMES = [0x00, 0xff, 0x7f, 0x80, 0x01, 0xfe] as const;

function flipBits(seed: Uint8Array): fc.Arbitrary<Uint8Array> {
  if (seed.length === 0) return fc.constant(seed);
  return fc
    .array(fc.tuple(fc.nat({ max: seed.length - 1 }), fc.integer({ min: 0, max: 7 })), {
      minLength: 1,
      maxLength: 8,
    })
    .map((flips) => {
      const out = seed.slice();
      for (const [at, bit] of flips) out[at] = out[at]! ^ (1 << bit);
      return out;
    });
}

function truncate(seed: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc.nat({ max: seed.length }).map((n) => seed.slice(0, n));
}

/** Overwrites a 1-, 2-, 4- or 8-byte window (a length, count or offset field) with an extreme value. */
function lengthExtremes(seed: Uint8Array): fc.Arbitrary<Uint8Array> {
  if (seed.length === 0) return fc.constant(seed);
  return fc
    .tuple(
      fc.nat({ max: seed.length - 1 }),
      fc.constantFrom(1, 2, 4, 8),
      fc.constantFrom(...EXTREMES),
      fc.boolean(),
    )
    .map(([at, width, value, highByteOnly]) => {
      const out = seed.slice();
      for (let i = at; i < Math.min(at + width, out.length); i++) {
        // Either the whole field is the extreme (0xffffffff) or only one end is (0x80000000 / 0x00000080).
        out[i] = highByteOnly ? (i === at ? value : 0) : value;
      }
      return out;
    });
}

/** Cuts a range out, or duplicates it in place (a replayed chunk, a repeated record). */
function deleteOrDuplicate(seed: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.nat({ max: seed.length }), fc.nat({ max: seed.length }), fc.boolean())
    .map(([a, b, duplicate]) => {
      const [from, to] = a <= b ? [a, b] : [b, a];
      const middle = seed.subarray(from, to);
      const out = new Uint8Array(seed.length + (duplicate ? middle.length : -middle.length));
      out.set(seed.subarray(0, duplicate ? to : from), 0);
      out.set(seed.subarray(duplicate ? from : to), duplicate ? to : from);
      return out;
    });
}

function insertBytes(seed: Uint8Array): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.nat({ max: seed.length }), fc.uint8Array({ minLength: 1, maxLength: 32 }))
    .map(([at, bytes]) => {
      const out = new Uint8Array(seed.length + bytes.length);
      out.set(seed.subarray(0, at), 0);
      out.set(bytes, at);
      out.set(seed.subarray(at), at + bytes.length);
      return out;
    });
}

/** The head of one vector joined to the tail of another (the same kind of input, mixed). */
function splice(seeds: readonly Uint8Array[]): fc.Arbitrary<Uint8Array> {
  return fc
    .tuple(fc.constantFrom(...seeds), fc.constantFrom(...seeds), fc.nat(), fc.nat())
    .map(([a, b, i, j]) => {
      const head = a.subarray(0, i % (a.length + 1));
      const tail = b.subarray(j % (b.length + 1));
      const out = new Uint8Array(head.length + tail.length);
      out.set(head, 0);
      out.set(tail, head.length);
      return out;
    });
}

export interface MutationOptions {
  /** Bound on purely random inputs (mutants are bounded by their seed's size plus 32 bytes). */
  readonly randomMaxLength?: number;
}

/**
 * Bytes from real vectors: bit flips, truncation, length-field extremes, deleted or duplicated
 * ranges, insertions, splices of two vectors, several mutations stacked, the unmodified vector, and
 * random bytes.
 */
export function mutatedBytes(
  seeds: readonly Uint8Array[],
  options: MutationOptions = {},
): fc.Arbitrary<Uint8Array> {
  if (seeds.length === 0) throw new Error('mutatedBytes needs at least one seed');
  const one = (seed: Uint8Array): fc.Arbitrary<Uint8Array> =>
    fc.oneof(
      { weight: 4, arbitrary: flipBits(seed) },
      { weight: 2, arbitrary: truncate(seed) },
      { weight: 3, arbitrary: lengthExtremes(seed) },
      { weight: 2, arbitrary: deleteOrDuplicate(seed) },
      { weight: 1, arbitrary: insertBytes(seed) },
    );
  const single = fc.constantFrom(...seeds).chain(one);
  const stacked = single.chain((first) => one(first));
  return fc.oneof(
    { weight: 10, arbitrary: single },
    { weight: 3, arbitrary: stacked },
    { weight: 2, arbitrary: splice(seeds) },
    { weight: 1, arbitrary: fc.constantFrom(...seeds) },
    { weight: 2, arbitrary: fc.uint8Array({ maxLength: options.randomMaxLength ?? 256 }) },
  );
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Text inputs (JSON, TOML, PEM, JWS): byte mutations decoded as UTF-8, plus random strings. */
export function mutatedText(seeds: readonly string[], options: MutationOptions = {}): fc.Arbitrary<string> {
  return fc.oneof(
    {
      weight: 6,
      arbitrary: mutatedBytes(
        seeds.map((s) => encoder.encode(s)),
        options,
      ).map((b) => decoder.decode(b)),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: options.randomMaxLength ?? 256, unit: 'binary' }) },
  );
}

/**
 * Structured JSON values: a real document with one subtree replaced by an arbitrary JSON value
 * (type confusion: a number where a string was, an array where an object was, a huge integer, a
 * `__proto__` key), plus arbitrary JSON values. For parsers that take an already-decoded `unknown`.
 */
export function mutatedJson(seeds: readonly unknown[]): fc.Arbitrary<unknown> {
  const weird = fc.oneof(
    fc.jsonValue({ maxDepth: 2 }),
    fc.constantFrom(
      null,
      '',
      -1,
      0,
      2 ** 53,
      1e308,
      -0,
      'A'.repeat(300),
      [],
      {},
      { __proto__: { polluted: true } },
      JSON.parse('{"__proto__": {"polluted": true}}') as unknown,
      '../../etc/passwd',
      '\u0000',
    ),
  );
  const replaced = fc
    .tuple(fc.constantFrom(...seeds), fc.nat(), weird, fc.boolean())
    .map(([seed, pick, value, deleteInstead]) => replaceOne(seed, pick, value, deleteInstead));
  return fc.oneof(
    { weight: 8, arbitrary: replaced },
    { weight: 1, arbitrary: fc.constantFrom(...seeds) },
    { weight: 2, arbitrary: weird },
  );
}

/** A deep copy of `value` with its `pick`-th node (in pre-order) replaced by `by` or deleted. */
function replaceOne(value: unknown, pick: number, by: unknown, deleteInstead: boolean): unknown {
  const count = countNodes(value);
  let index = pick % count;
  const walk = (node: unknown): unknown => {
    if (index-- === 0) return by;
    if (Array.isArray(node)) {
      const out: unknown[] = [];
      for (const item of node) {
        const before = index;
        const mapped = walk(item);
        if (deleteInstead && before === 0) continue;
        out.push(mapped);
      }
      return out;
    }
    if (node !== null && typeof node === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(node)) {
        const before = index;
        const mapped = walk(v);
        if (deleteInstead && before === 0) continue;
        Object.defineProperty(out, k, {
          value: mapped,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      return out;
    }
    return node;
  };
  return walk(value);
}

function countNodes(value: unknown): number {
  if (Array.isArray(value)) return 1 + value.reduce((n: number, v) => n + countNodes(v), 0);
  if (value !== null && typeof value === 'object')
    return 1 + Object.values(value).reduce((n: number, v) => n + countNodes(v), 0);
  return 1;
}
