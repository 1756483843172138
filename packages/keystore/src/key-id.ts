import { randomBytes } from 'node:crypto';
import { TresorError } from '@tresor/protocol';
import { bytesToHex } from '@tresor/crypto';

/**
 * A key id: 1 to 64 characters of `A-Z a-z 0-9 _ -`. The alphabet leaves out `.` and `/` so an id
 * can sit in a serialised wrapped key and in a URL path segment without escaping.
 */
export type KeyId = string & { readonly __brand: 'KeyId' };

const KEY_ID = /^[A-Za-z0-9_-]{1,64}$/;

export function isKeyId(value: unknown): value is KeyId {
  return typeof value === 'string' && KEY_ID.test(value);
}

/** Parses an id from untrusted input (command line, request path, stored record). */
export function parseKeyId(value: unknown): KeyId {
  if (!isKeyId(value)) {
    throw new TresorError('USAGE_INVALID', 'a key id is 1 to 64 characters of letters, digits, "_" and "-"');
  }
  return value;
}

/** A fresh random id with a readable prefix for the key's kind (96 random bits). */
export function newKeyId(prefix: 'kek' | 'sig', random: (n: number) => Uint8Array = randomBytes): KeyId {
  return `${prefix}-${bytesToHex(random(12))}` as KeyId;
}
