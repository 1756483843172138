import { TresorError } from '@tresor/protocol';
import type { KeyKind, KeyMetadata } from './key-store.js';

/**
 * The checks every backend runs before using a key, in one order so every backend reports the
 * same code for the same situation: destroyed, then wrong kind, then disabled.
 */
export function requireUsable(meta: KeyMetadata, kind: KeyKind): void {
  requireNotDestroyed(meta);
  if (meta.kind !== kind) {
    throw new TresorError(
      'KEY_USAGE_INVALID',
      `key ${meta.id} is a ${meta.kind === 'kek' ? 'key-encryption key' : 'signing key'}; this operation needs a ${kind === 'kek' ? 'key-encryption key' : 'signing key'}`,
    );
  }
  if (meta.state === 'disabled') throw new TresorError('KEY_DISABLED', `key ${meta.id} is disabled`);
}

export function requireNotDestroyed(meta: KeyMetadata): void {
  if (meta.state === 'destroyed') {
    throw new TresorError('KEY_DESTROYED', `key ${meta.id} was destroyed`);
  }
}

/** Data keys are AES-256: 32 bytes. */
export function requireDataKeyLength(length: number): void {
  if (length !== 32) {
    throw new TresorError('KEY_USAGE_INVALID', `a data key is 32 bytes (AES-256); got ${length}`);
  }
}
