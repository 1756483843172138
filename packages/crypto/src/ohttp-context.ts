import { TresorError } from '@tresor/protocol';
import { concatBytes, utf8Encode } from './bytes.js';
import {
  HpkePublicKey,
  HpkeSuite,
  setupRecipient,
  setupSender,
  type HpkeKeyPair,
  type HpkeRecipientContext,
  type HpkeSenderContext,
} from './hpke.js';
import type {
  OhttpGatewayKey,
  OhttpGatewayKeys,
  OhttpKeyConfig,
  OhttpSymmetricAlgorithm,
} from './ohttp-keys.js';
import type { OhttpAeadBackend, OhttpAeadOptions } from './ohttp-aead.js';

/**
 * The HPKE context setup that plain (RFC 9458 §4.3) and chunked OHTTP share: the request header
 * `hdr`, `info = label || 0x00 || hdr`, the client's choice of suite and the gateway's key lookup.
 * Only the label differs between the two formats.
 */

/** key_id (1) + kem_id (2) + kdf_id (2) + aead_id (2). */
export const REQUEST_HEADER_LENGTH = 7;

/** The HPKE info labels (RFC 9458 §4.3; draft-ietf-ohai-chunked-ohttp-08 §6.1). */
export const REQUEST_LABEL = 'message/bhttp request';
export const CHUNKED_REQUEST_LABEL = 'message/bhttp chunked request';

/** Options shared by every client-side encapsulation. */
export interface OhttpClientOptions extends OhttpAeadOptions {
  /** The (KDF, AEAD) pair to use; default: the first pair in the configuration Tresor supports. */
  readonly symmetricAlgorithm?: OhttpSymmetricAlgorithm;
  /**
   * FOR KNOWN-ANSWER TESTS ONLY: a fixed ephemeral key (see `HpkeSenderOptions.testEphemeralKey`).
   * A reused ephemeral key makes two requests share keys; production code never sets this.
   */
  readonly testEphemeralKey?: HpkeKeyPair | Uint8Array;
}

function encodeHeader(keyId: number, suite: HpkeSuite): Uint8Array {
  const hdr = new Uint8Array(REQUEST_HEADER_LENGTH);
  const view = new DataView(hdr.buffer);
  hdr[0] = keyId;
  view.setUint16(1, suite.kem);
  view.setUint16(3, suite.kdf);
  view.setUint16(5, suite.aead);
  return hdr;
}

function requestInfo(label: string, hdr: Uint8Array): Uint8Array {
  return concatBytes(utf8Encode(label), new Uint8Array([0]), hdr);
}

/** The suite a client uses with `config`: the requested pair, or the first one Tresor supports. */
function chooseSuite(config: OhttpKeyConfig, requested: OhttpSymmetricAlgorithm | undefined): HpkeSuite {
  if (requested !== undefined) {
    const offered = config.symmetricAlgorithms.some(
      (a) => a.kdf === requested.kdf && a.aead === requested.aead,
    );
    if (!offered) {
      throw new TresorError(
        'HPKE_SUITE_UNSUPPORTED',
        `key configuration ${config.keyId} does not offer KDF ${requested.kdf} with AEAD ${requested.aead}`,
      );
    }
    return requireEncrypting(HpkeSuite.of({ kem: config.kem, ...requested }));
  }
  for (const { kdf, aead } of config.symmetricAlgorithms) {
    try {
      const suite = HpkeSuite.of({ kem: config.kem, kdf, aead });
      if (suite.canEncrypt) return suite;
    } catch (err) {
      if (!(err instanceof TresorError) || err.code !== 'HPKE_SUITE_UNSUPPORTED') throw err;
    }
  }
  throw new TresorError(
    'HPKE_SUITE_UNSUPPORTED',
    `key configuration ${config.keyId} offers no KDF/AEAD pair Tresor supports (HKDF-SHA256 with AES-GCM)`,
  );
}

