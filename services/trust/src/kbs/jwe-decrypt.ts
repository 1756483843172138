import { createDecipheriv } from 'node:crypto';
import { TresorError } from '@tresor/protocol';
import { aesKeyUnwrap } from '@tresor/keystore';
import { base64ToBytes, bytesToBase64Url, utf8Decode, utf8Encode } from '@tresor/crypto';
import { ecdhEsA256kwKek } from './concat-kdf.js';

/**
 * The client side of the resource answer (jwe.ts): decrypts a flattened JWE (RFC 7516 §7.2.2)
 * wrapped to the attester's ephemeral ECDH key, as guest-components' kbs_protocol does. Only what
 * a KBS sends to such a key is accepted:
 *
 * - protected header: `alg` "ECDH-ES+A256KW", `enc` "A256GCM", `epk` an EC public key on the
 *   attester key's curve (imported by WebCrypto, which refuses points off the curve: the
 *   invalid-curve attack, RFC 7518 §8.8), optional `apu`/`apv` (they enter the KDF, §4.6.2); no
 *   `crit` (nothing here understands an extension, RFC 7516 §4.1.13) and no `zip`;
 * - `encrypted_key` the 40-byte AES key wrap (RFC 3394) of a 256-bit CEK; `iv` 12 bytes; `tag` 16
 *   bytes; AAD = ASCII(protected) (§5.2 step 14); no `aad`, `header` or `unprotected` member.
 *
 * The shared secret comes from WebCrypto (the private key is non-extractable); the KDF, the key
 * unwrap and AES-GCM run synchronously in `node:crypto`. Any failure, whatever its cause, is
 * KBS_RESPONSE_INVALID: a malformed answer and a wrong key look the same to the caller.
 */

const IV_BYTES = 12;
const TAG_BYTES = 16;
const WRAPPED_CEK_BYTES = 40;
const MAX_MEMBER_LENGTH = 1024 * 1024;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const CURVE_BITS = { 'P-256': 256, 'P-384': 384, 'P-521': 528 } as const;

type Curve = keyof typeof CURVE_BITS;

function refuse(why: string, cause?: unknown): TresorError {
  return new TresorError(
    'KBS_RESPONSE_INVALID',
    `the resource JWE does not decrypt with the attested key: ${why}`,
    cause === undefined ? {} : { cause },
  );
}

/** A base64url member in canonical unpadded form (RFC 7515 §2), decoded. */
function member(value: unknown, name: string): Uint8Array {
  if (typeof value !== 'string' || value.length > MAX_MEMBER_LENGTH || !BASE64URL.test(value)) {
    throw refuse(`"${name}" is not base64url`);
  }
  let bytes: Uint8Array;
  try {
    bytes = base64ToBytes(value);
  } catch (cause) {
    throw refuse(`"${name}" is not base64url`, cause);
  }
  if (bytesToBase64Url(bytes) !== value) throw refuse(`"${name}" is not canonical base64url`);
  return bytes;
}

function object(value: unknown, what: string): Readonly<Record<string, unknown>> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw refuse(`${what} is not an object`);
  return value as Readonly<Record<string, unknown>>;
}

interface ProtectedHeader {
  readonly epk: JsonWebKey;
  readonly apu: Uint8Array;
  readonly apv: Uint8Array;
}

