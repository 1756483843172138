import { importJWK, type JWK } from 'jose';
import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { schemaProblem } from '../signed-documents/schema-problem.js';

/**
 * Admin keys: the public keys whose holders may change what the trust service allows. Listed in
 * the service config only (never changeable through the API itself), each with an id that becomes
 * the `kid` of the requests it signs and the actor of the audit records they leave.
 */
export type AdminAlgorithm = 'ES256' | 'EdDSA';
export const ADMIN_ALGORITHMS: readonly AdminAlgorithm[] = ['ES256', 'EdDSA'];

/** An admin key id: printable, no spaces, fits an audit actor id and a JWS `kid`. */
export const ADMIN_KEY_ID = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;

export interface AdminKey {
  readonly id: string;
  readonly algorithm: AdminAlgorithm;
  readonly publicJwk: JWK;
  readonly key: CryptoKey;
}

/** The configured admin keys, as written in the service config: `[{"id": "alice", "jwk": {…}}]`. */
export const adminKeysSchema = z
  .array(
    z.strictObject({
      id: z.string().regex(ADMIN_KEY_ID, 'an admin key id (letters, digits, . _ @ -, at most 64)'),
      jwk: z.record(z.string(), z.unknown()),
    }),
  )
  .max(100);
export type AdminKeysConfig = z.input<typeof adminKeysSchema>;

export class AdminKeySet {
  readonly #keys: ReadonlyMap<string, AdminKey>;

  private constructor(keys: ReadonlyMap<string, AdminKey>) {
    this.#keys = keys;
  }

  /**
   * Validates the configured keys: public EC P-256 (ES256) or Ed25519 (EdDSA) JWKs only, no
   * private member, unique ids. An empty list is allowed: the service then accepts no change.
   *
   * @throws TresorError CONFIG_INVALID naming the offending key
   */
  static async parse(value: unknown): Promise<AdminKeySet> {
    const parsed = adminKeysSchema.safeParse(value);
    if (!parsed.success) throw new TresorError('CONFIG_INVALID', `admin.keys ${schemaProblem(parsed.error)}`);
    const keys = new Map<string, AdminKey>();
    for (const { id, jwk } of parsed.data) {
      if (keys.has(id)) throw new TresorError('CONFIG_INVALID', `admin.keys lists ${id} twice`);
      keys.set(id, await importAdminPublicKey(id, jwk));
    }
    return new AdminKeySet(keys);
  }

  get(id: string): AdminKey | undefined {
    return this.#keys.get(id);
  }

  get ids(): readonly string[] {
    return [...this.#keys.keys()];
  }
}

async function importAdminPublicKey(id: string, jwk: Record<string, unknown>): Promise<AdminKey> {
  const bad = (why: string): TresorError => new TresorError('CONFIG_INVALID', `admin key ${id}: ${why}`);
  if ('d' in jwk) throw bad('the JWK holds a private key; list only the public key in the config');
  const algorithm = adminAlgorithmOf(jwk);
  if (algorithm === undefined)
    throw bad('only EC P-256 (ES256) and Ed25519 (EdDSA) public JWKs are accepted');
  const publicJwk: JWK =
    algorithm === 'ES256'
      ? { kty: 'EC', crv: 'P-256', x: jwk.x as string, y: jwk.y as string }
      : { kty: 'OKP', crv: 'Ed25519', x: jwk.x as string };
  try {
    const key = await importJWK(publicJwk, algorithm);
    if (!(key instanceof CryptoKey)) throw new Error('not a public key');
    return { id, algorithm, publicJwk, key };
  } catch (cause) {
    throw new TresorError('CONFIG_INVALID', `admin key ${id}: the JWK is not a valid public key`, { cause });
  }
}

/** The algorithm a public JWK is for, from its key type and curve (its `alg`, if any, must agree). */
export function adminAlgorithmOf(jwk: Readonly<Record<string, unknown>>): AdminAlgorithm | undefined {
  const { kty, crv, x, y, alg } = jwk;
  const algorithm =
    kty === 'EC' && crv === 'P-256' && typeof x === 'string' && typeof y === 'string'
      ? 'ES256'
      : kty === 'OKP' && crv === 'Ed25519' && typeof x === 'string'
        ? 'EdDSA'
        : undefined;
  if (algorithm === undefined || (alg !== undefined && alg !== algorithm)) return undefined;
  return algorithm;
}
