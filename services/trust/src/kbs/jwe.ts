import { constants, createCipheriv, createECDH, publicEncrypt, randomBytes } from 'node:crypto';
import { TresorError } from '@tresor/protocol';
import { aesKeyWrap } from '@tresor/keystore';
import { bytesToBase64Url, utf8Encode } from '@tresor/crypto';
import { ecdhEsA256kwKek } from './concat-kdf.js';
import { OPENSSL_CURVE, type TeePublicKey } from './tee-public-key.js';

/**
 * The resource answer: a JWE in flattened JSON serialisation (RFC 7516 §7.2.2), built exactly as
 * Trustee's kbs/src/jwe/mod.rs builds it, because guest-components does not use the received
 * `protected` string as the AAD: it parses the header and re-serialises it
 * (kbs_types `ProtectedHeader::generate_aad`). So the header is compact JSON with minimal escaping
 * in Trustee's member order:
 *
 *   {"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":"P-256","kty":"EC","x":"…","y":"…"}}
 *   {"alg":"RSA-OAEP-256","enc":"A256GCM"}
 *
 * Content encryption is A256GCM with a 12-byte IV and AAD = ASCII(protected) (RFC 7516 §5.1 step 14);
 * no `aad` member is emitted. Key management (RFC 7518):
 *
 * - ECDH-ES+A256KW (§4.6): a fresh ephemeral key on the TEE key's curve; KEK = Concat KDF
 *   (NIST SP 800-56A §5.8.1, SHA-256) over the shared secret with AlgorithmID "ECDH-ES+A256KW",
 *   empty PartyUInfo and PartyVInfo, keydatalen 256; the CEK is wrapped with AES-256 key wrap
 *   (RFC 3394), so `encrypted_key` is 40 bytes.
 * - RSA-OAEP-256 (§4.3): OAEP with SHA-256 and MGF1-SHA-256.
 *
 * Everything runs synchronously in `node:crypto`: each step is tens of microseconds, less than the
 * cost of a WebCrypto job's round trip through the thread pool, and a release does six of them.
 */
export interface FlattenedJwe {
  readonly protected: string;
  readonly encrypted_key: string;
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

const CEK_BYTES = 32;
const IV_BYTES = 12;

function wrapWithEcdh(
  tee: TeePublicKey & { jwk: { kty: 'EC' } },
  cek: Uint8Array,
): { header: string; encryptedKey: Uint8Array } {
  const { crv } = tee.jwk;
  if (tee.point === undefined) throw new TresorError('INTERNAL_ERROR', 'an EC tee-pubkey without its point');
  // node:crypto's ECDH object: one key generation and one derivation on raw points, without the
  // KeyObject and JWK conversions of generateKeyPairSync + diffieHellman + export (~30 % less).
  // The TEE point was checked to be on its curve when it was parsed; OpenSSL decodes it again here.
  const ephemeral = createECDH(OPENSSL_CURVE[crv]);
  const epk = ephemeral.generateKeys();
  const size = (epk.length - 1) / 2;
  // The x coordinate of the shared point, the curve's field size long (SEC 1 §3.3.1), as RFC 7518 §4.6.2 Z.
  const shared = ephemeral.computeSecret(tee.point);
  const kek = ecdhEsA256kwKek(shared);
  shared.fill(0);
  try {
    const header = `{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":${JSON.stringify(crv)},"kty":"EC","x":${JSON.stringify(epk.subarray(1, 1 + size).toString('base64url'))},"y":${JSON.stringify(epk.subarray(1 + size).toString('base64url'))}}}`;
    return { header, encryptedKey: aesKeyWrap(kek, cek) };
  } finally {
    kek.fill(0);
  }
}

function wrapWithRsaOaep(tee: TeePublicKey, cek: Uint8Array): { header: string; encryptedKey: Uint8Array } {
  if (tee.key === undefined) throw new TresorError('INTERNAL_ERROR', 'an RSA tee-pubkey without its key');
  const encryptedKey = publicEncrypt(
    { key: tee.key, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
    cek,
  );
  return { header: '{"alg":"RSA-OAEP-256","enc":"A256GCM"}', encryptedKey: new Uint8Array(encryptedKey) };
}

/** Encrypts `plaintext` to the TEE's key. The caller zeroes its plaintext; the CEK is zeroed here. */
export function encryptForTee(tee: TeePublicKey, plaintext: Uint8Array): FlattenedJwe {
  const cek = new Uint8Array(randomBytes(CEK_BYTES));
  try {
    const { header, encryptedKey } =
      tee.jwk.kty === 'EC'
        ? wrapWithEcdh(tee as TeePublicKey & { jwk: { kty: 'EC' } }, cek)
        : wrapWithRsaOaep(tee, cek);
    const protectedHeader = bytesToBase64Url(utf8Encode(header));
    const iv = new Uint8Array(randomBytes(IV_BYTES));
    const cipher = createCipheriv('aes-256-gcm', cek, iv);
    cipher.setAAD(utf8Encode(protectedHeader));
    const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return {
      protected: protectedHeader,
      encrypted_key: bytesToBase64Url(encryptedKey),
      iv: bytesToBase64Url(iv),
      ciphertext: bytesToBase64Url(ciphertext),
      tag: bytesToBase64Url(cipher.getAuthTag()),
    };
  } finally {
    cek.fill(0);
  }
}
