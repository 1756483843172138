import { calculateJwkThumbprint, decodeProtectedHeader, type JSONWebKeySet, type JWK } from 'jose';
import { TresorError } from '@tresor/protocol';
import {
  verifyReferenceValuesDocument,
  verifyResidencyInventoryDocument,
  type VerifiedReferenceValues,
  type VerifiedResidencyInventory,
} from '@tresor/attestation';
import type { TresorPolicy } from './policy.js';

/** The trust service's public JWKS of document keys (docs/trust.md "Signed documents"). */
export const DOCUMENT_KEYS_PATH = '/trust/v0/document-keys';
const MAX_JWKS_BYTES = 64 * 1024;

/**
 * The keys the signed documents must verify with: every JWK the policy pins, plus — for pinned
 * thumbprints — the keys of the trust service's JWKS whose RFC 7638 thumbprint is pinned. A
 * fetched key whose thumbprint is not pinned is never used, so the channel it came over need not
 * be trusted.
 */
export async function pinnedDocumentKeys(
  policy: TresorPolicy,
  fetchJwks: (() => Promise<unknown>) | undefined,
): Promise<JSONWebKeySet> {
  const keys: JWK[] = [];
  for (const pin of policy.trustServiceKeys) if ('jwk' in pin) keys.push(pin.jwk);
  const thumbprints = policy.trustServiceKeys.flatMap((pin) => ('thumbprint' in pin ? [pin.thumbprint] : []));
  if (thumbprints.length > 0) {
    if (fetchJwks === undefined) {
      throw new TresorError(
        'TRUST_POLICY_INVALID',
        'the policy pins trust-service keys by thumbprint, but the gateway names no trust service to fetch them from; pin the JWK itself',
      );
    }
    const jwks = await fetchJwks();
    const listed = isJwks(jwks) ? jwks.keys : [];
    for (const key of listed) {
      const thumbprint = await calculateJwkThumbprint(key).catch(() => '');
      if (thumbprints.includes(thumbprint)) keys.push(key);
    }
  }
  return { keys };
}

/**
 * A pinned JWK written without its `kid` still verifies a document whose header names one: the
 * kid only selects candidate keys, the signature decides.
 */
function keysFor(jws: string, keys: JSONWebKeySet): JSONWebKeySet {
  let kid: unknown;
  try {
    kid = decodeProtectedHeader(jws).kid;
  } catch {
    return keys;
  }
  if (typeof kid !== 'string') return keys;
  return { keys: keys.keys.map((k) => (k.kid === undefined ? { ...k, kid } : k)) };
}

function isJwks(value: unknown): value is JSONWebKeySet {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { keys?: unknown }).keys) &&
    (value as { keys: unknown[] }).keys.every((k) => typeof k === 'object' && k !== null)
  );
}

export interface TrustDocuments {
  readonly referenceValues: VerifiedReferenceValues | TresorError;
  readonly inventory: VerifiedResidencyInventory | TresorError;
}

/** Verifies both documents of a bundle; a failure is returned per document, not thrown. */
export async function verifyTrustDocuments(
  referenceValuesJws: string,
  inventoryJws: string,
  keys: JSONWebKeySet,
  issuer: string | undefined,
): Promise<TrustDocuments> {
  const options = (jws: string) => ({
    keys: keysFor(jws, keys),
    ...(issuer === undefined ? {} : { issuer }),
  });
  const settle = async <T>(p: Promise<T>): Promise<T | TresorError> => {
    try {
      return await p;
    } catch (cause) {
      return cause instanceof TresorError
        ? cause
        : new TresorError('SIGNED_DOCUMENT_INVALID', 'the signed document could not be verified', { cause });
    }
  };
  const [referenceValues, inventory] = await Promise.all([
    settle(verifyReferenceValuesDocument(referenceValuesJws, options(referenceValuesJws))),
    settle(verifyResidencyInventoryDocument(inventoryJws, options(inventoryJws))),
  ]);
  return { referenceValues, inventory };
}

export { MAX_JWKS_BYTES };
