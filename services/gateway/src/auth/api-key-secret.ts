import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { TresorError } from '@tresor/protocol';

/**
 * API keys: `tr_<id>_<secret>`, where id is 16 random lowercase letters and digits (the record's
 * primary key, safe to log and show) and secret is 32 random bytes, base64url (43 characters).
 * Shown once, at creation; only a salted hash is stored.
 *
 * Why HMAC-SHA-256 with a per-key random salt and not scrypt/argon2: the secret has 256 bits of
 * entropy from a CSPRNG, so nobody can guess it or search it, whatever the hash costs; a slow
 * hash only protects low-entropy secrets (passwords). A fast keyed hash keeps authentication at a
 * few microseconds per request instead of tens of milliseconds, and the salt makes two databases'
 * hashes of one key unrelated. Comparison is constant-time.
 */
export const API_KEY_PREFIX = 'tr_';
const API_KEY = /^tr_([a-z0-9]{16})_([A-Za-z0-9_-]{43})$/;
const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
export const API_KEY_SALT_BYTES = 16;

/** A freshly generated key: the token to show once, and what to store. */
export interface NewApiKey {
  readonly id: string;
  /** The full `tr_…` token. Show it once; never store or log it. */
  readonly token: string;
  readonly salt: Uint8Array;
  readonly hash: Uint8Array;
}

function randomId(): string {
  // 36 letters: reject bytes >= 252 so every letter is equally likely.
  let id = '';
  while (id.length < 16) {
    for (const byte of randomBytes(32)) {
      if (byte < 252 && id.length < 16) id += ID_ALPHABET.charAt(byte % 36);
    }
  }
  return id;
}

export function hashApiKey(salt: Uint8Array, token: string): Uint8Array {
  return new Uint8Array(createHmac('sha256', salt).update(token, 'utf8').digest());
}

export function generateApiKey(): NewApiKey {
  const id = randomId();
  const token = `${API_KEY_PREFIX}${id}_${randomBytes(32).toString('base64url')}`;
  const salt = new Uint8Array(randomBytes(API_KEY_SALT_BYTES));
  return { id, token, salt, hash: hashApiKey(salt, token) };
}

/**
 * The key id inside a presented token, or API_KEY_INVALID for anything that is not a Tresor API key
 * (the message never repeats what was sent).
 */
export function apiKeyIdOf(token: string): string {
  const match = API_KEY.exec(token);
  if (match?.[1] === undefined) {
    throw new TresorError(
      'API_KEY_INVALID',
      'the API key is not a Tresor API key (tr_…); check for copy errors',
    );
  }
  return match[1];
}

/** Whether `token` hashes to `hash` under `salt`, in constant time. */
export function apiKeyMatches(token: string, salt: Uint8Array, hash: Uint8Array): boolean {
  const seen = hashApiKey(salt, token);
  return seen.length === hash.length && timingSafeEqual(seen, hash);
}

/** The bearer token of an `Authorization` header value, or API_KEY_MISSING. */
export function bearerToken(header: string | undefined): string {
  if (header === undefined || header.trim() === '') {
    throw new TresorError('API_KEY_MISSING', 'the request carries no API key (Authorization: Bearer tr_…)');
  }
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(header);
  if (match?.[1] === undefined) {
    throw new TresorError('API_KEY_INVALID', 'the Authorization header is not "Bearer <API key>"');
  }
  return match[1];
}
