import fc from 'fast-check';
import { isErrorCode, isTresorError } from '@tresor/protocol';
import { describe, expect, it } from 'vitest';
import { readTestdataJson } from '../../../test/support/testdata.js';
import { bytesToHex, concatBytes, hexToBytes } from './bytes.js';
import { HPKE_KEM, HpkeKeyPair } from './hpke.js';
import {
  createGatewayKey,
  decodeKeyConfig,
  decodeKeyConfigList,
  DEFAULT_OHTTP_SYMMETRIC_ALGORITHMS,
  encodeKeyConfig,
  encodeKeyConfigList,
  gatewayKeysById,
  type OhttpKeyConfig,
} from './ohttp-keys.js';

function field(json: unknown, name: string): string {
  const value = (json as Record<string, unknown>)[name];
  if (typeof value !== 'string') throw new Error(`test vector field ${name} missing`);
  return value;
}

const rfc = readTestdataJson('protocol/ohttp/rfc9458-appendix-a.json');
const chunked = readTestdataJson('protocol/ohttp/chunked-ohttp-draft08-example.json');

/** Runs `decode` and returns the error code, or 'ok'; anything but a TresorError fails the test. */
function outcome(decode: () => unknown): string {
  try {
    decode();
    return 'ok';
  } catch (err) {
    if (!isTresorError(err)) throw err;
    expect(isErrorCode(err.code)).toBe(true);
    return err.code;
  }
}

const x25519Config = (): fc.Arbitrary<OhttpKeyConfig> =>
  fc.record({
    keyId: fc.integer({ min: 0, max: 255 }),
    kem: fc.constant(HPKE_KEM.X25519_HKDF_SHA256),
    publicKey: fc.uint8Array({ minLength: 32, maxLength: 32 }),
    symmetricAlgorithms: fc.array(
      fc.record({ kdf: fc.integer({ min: 0, max: 0xffff }), aead: fc.integer({ min: 0, max: 0xffff }) }),
      { minLength: 1, maxLength: 12 },
    ),
  });

