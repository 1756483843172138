import { TresorError, type ErrorCode } from '@tresor/protocol';
import { isKeyId } from './key-id.js';
import { isSigningAlgorithm } from './ec-keys.js';
import type { KeyAlgorithm, KeyKind, KeyMetadata, KeyOrigin, KeyState } from './key-store.js';

const KINDS: readonly KeyKind[] = ['kek', 'signing'];
const STATES: readonly KeyState[] = ['enabled', 'disabled', 'destroyed'];
const ORIGINS: readonly KeyOrigin[] = ['generated', 'imported'];
/** Labels are for people; bounded so a stored record or a request cannot grow without limit. */
export const MAX_LABEL_LENGTH = 256;

/**
 * Parses key metadata from untrusted JSON (a keystore file, a key server answer). `code` is the
 * error the caller reports when the input is not metadata.
 */
export function parseKeyMetadata(value: unknown, code: ErrorCode): KeyMetadata {
  const bad = (detail: string): TresorError => new TresorError(code, `key metadata: ${detail}`);
  if (typeof value !== 'object' || value === null) throw bad('not an object');
  const o = value as Record<string, unknown>;
  if (!isKeyId(o.id)) throw bad('id is not a key id');
  const kind = o.kind;
  if (!KINDS.includes(kind as KeyKind)) throw bad('unknown kind');
  const algorithm = o.algorithm;
  const algorithmOk = kind === 'kek' ? algorithm === 'A256KW' : isSigningAlgorithm(algorithm);
  if (!algorithmOk) throw bad(`algorithm does not fit a ${String(kind)} key`);
  if (!STATES.includes(o.state as KeyState)) throw bad('unknown state');
  if (!ORIGINS.includes(o.origin as KeyOrigin)) throw bad('unknown origin');
  if (typeof o.created !== 'string' || Number.isNaN(Date.parse(o.created)))
    throw bad('created is not a date');
  if (typeof o.label !== 'string' || o.label.length > MAX_LABEL_LENGTH)
    throw bad('label is not a short string');
  return {
    id: o.id,
    kind: kind as KeyKind,
    algorithm: algorithm as KeyAlgorithm,
    state: o.state as KeyState,
    origin: o.origin as KeyOrigin,
    created: new Date(o.created).toISOString(),
    label: o.label,
  };
}

/** Refuses labels that are too long or hold control characters (they end up in logs and terminals). */
export function checkLabel(label: string | undefined): string {
  const value = label ?? '';
  // eslint-disable-next-line no-control-regex
  if (value.length > MAX_LABEL_LENGTH || /[\u0000-\u001f\u007f]/.test(value)) {
    throw new TresorError(
      'USAGE_INVALID',
      `a key label is at most ${MAX_LABEL_LENGTH} characters without control characters`,
    );
  }
  return value;
}
