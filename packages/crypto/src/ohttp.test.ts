import fc from 'fast-check';
import { isErrorCode, isTresorError } from '@tresor/protocol';
import { describe, expect, it } from 'vitest';
import { readTestdataJson } from '../../../test/support/testdata.js';
import { bytesToHex, concatBytes, hexToBytes } from './bytes.js';
import { HPKE_KEM, HpkeKeyPair, HpkeSuite, setupRecipient } from './hpke.js';
import { REQUEST_LABEL } from './ohttp-context.js';
import {
  createGatewayKey,
  decodeKeyConfig,
  gatewayKeysById,
  type OhttpGatewayKeys,
  type OhttpKeyConfig,
} from './ohttp-keys.js';
import { deriveResponseKeyMaterial, RESPONSE_LABEL } from './ohttp-response-key.js';
import { decapsulateRequest, encapsulateRequest } from './ohttp.js';

const rfc = readTestdataJson('protocol/ohttp/rfc9458-appendix-a.json');
function hexField(name: string): Uint8Array {
  const value = (rfc as Record<string, unknown>)[name];
  if (typeof value !== 'string') throw new Error(`test vector field ${name} missing`);
  return hexToBytes(value);
}

/** The RFC's gateway: its key pair under the RFC's own configuration (AES-128-GCM offered). */
async function rfcGateway(): Promise<{ config: OhttpKeyConfig; keys: OhttpGatewayKeys }> {
  const keyPair = await HpkeKeyPair.fromPrivateKey(0x20, hexField('gateway_private_key'));
  const config = decodeKeyConfig(hexField('key_config'));
  return { config, keys: new Map([[config.keyId, { config, keyPair }]]) };
}

/** The error code `run` rejects with; any non-TresorError fails the test. */
async function failure(run: () => Promise<unknown>): Promise<string> {
  try {
    await run();
  } catch (err) {
    if (!isTresorError(err)) throw err;
    expect(isErrorCode(err.code)).toBe(true);
    return err.code;
  }
  return 'ok';
}

