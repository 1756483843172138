import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TresorError, isErrorCode } from '@tresor/protocol';
import {
  MAX_HEADER_JSON_BYTES,
  SEALED_MODEL_ALGORITHM,
  SEALED_MODEL_MAGIC,
  encodeSealedModelHeader,
  parseSealedModelHeaderJson,
  parseSealedModelPreamble,
  type SealedModelHeader,
} from './sealed-model-format.js';
import type { ByteSource } from './sealed-model-source.js';
import { byteSourceFromBytes } from './sealed-model-source.js';
import { openSealedModel } from './sealed-model-unseal.js';

const header: SealedModelHeader = {
  version: 1,
  algorithm: SEALED_MODEL_ALGORITHM,
  keyId: 'kbs:///tresor/model/llama-3-8b',
  keyFingerprint: '00112233445566778899aabbccddeeff',
  chunkSize: 4194304,
  plaintextLength: 1000,
  plaintextSha256: 'ab'.repeat(32),
  salt: 'cd'.repeat(32),
  noncePrefix: '01020304050607',
  metadata: { name: 'llama', 'format.quant': 'Q4_K_M', licence: 'Llama 3 Community — été' },
};

const encoder = new TextEncoder();
const jsonOf = (bytes: Uint8Array): string => new TextDecoder().decode(bytes.subarray(13));

/** The bytes of a sealed model whose header JSON is `json` (no MAC, no chunks). */
function withJson(json: string, version = 1): Uint8Array {
  const body = encoder.encode(json);
  const out = new Uint8Array(13 + body.length + 32);
  out.set(SEALED_MODEL_MAGIC);
  out[8] = version;
  new DataView(out.buffer).setUint32(9, body.length);
  out.set(body, 13);
  return out;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof TresorError) return err.code;
    throw err;
  }
  return 'OK';
}