function requireEncrypting(suite: HpkeSuite): HpkeSuite {
  if (!suite.canEncrypt) {
    throw new TresorError('HPKE_SUITE_UNSUPPORTED', 'OHTTP needs an AEAD that encrypts, not export-only');
  }
  return suite;
}

/** A client's sending context and the bytes that open its encapsulated request (hdr || enc). */
export interface ClientEncapsulation {
  readonly suite: HpkeSuite;
  readonly sender: HpkeSenderContext;
  readonly prefix: Uint8Array;
}

/** Steps 1–3 of RFC 9458 §4.3 on the client: header, info, SetupBaseS. */
export async function beginClientEncapsulation(
  config: OhttpKeyConfig,
  label: string,
  options: OhttpClientOptions,
): Promise<ClientEncapsulation> {
  const suite = chooseSuite(config, options.symmetricAlgorithm);
  const hdr = encodeHeader(config.keyId, suite);
  const info = requestInfo(label, hdr);
  const sender =
    (await options.aead?.hpke?.setupBaseSender(suite, config.publicKey, info, options.testEphemeralKey)) ??
    (await setupSender(
      suite,
      await HpkePublicKey.fromBytes(config.kem, config.publicKey),
      info,
      options.testEphemeralKey === undefined ? {} : { testEphemeralKey: options.testEphemeralKey },
    ));
  return { suite, sender, prefix: concatBytes(hdr, sender.enc) };
}

/** The gateway key and suite a request header names. */
export interface ResolvedRequestHeader {
  readonly key: OhttpGatewayKey;
  readonly suite: HpkeSuite;
  readonly hdr: Uint8Array;
}

/**
 * Step 1 of RFC 9458 §4.3 on the gateway: finds the key named by the 7-byte header `hdr`.
 * OHTTP_KEY_ID_UNKNOWN when no key has that id and KEM (1a); HPKE_SUITE_UNSUPPORTED when the
 * key is not offered with that KDF and AEAD (1b).
 */
export function resolveRequestHeader(keys: OhttpGatewayKeys, hdr: Uint8Array): ResolvedRequestHeader {
  if (hdr.length !== REQUEST_HEADER_LENGTH) {
    throw new TresorError('OHTTP_MESSAGE_MALFORMED', 'the encapsulated request is shorter than its header');
  }
  const view = new DataView(hdr.buffer, hdr.byteOffset, hdr.byteLength);
  const keyId = hdr[0]!;
  const kem = view.getUint16(1);
  const kdf = view.getUint16(3);
  const aead = view.getUint16(5);
  const key = keys.get(keyId);
  if (key?.config.kem !== kem || key.config.keyId !== keyId) {
    throw new TresorError(
      'OHTTP_KEY_ID_UNKNOWN',
      `no gateway key has id ${keyId} with KEM 0x${kem.toString(16).padStart(4, '0')}`,
      { details: { keyId } },
    );
  }
  if (!key.config.symmetricAlgorithms.some((a) => a.kdf === kdf && a.aead === aead)) {
    throw new TresorError(
      'HPKE_SUITE_UNSUPPORTED',
      `gateway key ${keyId} is not offered with KDF 0x${kdf.toString(16)} and AEAD 0x${aead.toString(16)}`,
      { details: { keyId } },
    );
  }
  return { key, suite: requireEncrypting(HpkeSuite.of({ kem, kdf, aead })), hdr: hdr.slice() };
}

/** Steps 2–3 of RFC 9458 §4.3 on the gateway: info and SetupBaseR for the received `enc`. */
export async function beginGatewayDecapsulation(
  resolved: ResolvedRequestHeader,
  enc: Uint8Array,
  label: string,
  backend: OhttpAeadBackend | undefined,
): Promise<HpkeRecipientContext> {
  const info = requestInfo(label, resolved.hdr);
  return (
    (await backend?.hpke?.setupBaseRecipient(resolved.suite, resolved.key.keyPair, enc, info)) ??
    (await setupRecipient(resolved.suite, resolved.key.keyPair, enc, info))
  );
}