describe('OHTTP key configuration (RFC 9458 §3)', () => {
  it('decodes and re-encodes the RFC 9458 Appendix A configuration and list byte for byte', () => {
    const bytes = hexToBytes(field(rfc, 'key_config'));
    const config = decodeKeyConfig(bytes);
    expect(config.keyId).toBe(1);
    expect(config.kem).toBe(0x0020);
    expect(bytesToHex(config.publicKey)).toBe(field(rfc, 'gateway_public_key'));
    expect(config.symmetricAlgorithms).toEqual([
      { kdf: 1, aead: 1 },
      { kdf: 1, aead: 3 },
    ]);
    expect(bytesToHex(encodeKeyConfig(config))).toBe(field(rfc, 'key_config'));
    const list = hexToBytes(field(rfc, 'application_ohttp_keys'));
    expect(decodeKeyConfigList(list)).toEqual([config]);
    expect(bytesToHex(encodeKeyConfigList([config]))).toBe(field(rfc, 'application_ohttp_keys'));
  });

  it('decodes the chunked OHTTP example configuration', () => {
    const config = decodeKeyConfig(hexToBytes(field(chunked, 'key_config')));
    expect(bytesToHex(config.publicKey)).toBe(field(chunked, 'gateway_public_key'));
    expect(bytesToHex(encodeKeyConfig(config))).toBe(field(chunked, 'key_config'));
  });

  it('round-trips random configurations and lists', () => {
    fc.assert(
      fc.property(fc.array(x25519Config(), { minLength: 1, maxLength: 4 }), (configs) => {
        for (const config of configs) expect(decodeKeyConfig(encodeKeyConfig(config))).toEqual(config);
        expect(decodeKeyConfigList(encodeKeyConfigList(configs))).toEqual(configs);
      }),
      { numRuns: 1000 },
    );
  });

  it('refuses every truncation of a configuration and of a list', () => {
    const bytes = hexToBytes(field(rfc, 'key_config'));
    for (let n = 0; n < bytes.length; n++) {
      expect(outcome(() => decodeKeyConfig(bytes.subarray(0, n)))).toBe('OHTTP_KEY_CONFIG_MALFORMED');
    }
    const list = hexToBytes(field(rfc, 'application_ohttp_keys'));
    for (let n = 0; n < list.length; n++) {
      expect(outcome(() => decodeKeyConfigList(list.subarray(0, n)))).toBe('OHTTP_KEY_CONFIG_MALFORMED');
    }
  });

  it('refuses trailing bytes, empty, odd and overlong algorithm lists, and bad list lengths', () => {
    const base = hexToBytes(field(rfc, 'key_config'));
    const lengthAt = 3 + 32;
    const withAlgorithms = (length: number, algorithms: Uint8Array): Uint8Array =>
      concatBytes(base.subarray(0, lengthAt), new Uint8Array([length >> 8, length & 0xff]), algorithms);
    const cases: [string, Uint8Array][] = [
      ['trailing byte', concatBytes(base, new Uint8Array([0]))],
      ['empty algorithm list', withAlgorithms(0, new Uint8Array(0))],
      ['length 6, not a multiple of 4', withAlgorithms(6, new Uint8Array(6))],
      ['length 3', withAlgorithms(3, new Uint8Array(3))],
      ['length beyond the input', withAlgorithms(12, new Uint8Array(8))],
      ['length 65535', withAlgorithms(0xffff, new Uint8Array(0xffff))],
    ];
    for (const [name, bytes] of cases) {
      expect(
        outcome(() => decodeKeyConfig(bytes)),
        name,
      ).toBe('OHTTP_KEY_CONFIG_MALFORMED');
    }
    const one = hexToBytes(field(rfc, 'application_ohttp_keys'));
    const listCases: [string, Uint8Array][] = [
      ['empty list', new Uint8Array(0)],
      ['zero-length entry', concatBytes(one, new Uint8Array([0, 0]))],
      ['one stray byte', concatBytes(one, new Uint8Array([0]))],
      ['entry longer than the rest', concatBytes(one, new Uint8Array([0, 0x2e]), base)],
      [
        'entry with a trailing byte inside',
        concatBytes(new Uint8Array([0, 0x2e]), base, new Uint8Array([0])),
      ],
    ];
    for (const [name, bytes] of listCases) {
      expect(
        outcome(() => decodeKeyConfigList(bytes)),
        name,
      ).toBe('OHTTP_KEY_CONFIG_MALFORMED');
    }
  });

  it('skips configurations for unknown KEMs in a list but refuses a list of only those', () => {
    const known = hexToBytes(field(rfc, 'key_config'));
    const p256 = concatBytes(
      new Uint8Array([7, 0x00, 0x10]),
      new Uint8Array(65),
      new Uint8Array([0, 4, 0, 1, 0, 1]),
    );
    const prefixed = (c: Uint8Array): Uint8Array =>
      concatBytes(new Uint8Array([c.length >> 8, c.length & 0xff]), c);
    const mixed = decodeKeyConfigList(concatBytes(prefixed(p256), prefixed(known)));
    expect(mixed.map((c) => c.keyId)).toEqual([1]);
    expect(outcome(() => decodeKeyConfigList(prefixed(p256)))).toBe('HPKE_SUITE_UNSUPPORTED');
    expect(outcome(() => decodeKeyConfig(p256))).toBe('HPKE_SUITE_UNSUPPORTED');
  });

  it('decodes X-Wing configurations (1216-byte public keys)', async () => {
    const kp = await HpkeKeyPair.generate(HPKE_KEM.X_WING);
    const key = createGatewayKey(9, kp);
    const encoded = encodeKeyConfig(key.config);
    expect(encoded).toHaveLength(1 + 2 + 1216 + 2 + 4);
    expect(decodeKeyConfig(encoded)).toEqual(key.config);
  });

  it('refuses to encode what it could not decode', () => {
    const good: OhttpKeyConfig = decodeKeyConfig(hexToBytes(field(rfc, 'key_config')));
    expect(outcome(() => encodeKeyConfig({ ...good, keyId: 256 }))).toBe('OHTTP_KEY_CONFIG_MALFORMED');
    expect(outcome(() => encodeKeyConfig({ ...good, keyId: -1 }))).toBe('OHTTP_KEY_CONFIG_MALFORMED');
    expect(outcome(() => encodeKeyConfig({ ...good, publicKey: new Uint8Array(31) }))).toBe(
      'HPKE_KEY_INVALID',
    );
    expect(outcome(() => encodeKeyConfig({ ...good, symmetricAlgorithms: [] }))).toBe(
      'OHTTP_KEY_CONFIG_MALFORMED',
    );
    expect(
      outcome(() => encodeKeyConfig({ ...good, symmetricAlgorithms: [{ kdf: 0x10000, aead: 1 }] })),
    ).toBe('OHTTP_KEY_CONFIG_MALFORMED');
    expect(outcome(() => encodeKeyConfigList([]))).toBe('OHTTP_KEY_CONFIG_MALFORMED');
  });

  it('decoders throw only catalogued TresorErrors on random and mutated input', () => {
    const valid = hexToBytes(field(rfc, 'application_ohttp_keys'));
    const mutated = fc
      .tuple(
        fc.nat({ max: valid.length - 1 }),
        fc.integer({ min: 1, max: 255 }),
        fc.nat({ max: valid.length + 4 }),
      )
      .map(([at, xor, cut]) => {
        const copy = concatBytes(valid, new Uint8Array(4));
        copy[at]! ^= xor;
        return copy.subarray(0, cut);
      });
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 120 }), mutated), (bytes) => {
        outcome(() => decodeKeyConfig(bytes));
        outcome(() => decodeKeyConfigList(bytes));
        outcome(() => decodeKeyConfig(bytes.subarray(2)));
      }),
      { numRuns: 3000 },
    );
  });
});

describe('gateway keys', () => {
  it('publish AES-256-GCM by default and refuse suites Tresor cannot seal with', async () => {
    const kp = await HpkeKeyPair.generate();
    const key = createGatewayKey(3, kp);
    expect(key.config.symmetricAlgorithms).toEqual(DEFAULT_OHTTP_SYMMETRIC_ALGORITHMS);
    expect(key.config.publicKey).toEqual(kp.publicKey.toBytes());
    expect(outcome(() => createGatewayKey(3, kp, [{ kdf: 1, aead: 0xffff }]))).toBe('HPKE_SUITE_UNSUPPORTED');
    expect(outcome(() => createGatewayKey(3, kp, [{ kdf: 1, aead: 3 }]))).toBe('HPKE_SUITE_UNSUPPORTED');
    expect(outcome(() => createGatewayKey(300, kp))).toBe('OHTTP_KEY_CONFIG_MALFORMED');
    expect(outcome(() => createGatewayKey(3, kp, []))).toBe('OHTTP_KEY_CONFIG_MALFORMED');
    expect(outcome(() => gatewayKeysById([key, createGatewayKey(3, kp)]))).toBe('CONFIG_INVALID');
    expect(gatewayKeysById([key, createGatewayKey(4, kp)]).get(4)?.config.keyId).toBe(4);
  });
});
