import { compactVerify, importJWK } from 'jose';
import { z } from 'zod';
import { TresorError, type ReceiptClaims } from '@tresor/protocol';
import { utf8Decode, utf8Encode } from '@tresor/crypto';
import type { ComponentIdentity } from './component-evidence.js';

/** A receipt the client verified: what `client.lastReceipt` and the `onReceipt` callback hand out. */
export interface VerifiedReceipt {
  /** The compact JWS as received (save it for `tresor verify-receipt`). */
  readonly jws: string;
  readonly claims: ReceiptClaims;
  /** The attested receipt key (JWK) it verified with. */
  readonly receiptKey: { readonly kty: 'OKP'; readonly crv: 'Ed25519'; readonly x: string };
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const claimsSchema = z.object({
  requestSha256: hex64,
  responseSha256: hex64,
  model: z.string().min(1).max(256),
  modelSha256: hex64,
  evidenceSha256: hex64,
  replica: z.string().min(1).max(128),
  iat: z.number().int().nonnegative(),
});

/**
 * Why a receipt did not match the replicas this client verified, where a newer verification may
 * explain it: the replica is not in it (new id), its receipt key changed (a restart: a new attested
 * key under the same id), or it loaded another model. The client re-verifies once on these, and
 * only on these (`receiptNeedsFreshReplicas`); every other mismatch is refused at once.
 */
export type ReplicaMismatch = 'replica-unknown' | 'receipt-key-changed' | 'model-unattested';

function invalid(message: string, cause?: unknown, mismatch?: ReplicaMismatch): TresorError {
  return new TresorError('RECEIPT_INVALID', message, {
    ...(cause === undefined ? {} : { cause }),
    ...(mismatch === undefined ? {} : { details: { replicaMismatch: mismatch } }),
  });
}

/** True when `error` is a RECEIPT_INVALID that a fresh verification of the replicas might resolve. */
export function receiptNeedsFreshReplicas(error: unknown): boolean {
  return (
    error instanceof TresorError &&
    error.code === 'RECEIPT_INVALID' &&
    typeof error.details?.replicaMismatch === 'string'
  );
}

type ReceiptJwk = NonNullable<ComponentIdentity['receiptKey']>;

/**
 * Imported receipt keys, by the attested JWK object of a verified replica: every receipt of a
 * replica is checked with the same key, so it is imported once per verification rather than per
 * response. A key that fails to import is not kept (it fails again, the same way, next time).
 */
const importedReceiptKeys = new WeakMap<ReceiptJwk, ReturnType<typeof importJWK>>();

function receiptVerifyKey(key: ReceiptJwk): ReturnType<typeof importJWK> {
  let imported = importedReceiptKeys.get(key);
  if (imported === undefined) {
    imported = importJWK({ ...key, alg: 'EdDSA' }, 'EdDSA');
    importedReceiptKeys.set(key, imported);
    void imported.catch(() => importedReceiptKeys.delete(key));
  }
  return imported;
}

/**
 * An Ed25519 signature check (RFC 8032) with a public key given as its JWK (RFC 8037 "OKP"):
 * `true` only when `signature` is valid for `data`. Injectable like the body digest: WebCrypto (via
 * jose) is the default and runs everywhere, but each check is a thread-pool job answered through
 * promises; on Node `createNodeTransport` passes node:crypto's, which answers on this thread.
 */
export type Ed25519Verify = (
  key: ReceiptJwk,
  data: Uint8Array,
  signature: Uint8Array,
) => boolean | Promise<boolean>;

/** How receipts are checked (platform choices only: every backend enforces the same rules). */
export interface ReceiptVerifyOptions {
  /** Default: jose's `compactVerify` on WebCrypto. */
  readonly ed25519Verify?: Ed25519Verify;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;
const RECEIPT_ALGORITHMS: readonly unknown[] = ['EdDSA', 'Ed25519'];

/**
 * The compact JWS (RFC 7515 §7.1) checked with `ed25519Verify`, as strictly as jose's
 * `compactVerify` with `algorithms: ['EdDSA', 'Ed25519']`: a JSON-object protected header whose
 * `alg` is one of those two, base64url segments, and a signature over `header.payload` as sent.
 * A header with `crit` or `b64` (RFC 7797) goes to jose, whose rules for those extensions decide;
 * serving never writes either. Returns the payload bytes; throws on any failure.
 */
async function verifyEd25519Jws(
  parts: readonly string[],
  key: ReceiptJwk,
  ed25519Verify: Ed25519Verify,
): Promise<Uint8Array | undefined> {
  const [header = '', payload = '', signature = ''] = parts;
  if (!BASE64URL.test(header) || !BASE64URL.test(payload) || !BASE64URL.test(signature))
    throw new Error('a JWS segment is not base64url');
  const protectedHeader = JSON.parse(utf8Decode(base64UrlDecode(header))) as unknown;
  if (typeof protectedHeader !== 'object' || protectedHeader === null || Array.isArray(protectedHeader))
    throw new Error('the JWS protected header is not a JSON object');
  if ('crit' in protectedHeader || 'b64' in protectedHeader) return undefined;
  if (!RECEIPT_ALGORITHMS.includes((protectedHeader as { alg?: unknown }).alg))
    throw new Error('the JWS alg is not EdDSA');
  const ok = await ed25519Verify(key, utf8Encode(`${header}.${payload}`), base64UrlDecode(signature));
  if (!ok) throw new Error('the JWS signature does not verify');
  return base64UrlDecode(payload);
}

/** What the receipt must say, as far as the verifier knows it. */
export interface ReceiptExpectations {
  /** SHA-256 (hex) of the request body sent. */
  readonly requestSha256?: string;
  /** SHA-256 (hex) of the response body received (for streams: SSE bytes before the receipt line). */
  readonly responseSha256?: string;
  /** The model the request asked for. */
  readonly model?: string;
}

/**
 * Verifies a response receipt: EdDSA signature by the attested receipt key of the replica it
 * names, the replica's evidence hash and a model it attested as loaded, and the request and
 * response hashes the client computed itself.
 *
 * @throws TresorError RECEIPT_INVALID naming what does not match.
 */
export async function verifyReceipt(
  jws: string,
  replicas: readonly ComponentIdentity[],
  expectations: ReceiptExpectations = {},
  options: ReceiptVerifyOptions = {},
): Promise<VerifiedReceipt> {
  const parts = jws.split('.');
  if (parts.length !== 3 || jws.length > 16 * 1024) throw invalid('the receipt is not a compact JWS');
  let unverified: unknown;
  try {
    unverified = JSON.parse(utf8Decode(base64UrlDecode(parts[1] ?? '')));
  } catch (cause) {
    throw invalid('the receipt payload is not JSON', cause);
  }
  const replicaId = (unverified as { replica?: unknown } | null)?.replica;
  const replica = replicas.find((r) => r.id === replicaId);
  if (replica === undefined) {
    throw invalid(
      `the receipt names replica ${JSON.stringify(replicaId ?? null)}, which is not among the attested serving replicas`,
      undefined,
      'replica-unknown',
    );
  }
  const key = replica.receiptKey;
  if (key === null) throw invalid(`replica ${replica.id} attested no receipt key`);
  let payload: Uint8Array;
  try {
    const own =
      options.ed25519Verify === undefined
        ? undefined
        : await verifyEd25519Jws(parts, key, options.ed25519Verify);
    payload =
      own ??
      (
        await compactVerify(jws, await receiptVerifyKey(key), {
          algorithms: ['EdDSA', 'Ed25519'],
        })
      ).payload;
  } catch (cause) {
    throw invalid(
      `the receipt's signature does not verify with replica ${replica.id}'s attested receipt key`,
      cause,
      'receipt-key-changed',
    );
  }
  const parsed = claimsSchema.safeParse(JSON.parse(utf8Decode(payload)));
  if (!parsed.success) throw invalid('the receipt claims are malformed');
  const claims = parsed.data;
  // No equality with the evidence in this client's bundle: that evidence is fresh for this client's
  // nonce, while a replica signs each receipt once, naming its boot evidence (GET /attestation
  // without a nonce, for auditors). What binds the receipt to the attested replica is the receipt
  // key, which the fresh evidence this client verified attests (runtimeData.receiptKey).
  const model = replica.models.find((m) => m.sha256 === claims.modelSha256);
  if (model === undefined)
    throw invalid(
      `the receipt names model digest ${claims.modelSha256.slice(0, 16)}…, which replica ${replica.id} did not attest as loaded`,
      undefined,
      'model-unattested',
    );
  const same = (what: string, seen: string, wanted: string | undefined): void => {
    if (wanted !== undefined && seen !== wanted)
      throw invalid(
        `the receipt's ${what} hash does not match what this client ${what === 'request' ? 'sent' : 'received'}`,
      );
  };
  same('request', claims.requestSha256, expectations.requestSha256);
  same('response', claims.responseSha256, expectations.responseSha256);
  if (
    expectations.model !== undefined &&
    claims.model !== expectations.model &&
    model.id !== expectations.model
  ) {
    throw invalid(`the receipt is for model ${claims.model}, not ${expectations.model}`);
  }
  return { jws, claims, receiptKey: key };
}

function base64UrlDecode(text: string): Uint8Array {
  const s = text.replaceAll('-', '+').replaceAll('_', '/');
  const bin = atob(s + '='.repeat((4 - (s.length % 4)) % 4));
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}