describe('OHTTP against RFC 9458 Appendix A', () => {
  it('the gateway decapsulates the RFC request and re-creates the RFC response byte for byte', async () => {
    const { keys } = await rfcGateway();
    const got = await decapsulateRequest(keys, hexField('encapsulated_request'));
    expect(bytesToHex(got.request)).toBe(bytesToHex(hexField('request_bhttp')));
    expect(got.keyId).toBe(1);
    expect(got.suite).toEqual({ kem: 0x20, kdf: 1, aead: 1 });
    const response = await got.responder.encapsulateResponse(hexField('response_bhttp'), {
      testResponseNonce: hexField('response_nonce'),
    });
    expect(bytesToHex(response)).toBe(bytesToHex(hexField('encapsulated_response')));
  });

  it('derives the RFC exported secret, AEAD key and nonce (§4.4)', async () => {
    const keyPair = await HpkeKeyPair.fromPrivateKey(0x20, hexField('gateway_private_key'));
    const suite = HpkeSuite.of({ kem: 0x20, kdf: 1, aead: 1 });
    const enc = hexField('client_ephemeral_public_key');
    const context = await setupRecipient(suite, keyPair, enc, hexField('hpke_info'));
    expect(bytesToHex(await context.export(new TextEncoder().encode(RESPONSE_LABEL), 16))).toBe(
      bytesToHex(hexField('response_exported_secret')),
    );
    const material = await deriveResponseKeyMaterial(
      suite,
      context,
      RESPONSE_LABEL,
      enc,
      hexField('response_nonce'),
    );
    expect(bytesToHex(material.key)).toBe(bytesToHex(hexField('response_aead_key')));
    expect(bytesToHex(material.nonce)).toBe(bytesToHex(hexField('response_aead_nonce')));
    expect(REQUEST_LABEL).toBe('message/bhttp request');
  });

  it('the client re-creates the RFC request with the RFC ephemeral key and opens the RFC response', async () => {
    const { config } = await rfcGateway();
    const ephemeral = await HpkeKeyPair.fromPrivateKey(0x20, hexField('client_ephemeral_private_key'));
    expect(bytesToHex(ephemeral.publicKey.toBytes())).toBe(
      bytesToHex(hexField('client_ephemeral_public_key')),
    );
    const { encapsulatedRequest, context } = await encapsulateRequest(config, hexField('request_bhttp'), {
      testEphemeralKey: ephemeral,
    });
    expect(bytesToHex(encapsulatedRequest)).toBe(bytesToHex(hexField('encapsulated_request')));
    const response = await context.decapsulateResponse(hexField('encapsulated_response'));
    expect(bytesToHex(response)).toBe(bytesToHex(hexField('response_bhttp')));
  });

  it('refuses every single-bit flip of the RFC request with the code of the field it hits', async () => {
    const { keys } = await rfcGateway();
    const request = hexField('encapsulated_request');
    for (let bit = 0; bit < request.length * 8; bit++) {
      const flipped = request.slice();
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      const byte = bit >> 3;
      const expected =
        byte < 3 ? 'OHTTP_KEY_ID_UNKNOWN' : byte < 7 ? 'HPKE_SUITE_UNSUPPORTED' : 'OHTTP_DECRYPT_FAILED';
      expect(await failure(() => decapsulateRequest(keys, flipped)), `bit ${bit}`).toBe(expected);
    }
  });

  it('refuses every single-bit flip and every truncation of the RFC response', async () => {
    const { config } = await rfcGateway();
    const ephemeral = await HpkeKeyPair.fromPrivateKey(0x20, hexField('client_ephemeral_private_key'));
    const { context } = await encapsulateRequest(config, hexField('request_bhttp'), {
      testEphemeralKey: ephemeral,
    });
    const response = hexField('encapsulated_response');
    for (let bit = 0; bit < response.length * 8; bit++) {
      const flipped = response.slice();
      flipped[bit >> 3]! ^= 1 << (bit & 7);
      expect(await failure(() => context.decapsulateResponse(flipped)), `bit ${bit}`).toBe(
        'OHTTP_DECRYPT_FAILED',
      );
    }
    for (let n = 0; n < response.length; n++) {
      const expected = n < 16 + 16 ? 'OHTTP_MESSAGE_MALFORMED' : 'OHTTP_DECRYPT_FAILED';
      expect(await failure(() => context.decapsulateResponse(response.subarray(0, n))), `length ${n}`).toBe(
        expected,
      );
    }
  });

  it('refuses every truncation of the RFC request', async () => {
    const { keys } = await rfcGateway();
    const request = hexField('encapsulated_request');
    for (let n = 0; n < request.length; n++) {
      const expected = n < 7 + 32 + 16 ? 'OHTTP_MESSAGE_MALFORMED' : 'OHTTP_DECRYPT_FAILED';
      expect(await failure(() => decapsulateRequest(keys, request.subarray(0, n))), `length ${n}`).toBe(
        expected,
      );
    }
  });
});

