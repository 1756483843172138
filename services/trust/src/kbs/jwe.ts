import { randomBytes } from 'node:crypto';
import { aesKeyWrap } from '@tresor/keystore';
import { bytesToBase64Url, concatBytes, toArrayBuffer, utf8Encode } from '@tresor/crypto';
import type { TeePublicKey } from './tee-public-key.js';

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
const TAG_BYTES = 16;
const ECDH_ALGORITHM_ID = 'ECDH-ES+A256KW';
const SHARED_SECRET_BITS = { 'P-256': 256, 'P-384': 384, 'P-521': 528 } as const;

function lengthPrefixed(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.length);
  new DataView(out.buffer).setUint32(0, bytes.length);
  out.set(bytes, 4);
  return out;
}

/** Concat KDF with SHA-256 for a 256-bit key: one round, counter 1 (RFC 7518 §4.6.2). */
async function concatKdf(sharedSecret: Uint8Array): Promise<Uint8Array> {
  const otherInfo = concatBytes(
    lengthPrefixed(utf8Encode(ECDH_ALGORITHM_ID)),
    lengthPrefixed(new Uint8Array(0)),
    lengthPrefixed(new Uint8Array(0)),
    new Uint8Array([0, 0, 1, 0]), // SuppPubInfo: keydatalen 256 as a 32-bit big-endian integer
  );
  const input = concatBytes(new Uint8Array([0, 0, 0, 1]), sharedSecret, otherInfo);
  return new Uint8Array(await crypto.subtle.digest('SHA-256', toArrayBuffer(input)));
}

async function wrapWithEcdh(
  tee: TeePublicKey & { jwk: { kty: 'EC' } },
  cek: Uint8Array,
): Promise<{ header: string; encryptedKey: Uint8Array }> {
  const { crv } = tee.jwk;
  const ephemeral = await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: crv }, true, ['deriveBits']);
  const shared = new Uint8Array(
    await crypto.subtle.deriveBits(
      { name: 'ECDH', public: tee.key },
      ephemeral.privateKey,
      SHARED_SECRET_BITS[crv],
    ),
  );
  const kek = await concatKdf(shared);
  shared.fill(0);
  try {
    const epk = await crypto.subtle.exportKey('jwk', ephemeral.publicKey);
    const header = `{"alg":"ECDH-ES+A256KW","enc":"A256GCM","epk":{"crv":${JSON.stringify(crv)},"kty":"EC","x":${JSON.stringify(epk.x)},"y":${JSON.stringify(epk.y)}}}`;
    return { header, encryptedKey: aesKeyWrap(kek, cek) };
  } finally {
    kek.fill(0);
  }
}

async function wrapWithRsaOaep(
  tee: TeePublicKey,
  cek: Uint8Array,
): Promise<{ header: string; encryptedKey: Uint8Array }> {
  const encryptedKey = new Uint8Array(
    await crypto.subtle.encrypt({ name: 'RSA-OAEP' }, tee.key, toArrayBuffer(cek)),
  );
  return { header: '{"alg":"RSA-OAEP-256","enc":"A256GCM"}', encryptedKey };
}

/** Encrypts `plaintext` to the TEE's key. The caller zeroes its plaintext; the CEK is zeroed here. */
export async function encryptForTee(tee: TeePublicKey, plaintext: Uint8Array): Promise<FlattenedJwe> {
  const cek = new Uint8Array(randomBytes(CEK_BYTES));
  try {
    const { header, encryptedKey } =
      tee.jwk.kty === 'EC'
        ? await wrapWithEcdh(tee as TeePublicKey & { jwk: { kty: 'EC' } }, cek)
        : await wrapWithRsaOaep(tee, cek);
    const protectedHeader = bytesToBase64Url(utf8Encode(header));
    const iv = new Uint8Array(randomBytes(IV_BYTES));
    const rawCek = toArrayBuffer(cek);
    const key = await crypto.subtle.importKey('raw', rawCek, 'AES-GCM', false, ['encrypt']);
    new Uint8Array(rawCek).fill(0);
    // WebCrypto takes an ArrayBuffer copy of the secret; it is zeroed as soon as it is sealed.
    const input = toArrayBuffer(plaintext);
    let sealed: Uint8Array;
    try {
      sealed = new Uint8Array(
        await crypto.subtle.encrypt(
          {
            name: 'AES-GCM',
            iv,
            additionalData: toArrayBuffer(utf8Encode(protectedHeader)),
            tagLength: TAG_BYTES * 8,
          },
          key,
          input,
        ),
      );
    } finally {
      new Uint8Array(input).fill(0);
    }
    return {
      protected: protectedHeader,
      encrypted_key: bytesToBase64Url(encryptedKey),
      iv: bytesToBase64Url(iv),
      ciphertext: bytesToBase64Url(sealed.subarray(0, sealed.length - TAG_BYTES)),
      tag: bytesToBase64Url(sealed.subarray(sealed.length - TAG_BYTES)),
    };
  } finally {
    cek.fill(0);
  }
}
