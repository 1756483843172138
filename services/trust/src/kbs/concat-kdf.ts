import { createHash } from 'node:crypto';
import { concatBytes, utf8Encode } from '@tresor/crypto';

const ALGORITHM_ID = utf8Encode('ECDH-ES+A256KW');

function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

/**
 * The ECDH-ES+A256KW key-encryption key (RFC 7518 §4.6.2): Concat KDF (NIST SP 800-56A §5.8.1)
 * with SHA-256 over the shared secret Z, AlgorithmID "ECDH-ES+A256KW", PartyUInfo and PartyVInfo
 * (the decoded `apu` and `apv`, empty when absent), SuppPubInfo keydatalen 256. One SHA-256 round
 * (counter 1) gives the 256 bits. The caller zeroes Z and the result.
 */
export function ecdhEsA256kwKek(
  sharedSecret: Uint8Array,
  partyUInfo: Uint8Array = new Uint8Array(0),
  partyVInfo: Uint8Array = new Uint8Array(0),
): Uint8Array {
  const otherInfo = concatBytes(
    lengthPrefixed(ALGORITHM_ID),
    lengthPrefixed(partyUInfo),
    lengthPrefixed(partyVInfo),
    new Uint8Array([0, 0, 1, 0]), // SuppPubInfo: keydatalen 256 as a 32-bit big-endian integer
  );
  return new Uint8Array(
    createHash('sha256')
      .update(new Uint8Array([0, 0, 0, 1]))
      .update(sharedSecret)
      .update(otherInfo)
      .digest(),
  );
}