describe('OHTTP round trips', () => {
  it('carries random requests and responses with the default suite', async () => {
    const key = createGatewayKey(7, await HpkeKeyPair.generate());
    const keys = gatewayKeysById([key]);
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 2048 }),
        fc.uint8Array({ maxLength: 2048 }),
        async (req, res) => {
          const { encapsulatedRequest, context } = await encapsulateRequest(key.config, req);
          expect(encapsulatedRequest).toHaveLength(7 + 32 + req.length + 16);
          const got = await decapsulateRequest(keys, encapsulatedRequest);
          expect(got.request).toEqual(req);
          expect(got.suite).toEqual({ kem: 0x20, kdf: 1, aead: 2 });
          const sealed = await got.responder.encapsulateResponse(res);
          expect(sealed).toHaveLength(32 + res.length + 16);
          expect(await context.decapsulateResponse(sealed)).toEqual(res);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('works with X-Wing and with AES-128-GCM, choosing the first offered suite Tresor supports', async () => {
    const xwing = createGatewayKey(1, await HpkeKeyPair.generate(HPKE_KEM.X_WING));
    const aes128 = createGatewayKey(2, await HpkeKeyPair.generate(), [{ kdf: 1, aead: 1 }]);
    const keys = gatewayKeysById([xwing, aes128]);
    for (const key of [xwing, aes128]) {
      const { encapsulatedRequest, context } = await encapsulateRequest(
        key.config,
        new Uint8Array([1, 2, 3]),
      );
      const got = await decapsulateRequest(keys, encapsulatedRequest);
      expect(got.keyId).toBe(key.config.keyId);
      expect(
        await context.decapsulateResponse(await got.responder.encapsulateResponse(new Uint8Array([4]))),
      ).toEqual(new Uint8Array([4]));
    }
    const chachaFirst: OhttpKeyConfig = {
      ...aes128.config,
      symmetricAlgorithms: [
        { kdf: 1, aead: 3 },
        { kdf: 2, aead: 2 },
        { kdf: 1, aead: 0xffff },
        { kdf: 1, aead: 1 },
      ],
    };
    const { encapsulatedRequest } = await encapsulateRequest(chachaFirst, new Uint8Array(0));
    expect(bytesToHex(encapsulatedRequest.subarray(0, 7))).toBe('02002000010001');
  });

  it('refuses configurations that offer nothing Tresor speaks, and suites they do not offer', async () => {
    const key = createGatewayKey(2, await HpkeKeyPair.generate());
    const chachaOnly: OhttpKeyConfig = { ...key.config, symmetricAlgorithms: [{ kdf: 1, aead: 3 }] };
    expect(await failure(() => encapsulateRequest(chachaOnly, new Uint8Array(0)))).toBe(
      'HPKE_SUITE_UNSUPPORTED',
    );
    expect(
      await failure(() =>
        encapsulateRequest(key.config, new Uint8Array(0), { symmetricAlgorithm: { kdf: 1, aead: 1 } }),
      ),
    ).toBe('HPKE_SUITE_UNSUPPORTED');
    const zeroKey: OhttpKeyConfig = { ...key.config, publicKey: new Uint8Array(32) };
    expect(await failure(() => encapsulateRequest(zeroKey, new Uint8Array(0)))).toBe('HPKE_KEY_INVALID');
  });

  it('a request sealed to one gateway key fails at another key with the same id', async () => {
    const a = createGatewayKey(5, await HpkeKeyPair.generate());
    const b = createGatewayKey(5, await HpkeKeyPair.generate());
    const { encapsulatedRequest } = await encapsulateRequest(a.config, new Uint8Array([1]));
    expect(await failure(() => decapsulateRequest(gatewayKeysById([b]), encapsulatedRequest))).toBe(
      'OHTTP_DECRYPT_FAILED',
    );
    expect(await failure(() => decapsulateRequest(new Map(), encapsulatedRequest))).toBe(
      'OHTTP_KEY_ID_UNKNOWN',
    );
  });

  it('a response opens only with the context of its own request, and is sealed once', async () => {
    const key = createGatewayKey(5, await HpkeKeyPair.generate());
    const keys = gatewayKeysById([key]);
    const first = await encapsulateRequest(key.config, new Uint8Array([1]));
    const second = await encapsulateRequest(key.config, new Uint8Array([1]));
    const got = await decapsulateRequest(keys, first.encapsulatedRequest);
    const response = await got.responder.encapsulateResponse(new Uint8Array([9]));
    expect(await failure(() => second.context.decapsulateResponse(response))).toBe('OHTTP_DECRYPT_FAILED');
    expect(await failure(() => got.responder.encapsulateResponse(new Uint8Array([9])))).toBe(
      'INTERNAL_ERROR',
    );
  });

  it('decoders throw only catalogued TresorErrors on random and mutated input', async () => {
    const { keys, config } = await rfcGateway();
    const ephemeral = await HpkeKeyPair.fromPrivateKey(0x20, hexField('client_ephemeral_private_key'));
    const { context } = await encapsulateRequest(config, hexField('request_bhttp'), {
      testEphemeralKey: ephemeral,
    });
    const request = hexField('encapsulated_request');
    const response = hexField('encapsulated_response');
    const mutate = (valid: Uint8Array): fc.Arbitrary<Uint8Array> =>
      fc
        .tuple(
          fc.nat({ max: valid.length - 1 }),
          fc.integer({ min: 1, max: 255 }),
          fc.nat({ max: valid.length + 8 }),
        )
        .map(([at, xor, cut]) => {
          const copy = concatBytes(valid, new Uint8Array(8));
          copy[at]! ^= xor;
          return copy.subarray(0, cut);
        });
    const withHeader = fc
      .uint8Array({ maxLength: 100 })
      .map((tail) => concatBytes(request.subarray(0, 7), tail));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ maxLength: 100 }), withHeader, mutate(request)),
        fc.oneof(fc.uint8Array({ maxLength: 100 }), mutate(response)),
        async (req, res) => {
          await failure(() => decapsulateRequest(keys, req));
          await failure(() => context.decapsulateResponse(res));
        },
      ),
      { numRuns: 1000 },
    );
  });
});
