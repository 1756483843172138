import { TresorError } from '@tresor/protocol';
import { concatBytes } from './bytes.js';
import type { HpkeSuite, HpkeSuiteIds } from './hpke.js';
import {
  beginClientEncapsulation,
  beginGatewayDecapsulation,
  REQUEST_HEADER_LENGTH,
  REQUEST_LABEL,
  resolveRequestHeader,
  type OhttpClientOptions,
} from './ohttp-context.js';
import type { OhttpGatewayKeys, OhttpKeyConfig } from './ohttp-keys.js';
import { webCryptoOhttpAead, type OhttpAeadBackend, type OhttpAeadOptions } from './ohttp-aead.js';
import {
  makeResponseNonce,
  RESPONSE_LABEL,
  ResponseAead,
  responseNonceLength,
  type OhttpResponseOptions,
  type SecretExporter,
} from './ohttp-response-key.js';

/**
 * Oblivious HTTP messages (RFC 9458 §4): one Binary HTTP request sealed to a gateway key, one
 * response sealed back with a key only the two ends can derive.
 */

export const OHTTP_REQUEST_MEDIA_TYPE = 'message/ohttp-req';
export const OHTTP_RESPONSE_MEDIA_TYPE = 'message/ohttp-res';

const EMPTY = new Uint8Array(0);

/** What both ends need to derive the response key: the suite, an HPKE exporter and `enc`. */
interface ResponseKeyInputs {
  readonly suite: HpkeSuite;
  readonly exporter: SecretExporter;
  readonly enc: Uint8Array;
  readonly backend: OhttpAeadBackend;
}

let newClientContext: (inputs: ResponseKeyInputs) => OhttpClientContext;

/** The client's half of one exchange: it alone can open the gateway's response. */
export class OhttpClientContext {
  readonly #inputs: ResponseKeyInputs;

  static {
    newClientContext = (inputs) => new OhttpClientContext(inputs);
  }

  private constructor(inputs: ResponseKeyInputs) {
    this.#inputs = inputs;
  }

  /**
   * Opens an encapsulated response (RFC 9458 §4.4, client side). OHTTP_MESSAGE_MALFORMED when it
   * is too short to hold a nonce and a tag; OHTTP_DECRYPT_FAILED when it does not authenticate.
   */
  async decapsulateResponse(encapsulatedResponse: Uint8Array): Promise<Uint8Array> {
    const { suite, exporter, enc, backend } = this.#inputs;
    const nonceLength = responseNonceLength(suite);
    if (encapsulatedResponse.length < nonceLength + suite.tagSize) {
      throw new TresorError(
        'OHTTP_MESSAGE_MALFORMED',
        `an encapsulated response needs at least ${nonceLength + suite.tagSize} bytes, got ${encapsulatedResponse.length}`,
      );
    }
    const responseNonce = encapsulatedResponse.subarray(0, nonceLength);
    const aead = await ResponseAead.derive(suite, exporter, RESPONSE_LABEL, enc, responseNonce, backend);
    return aead.open(aead.baseNonce, encapsulatedResponse.subarray(nonceLength), EMPTY);
  }
}

/** What `encapsulateRequest` returns: the bytes to POST and the context that opens the answer. */
export interface OhttpClientRequest {
  /** `message/ohttp-req` content: hdr || enc || ct. */
  readonly encapsulatedRequest: Uint8Array;
  readonly context: OhttpClientContext;
}

/**
 * Encapsulates a Binary HTTP request to the gateway key in `config` (RFC 9458 §4.3).
 * HPKE_SUITE_UNSUPPORTED when the configuration offers nothing Tresor speaks; HPKE_KEY_INVALID
 * when its public key is unusable.
 */
export async function encapsulateRequest(
  config: OhttpKeyConfig,
  request: Uint8Array,
  options: OhttpClientOptions = {},
): Promise<OhttpClientRequest> {
  const { suite, sender, prefix } = await beginClientEncapsulation(config, REQUEST_LABEL, options);
  const ct = await sender.seal(request, EMPTY);
  return {
    encapsulatedRequest: concatBytes(prefix, ct),
    context: newClientContext({
      suite,
      exporter: sender,
      enc: sender.enc,
      backend: options.aead ?? webCryptoOhttpAead,
    }),
  };
}

