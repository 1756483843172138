import { TresorError } from '@tresor/protocol';
import { base64ToBytes, bytesToBase64Url } from '@tresor/crypto';
import { isKeyId, type KeyId } from './key-id.js';
import type { KekAlgorithm } from './key-store.js';

/** A data key wrapped under a KEK: which KEK, how, and the wrapped bytes. Not secret. */
export interface WrappedKey {
  readonly kekId: KeyId;
  readonly algorithm: KekAlgorithm;
  /** RFC 3394 output: 8 bytes longer than the key, so 40 bytes for a 256-bit data key. */
  readonly ciphertext: Uint8Array;
}

/** A 256-bit data key wraps to 40 bytes (RFC 3394 §2.2.1 adds one 64-bit block). */
export const WRAPPED_DATA_KEY_LENGTH = 40;

const PREFIX = 'v1';

/**
 * Text form for storage columns and the wire: `v1.A256KW.<kek id>.<base64url ciphertext>`. The key id
 * alphabet has no `.`, so the split is unambiguous.
 */
export function serializeWrappedKey(wrapped: WrappedKey): string {
  return `${PREFIX}.${wrapped.algorithm}.${wrapped.kekId}.${bytesToBase64Url(wrapped.ciphertext)}`;
}

/** Parses the text form from untrusted storage or a request; refuses anything else with INPUT_MALFORMED. */
export function parseWrappedKey(text: string): WrappedKey {
  const parts = text.split('.');
  const [version, algorithm, kekId, payload] = parts;
  if (parts.length !== 4 || version !== PREFIX) {
    throw malformed('expected v1.A256KW.<kek id>.<base64url>');
  }
  if (algorithm !== 'A256KW') throw malformed(`unsupported wrap algorithm "${String(algorithm)}"`);
  if (!isKeyId(kekId)) throw malformed('the KEK id is not a valid key id');
  // 40 bytes are 54 base64url characters; refuse longer text before decoding it.
  if (payload?.length !== 54) {
    throw malformed(`a wrapped 256-bit key is ${WRAPPED_DATA_KEY_LENGTH} bytes`);
  }
  const ciphertext = decode(payload);
  if (ciphertext.length !== WRAPPED_DATA_KEY_LENGTH) {
    throw malformed(`a wrapped 256-bit key is ${WRAPPED_DATA_KEY_LENGTH} bytes`);
  }
  return { kekId, algorithm, ciphertext };
}

function decode(payload: string): Uint8Array {
  if (!/^[A-Za-z0-9_-]*$/.test(payload)) throw malformed('the ciphertext is not base64url');
  return base64ToBytes(payload);
}

function malformed(detail: string): TresorError {
  return new TresorError('INPUT_MALFORMED', `wrapped key: ${detail}`);
}
