import { TresorError } from '@tresor/protocol';
import { base64ToBytes, bytesToBase64, utf8Decode, utf8Encode } from '@tresor/crypto';
import type { KeyId } from '../key-id.js';
import { parseKeyMetadata } from '../key-metadata.js';
import type { KeyMetadata } from '../key-store.js';
import { SecretKeyBytes } from '../secret-key-bytes.js';

/** One key in the file: its metadata and, unless destroyed, its material (raw AES key or PKCS#8 DER). */
export interface FileKeyEntry {
  readonly meta: KeyMetadata;
  readonly material: SecretKeyBytes | null;
}

/** The decrypted content of a keystore file. */
export interface FileKeySet {
  readonly keys: ReadonlyMap<KeyId, FileKeyEntry>;
  /** The BYOK import key (RSA private key, PKCS#8 DER), once created. */
  readonly importKey: SecretKeyBytes | null;
}

export const EMPTY_KEY_SET: FileKeySet = { keys: new Map(), importKey: null };

/**
 * Serialises the key set for sealing. The returned bytes hold key material: the caller zeroes them.
 * (The base64 strings built on the way are JavaScript strings, which cannot be zeroed.)
 */
export function serializeKeySet(set: FileKeySet): Uint8Array {
  const keys = [...set.keys.values()].map((entry) => ({
    ...entry.meta,
    material: entry.material === null ? null : entry.material.expose(bytesToBase64),
  }));
  const importKey = set.importKey === null ? null : set.importKey.expose(bytesToBase64);
  return utf8Encode(JSON.stringify({ keys, importKey }));
}

/** Parses a decrypted key set; the GCM tag already proved who wrote it, but it is checked anyway. */
export function parseKeySet(bytes: Uint8Array): FileKeySet {
  let json: unknown;
  try {
    json = JSON.parse(utf8Decode(bytes));
  } catch (cause) {
    throw new TresorError('KEYSTORE_FILE_MALFORMED', 'the sealed key set is not JSON', { cause });
  }
  if (typeof json !== 'object' || json === null) throw malformed('not an object');
  const o = json as Record<string, unknown>;
  if (!Array.isArray(o.keys)) throw malformed('keys is not an array');
  const keys = new Map<KeyId, FileKeyEntry>();
  for (const raw of o.keys as unknown[]) {
    const meta = parseKeyMetadata(raw, 'KEYSTORE_FILE_MALFORMED');
    const material = (raw as Record<string, unknown>).material;
    if (keys.has(meta.id)) throw malformed(`key ${meta.id} appears twice`);
    const destroyed = meta.state === 'destroyed';
    if (destroyed !== (material === null))
      throw malformed(`key ${meta.id}: material does not match its state`);
    keys.set(meta.id, { meta, material: material === null ? null : secret(material, meta.id) });
  }
  const importKey =
    o.importKey === null || o.importKey === undefined ? null : secret(o.importKey, 'import key');
  return { keys, importKey };
}

function secret(value: unknown, name: string): SecretKeyBytes {
  if (typeof value !== 'string') throw malformed(`${name}: material is not base64`);
  try {
    return SecretKeyBytes.takeFrom(base64ToBytes(value));
  } catch (cause) {
    throw new TresorError('KEYSTORE_FILE_MALFORMED', `keystore file: ${name}: material is not base64`, {
      cause,
    });
  }
}

function malformed(detail: string): TresorError {
  return new TresorError('KEYSTORE_FILE_MALFORMED', `keystore file: ${detail}`);
}