let newResponder: (inputs: ResponseKeyInputs) => OhttpResponder;

/** The gateway's half of one exchange: seals exactly one response to the client. */
export class OhttpResponder {
  readonly #inputs: ResponseKeyInputs;
  #used = false;

  static {
    newResponder = (inputs) => new OhttpResponder(inputs);
  }

  private constructor(inputs: ResponseKeyInputs) {
    this.#inputs = inputs;
  }

  /** Seals `response` (RFC 9458 §4.4): response_nonce || AEAD ciphertext. Once per request. */
  async encapsulateResponse(response: Uint8Array, options: OhttpResponseOptions = {}): Promise<Uint8Array> {
    if (this.#used) {
      throw new TresorError('INTERNAL_ERROR', 'an OHTTP request gets exactly one encapsulated response');
    }
    this.#used = true;
    const { suite, exporter, enc, backend } = this.#inputs;
    const responseNonce = makeResponseNonce(responseNonceLength(suite), options.testResponseNonce);
    const aead = await ResponseAead.derive(suite, exporter, RESPONSE_LABEL, enc, responseNonce, backend);
    // response_nonce || ct, sealed behind room for the nonce so it is not copied again.
    const sealed = await aead.seal(aead.baseNonce, response, EMPTY, responseNonce.length);
    sealed.set(responseNonce, 0);
    return sealed;
  }
}

/** A decapsulated request, with what the gateway needs to answer it. */
export interface OhttpGatewayRequest {
  /** The Binary HTTP request. */
  readonly request: Uint8Array;
  readonly keyId: number;
  readonly suite: HpkeSuiteIds;
  readonly responder: OhttpResponder;
}

/**
 * Decapsulates a `message/ohttp-req` body with the gateway's keys (RFC 9458 §4.3, gateway side).
 * OHTTP_MESSAGE_MALFORMED for a truncated message, OHTTP_KEY_ID_UNKNOWN for a key the gateway does
 * not hold, HPKE_SUITE_UNSUPPORTED for a KDF/AEAD the key is not offered with, and
 * OHTTP_DECRYPT_FAILED when the request does not authenticate. `options.aead` picks the backend
 * that seals the response (default WebCrypto).
 */
export async function decapsulateRequest(
  keys: OhttpGatewayKeys,
  encapsulatedRequest: Uint8Array,
  options: OhttpAeadOptions = {},
): Promise<OhttpGatewayRequest> {
  if (encapsulatedRequest.length < REQUEST_HEADER_LENGTH) {
    throw new TresorError('OHTTP_MESSAGE_MALFORMED', 'the encapsulated request is shorter than its header');
  }
  const resolved = resolveRequestHeader(keys, encapsulatedRequest.subarray(0, REQUEST_HEADER_LENGTH));
  const { suite } = resolved;
  const encEnd = REQUEST_HEADER_LENGTH + suite.encSize;
  if (encapsulatedRequest.length < encEnd + suite.tagSize) {
    throw new TresorError(
      'OHTTP_MESSAGE_MALFORMED',
      `an encapsulated request for this key needs at least ${encEnd + suite.tagSize} bytes, got ${encapsulatedRequest.length}`,
    );
  }
  const enc = encapsulatedRequest.slice(REQUEST_HEADER_LENGTH, encEnd);
  const recipient = await beginGatewayDecapsulation(resolved, enc, REQUEST_LABEL, options.aead);
  const request = await recipient.open(encapsulatedRequest.subarray(encEnd), EMPTY);
  return {
    request,
    keyId: resolved.key.config.keyId,
    suite: suite.toJSON(),
    responder: newResponder({
      suite,
      exporter: recipient,
      enc,
      backend: options.aead ?? webCryptoOhttpAead,
    }),
  };
}