function parseProtectedHeader(encoded: unknown, curve: Curve): ProtectedHeader {
  const bytes = member(encoded, 'protected');
  let json: unknown;
  try {
    json = JSON.parse(utf8Decode(bytes));
  } catch (cause) {
    throw refuse('the protected header is not UTF-8 JSON', cause);
  }
  const header = object(json, 'the protected header');
  if (header.alg !== 'ECDH-ES+A256KW') throw refuse('"alg" is not ECDH-ES+A256KW');
  if (header.enc !== 'A256GCM') throw refuse('"enc" is not A256GCM');
  if (header.crit !== undefined) throw refuse('"crit" names extensions this client does not understand');
  if (header.zip !== undefined) throw refuse('compressed ("zip") content is not accepted');
  const epk = object(header.epk, '"epk"');
  if (epk.kty !== 'EC' || epk.crv !== curve) throw refuse(`"epk" is not an EC key on ${curve}`);
  const size = Math.ceil(CURVE_BITS[curve] / 8);
  for (const coordinate of ['x', 'y'] as const) {
    if (member(epk[coordinate], `epk.${coordinate}`).length !== size) {
      throw refuse(`"epk.${coordinate}" is not ${size} bytes`);
    }
  }
  return {
    epk: { kty: 'EC', crv: curve, x: epk.x as string, y: epk.y as string },
    apu: header.apu === undefined ? new Uint8Array(0) : member(header.apu, 'apu'),
    apv: header.apv === undefined ? new Uint8Array(0) : member(header.apv, 'apv'),
  };
}

async function sharedSecret(privateKey: CryptoKey, epk: JsonWebKey, curve: Curve): Promise<Uint8Array> {
  let senderKey: CryptoKey;
  try {
    senderKey = await crypto.subtle.importKey('jwk', epk, { name: 'ECDH', namedCurve: curve }, false, []);
  } catch (cause) {
    throw refuse('"epk" is not a point on its curve', cause);
  }
  try {
    return new Uint8Array(
      await crypto.subtle.deriveBits({ name: 'ECDH', public: senderKey }, privateKey, CURVE_BITS[curve]),
    );
  } catch (cause) {
    throw refuse('the ECDH key agreement failed', cause);
  }
}

/**
 * Decrypts a KBS resource answer with the attester's ECDH private key (WebCrypto, any usage that
 * allows `deriveBits`). `jwe` is the parsed JSON body, still untrusted.
 *
 * @throws TresorError KBS_RESPONSE_INVALID
 */
export async function decryptFromKbs(jwe: unknown, privateKey: CryptoKey): Promise<Uint8Array> {
  const curve = (privateKey.algorithm as Partial<EcKeyAlgorithm>).namedCurve;
  if (curve !== 'P-256' && curve !== 'P-384' && curve !== 'P-521') {
    throw refuse('the attested key is not an ECDH key on P-256, P-384 or P-521');
  }
  const body = object(jwe, 'the answer');
  for (const name of ['aad', 'header', 'unprotected']) {
    // Trustee sends neither; they would change the AAD or add header parameters unauthenticated.
    if (name in body) throw refuse(`"${name}" is not part of a KBS answer`);
  }
  const header = parseProtectedHeader(body.protected, curve);
  const wrapped = member(body.encrypted_key, 'encrypted_key');
  const iv = member(body.iv, 'iv');
  const ciphertext = member(body.ciphertext, 'ciphertext');
  const tag = member(body.tag, 'tag');
  if (wrapped.length !== WRAPPED_CEK_BYTES) throw refuse(`"encrypted_key" is not ${WRAPPED_CEK_BYTES} bytes`);
  if (iv.length !== IV_BYTES) throw refuse(`"iv" is not ${IV_BYTES} bytes`);
  if (tag.length !== TAG_BYTES) throw refuse(`"tag" is not ${TAG_BYTES} bytes`);

  const z = await sharedSecret(privateKey, header.epk, curve);
  const kek = ecdhEsA256kwKek(z, header.apu, header.apv);
  z.fill(0);
  let cek: Uint8Array | undefined;
  try {
    cek = aesKeyUnwrap(kek, wrapped);
    const decipher = createDecipheriv('aes-256-gcm', cek, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(utf8Encode(body.protected as string));
    decipher.setAuthTag(tag);
    const head = decipher.update(ciphertext);
    const tail = decipher.final();
    const plaintext = new Uint8Array(head.length + tail.length);
    plaintext.set(head);
    plaintext.set(tail, head.length);
    head.fill(0);
    return plaintext;
  } catch (cause) {
    throw refuse('the key unwrap or the content authentication failed', cause);
  } finally {
    kek.fill(0);
    cek?.fill(0);
  }
}
