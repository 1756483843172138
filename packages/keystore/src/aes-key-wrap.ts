import { createCipheriv, createDecipheriv } from 'node:crypto';
import { TresorError } from '@tresor/protocol';

/**
 * AES Key Wrap (RFC 3394) and AES Key Wrap with Padding (RFC 5649) over OpenSSL through node:crypto.
 * The KEK length picks AES-128/192/256. The initial values are the RFCs' defaults: RFC 3394 §2.2.3.1
 * A6A6A6A6A6A6A6A6, and RFC 5649 §3 alternative IV A65959A6 (followed by the 32-bit length).
 */

const KW_IV = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
const KWP_IV = Buffer.from('a65959a6', 'hex');

type Variant = 'wrap' | 'wrap-pad';

function cipherName(kek: Uint8Array, variant: Variant): string {
  if (kek.length !== 16 && kek.length !== 24 && kek.length !== 32) {
    throw new TresorError('KEY_USAGE_INVALID', 'an AES key-encryption key is 128, 192 or 256 bits');
  }
  return `id-aes${kek.length * 8}-${variant}`;
}

function run(kek: Uint8Array, input: Uint8Array, variant: Variant, direction: 'wrap' | 'unwrap'): Uint8Array {
  const name = cipherName(kek, variant);
  const iv = variant === 'wrap' ? KW_IV : KWP_IV;
  const cipher = direction === 'wrap' ? createCipheriv(name, kek, iv) : createDecipheriv(name, kek, iv);
  const head = cipher.update(input);
  const tail = cipher.final();
  const out = new Uint8Array(head.length + tail.length);
  out.set(head, 0);
  out.set(tail, head.length);
  // Intermediate Buffers may hold unwrapped key material; zero them (best effort, see SecretKeyBytes).
  head.fill(0);
  tail.fill(0);
  return out;
}

/** RFC 3394 §2.2.1: `key` must be a multiple of 8 bytes and at least 16. */
export function aesKeyWrap(kek: Uint8Array, key: Uint8Array): Uint8Array {
  if (key.length < 16 || key.length % 8 !== 0) {
    throw new TresorError('KEY_USAGE_INVALID', 'RFC 3394 wraps keys of 16 bytes or more, in 8-byte blocks');
  }
  return run(kek, key, 'wrap', 'wrap');
}

/** RFC 3394 §2.2.2 with the §2.2.3 integrity check; any failure is KEY_UNWRAP_FAILED. */
export function aesKeyUnwrap(kek: Uint8Array, wrapped: Uint8Array): Uint8Array {
  if (wrapped.length < 24 || wrapped.length % 8 !== 0) {
    throw new TresorError(
      'KEY_UNWRAP_FAILED',
      'an RFC 3394 wrapped key is 24 bytes or more, in 8-byte blocks',
    );
  }
  return unwrapOrRefuse(() => run(kek, wrapped, 'wrap', 'unwrap'), 'KEY_UNWRAP_FAILED');
}

/** RFC 5649 §4.1: any key length from 1 byte. */
export function aesKeyWrapPad(kek: Uint8Array, key: Uint8Array): Uint8Array {
  if (key.length === 0) throw new TresorError('KEY_USAGE_INVALID', 'RFC 5649 wraps at least one byte');
  return run(kek, key, 'wrap-pad', 'wrap');
}

/** RFC 5649 §4.2 with the §3 integrity check (AIV, length and zero padding). */
export function aesKeyUnwrapPad(
  kek: Uint8Array,
  wrapped: Uint8Array,
  code: 'KEY_UNWRAP_FAILED' | 'KEY_IMPORT_INVALID' = 'KEY_UNWRAP_FAILED',
): Uint8Array {
  if (wrapped.length < 16 || wrapped.length % 8 !== 0) {
    throw new TresorError(code, 'an RFC 5649 wrapped key is 16 bytes or more, in 8-byte blocks');
  }
  return unwrapOrRefuse(() => run(kek, wrapped, 'wrap-pad', 'unwrap'), code);
}

function unwrapOrRefuse(
  unwrap: () => Uint8Array,
  code: 'KEY_UNWRAP_FAILED' | 'KEY_IMPORT_INVALID',
): Uint8Array {
  try {
    return unwrap();
  } catch (cause) {
    if (cause instanceof TresorError) throw cause;
    // OpenSSL reports a failed integrity check as a generic cipher error; the reason is the same.
    throw new TresorError(code, 'the wrapped key failed the AES key-wrap integrity check', { cause });
  }
}