describe('sealed model header encoding', () => {
  it('writes magic, version 1, a big-endian length and RFC 8785 canonical JSON', () => {
    const bytes = encodeSealedModelHeader(header);
    expect([...bytes.subarray(0, 9)]).toEqual([0x89, 0x54, 0x52, 0x45, 0x53, 0x4f, 0x52, 0x0a, 1]);
    expect(new DataView(bytes.buffer).getUint32(9)).toBe(bytes.length - 13);
    // Keys sorted by UTF-16 code units at both levels, no whitespace, non-ASCII left as UTF-8.
    expect(jsonOf(bytes)).toBe(
      '{"algorithm":"AES-256-GCM-HKDF-SHA256-STREAM","chunkSize":4194304,' +
        '"keyFingerprint":"00112233445566778899aabbccddeeff","keyId":"kbs:///tresor/model/llama-3-8b",' +
        '"metadata":{"format.quant":"Q4_K_M","licence":"Llama 3 Community — été","name":"llama"},' +
        '"noncePrefix":"01020304050607","plaintextLength":1000,"plaintextSha256":"' +
        'ab'.repeat(32) +
        '","salt":"' +
        'cd'.repeat(32) +
        '"}',
    );
  });

  it('parses what it writes back to the same header', () => {
    expect(parseSealedModelHeaderJson(encodeSealedModelHeader(header).subarray(13))).toEqual(header);
  });

  it('refuses to write a header a reader would refuse', () => {
    const bad: Partial<Record<keyof SealedModelHeader, unknown>>[] = [
      { chunkSize: 0 },
      { chunkSize: 64 * 1024 * 1024 + 1 },
      { chunkSize: 1.5 },
      { plaintextLength: -1 },
      { plaintextLength: 2 ** 53 },
      { plaintextLength: 2 ** 32 + 1, chunkSize: 1 },
      { keyId: '' },
      { keyId: 'has space' },
      { keyId: 'k'.repeat(257) },
      { metadata: { 'bad key': 'x' } },
      { metadata: { name: 'esc\u001b[2J' } },
      { metadata: { name: 'rtl\u202eoverride' } },
      { metadata: { name: 'x'.repeat(1025) } },
      { metadata: Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${String(i)}`, 'v'])) },
    ];
    for (const change of bad) {
      expect(() => encodeSealedModelHeader({ ...header, ...change } as SealedModelHeader)).toThrow(
        expect.objectContaining({ code: 'USAGE_INVALID' }) as Error,
      );
    }
  });

  it('refuses a header larger than the limit when writing', () => {
    const metadata = Object.fromEntries(
      Array.from({ length: 64 }, (_, i) => [`k${String(i)}`, 'v'.repeat(1024)]),
    );
    expect(() => encodeSealedModelHeader({ ...header, metadata })).toThrow(/limit is 65536/);
  });
});

const canonical = jsonOf(encodeSealedModelHeader(header));

describe('sealed model header parsing', () => {
  it('reports the codes for a foreign file, an unknown version and an unknown algorithm', async () => {
    expect(
      await codeOf(openSealedModel(byteSourceFromBytes(encoder.encode('GGUF\x03\x00\x00\x00 model')))),
    ).toBe('SEALED_MODEL_MALFORMED');
    expect(await codeOf(openSealedModel(byteSourceFromBytes(withJson(canonical, 2))))).toBe(
      'SEALED_MODEL_VERSION_UNSUPPORTED',
    );
    const other = canonical.replace(SEALED_MODEL_ALGORITHM, 'CHACHA20-POLY1305-STREAM');
    expect(await codeOf(openSealedModel(byteSourceFromBytes(withJson(other))))).toBe(
      'SEALED_MODEL_ALGORITHM_UNSUPPORTED',
    );
  });

  it('accepts only the canonical serialisation, so no two readers can disagree', () => {
    const variants = [
      canonical.replace('{"algorithm"', '{ "algorithm"'),
      canonical.replace(',"chunkSize":4194304', ',"chunkSize":4194304.0'),
      canonical.replace(',"chunkSize":4194304', ',"chunkSize":4.194304e6'),
      canonical.replace('"keyId":"kbs', '"keyId":"\\u006bbs'),
      canonical.replace(',"salt"', ',"plaintextLength":1000,"salt"'),
      canonical.replace('"name":"llama"', '"name":"llama","name":"other"'),
      canonical
        .replace('"format.quant":"Q4_K_M","licence"', '"licence"')
        .replace('}', ',"format.quant":"Q4_K_M"}'),
    ];
    for (const json of variants) {
      expect(() => parseSealedModelHeaderJson(encoder.encode(json)), json).toThrow(
        expect.objectContaining({ code: 'SEALED_MODEL_MALFORMED' }) as Error,
      );
    }
  });

  it('refuses missing, extra and mistyped fields and invalid values', () => {
    const parsed = JSON.parse(canonical) as Record<string, unknown>;
    const mutations: ((h: Record<string, unknown>) => void)[] = [
      (h) => delete h.salt,
      (h) => (h.extra = 1),
      (h) => (h.chunkSize = '4194304'),
      (h) => (h.metadata = []),
      (h) => (h.metadata = { name: 3 }),
      (h) => (h.metadata = { __proto__x: 'a' }),
      (h) => (h.plaintextSha256 = 'AB'.repeat(32)),
      (h) => (h.noncePrefix = '0102'),
      (h) => (h.keyFingerprint = 'zz'.repeat(16)),
    ];
    for (const mutate of mutations) {
      const copy = structuredClone(parsed);
      mutate(copy);
      expect(() => parseSealedModelHeaderJson(encoder.encode(JSON.stringify(copy)))).toThrow(
        expect.objectContaining({ code: 'SEALED_MODEL_MALFORMED' }) as Error,
      );
    }
    for (const json of [
      '[]',
      'null',
      '"x"',
      '{',
      '\u00ff',
      '{"algorithm":"AES-256-GCM-HKDF-SHA256-STREAM"}',
    ]) {
      expect(() => parseSealedModelHeaderJson(encoder.encode(json))).toThrow(TresorError);
    }
    expect(() => parseSealedModelHeaderJson(Uint8Array.of(0x7b, 0xc3, 0x28, 0x7d))).toThrow(/UTF-8/);
  });

  it('never shows control characters from a crafted algorithm in its message', () => {
    const evil = canonical.replace(SEALED_MODEL_ALGORITHM, '\\u001b]0;pwned\\u0007');
    expect(() => parseSealedModelHeaderJson(encoder.encode(evil))).toThrow(/algorithm \(not shown\)/);
  });

  it('refuses a huge declared header length in a tiny file before reading or allocating it', async () => {
    const tiny = new Uint8Array(20);
    tiny.set(SEALED_MODEL_MAGIC);
    tiny[8] = 1;
    for (const length of [0xffffffff, MAX_HEADER_JSON_BYTES + 1, 1]) {
      new DataView(tiny.buffer).setUint32(9, length);
      const requested: number[] = [];
      const inner = byteSourceFromBytes(tiny);
      const spy: ByteSource = {
        read(n) {
          requested.push(n);
          return inner.read(n);
        },
      };
      expect(await codeOf(openSealedModel(spy))).toBe('SEALED_MODEL_MALFORMED');
      expect(requested).toEqual([13]);
    }
    // A plausible length that the file cannot satisfy is TRUNCATED, not an allocation of that size.
    new DataView(tiny.buffer).setUint32(9, 60_000);
    expect(await codeOf(openSealedModel(byteSourceFromBytes(tiny)))).toBe('SEALED_MODEL_TRUNCATED');
  });

  it('classifies short preambles: MALFORMED before the full magic, TRUNCATED after it', () => {
    for (let cut = 0; cut < 13; cut++) {
      const bytes = withJson(canonical).subarray(0, cut);
      expect(() => parseSealedModelPreamble(bytes)).toThrow(
        expect.objectContaining({
          code: cut < 8 ? 'SEALED_MODEL_MALFORMED' : 'SEALED_MODEL_TRUNCATED',
        }) as Error,
      );
    }
  });
});

describe('malformed headers, fuzzed', () => {
  const sealedCodes = new Set([
    'SEALED_MODEL_MALFORMED',
    'SEALED_MODEL_VERSION_UNSUPPORTED',
    'SEALED_MODEL_ALGORITHM_UNSUPPORTED',
    'SEALED_MODEL_TRUNCATED',
  ]);
  const expectOnlyCatalogueErrors = async (bytes: Uint8Array): Promise<void> => {
    try {
      await openSealedModel(byteSourceFromBytes(bytes));
    } catch (err) {
      expect(err).toBeInstanceOf(TresorError);
      const code = (err as TresorError).code;
      expect(isErrorCode(code) && sealedCodes.has(code), code).toBe(true);
    }
  };

  it('random bytes after the magic yield only sealed-model catalogue errors', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.integer({ min: 0, max: 2 }),
        async (tail, version) => {
          const bytes = new Uint8Array(9 + tail.length);
          bytes.set(SEALED_MODEL_MAGIC);
          bytes[8] = version;
          bytes.set(tail, 9);
          await expectOnlyCatalogueErrors(bytes);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('random JSON values as the header yield only sealed-model catalogue errors', async () => {
    const field = fc.oneof(
      fc.jsonValue(),
      fc.string(),
      fc.integer(),
      fc.double(),
      fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.jsonValue())),
    );
    const base = JSON.parse(canonical) as Record<string, unknown>;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue().map((v) => JSON.stringify(v)),
          // Realistic headers with one or two fields replaced by arbitrary JSON.
          fc
            .record({
              a: fc.constantFrom(...Object.keys(base)),
              b: fc.constantFrom(...Object.keys(base)),
              x: field,
              y: field,
            })
            .map(({ a, b, x, y }) => JSON.stringify({ ...base, [a]: x, [b]: y })),
          fc.string({ unit: 'binary', maxLength: 200 }),
        ),
        async (json) => {
          await expectOnlyCatalogueErrors(withJson(json));
        },
      ),
      { numRuns: 1000 },
    );
  });
});
