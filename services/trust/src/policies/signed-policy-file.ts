import { compactVerify, importJWK } from 'jose';
import { TresorError } from '@tresor/protocol';
import { utf8Decode } from '@tresor/crypto';
import type { Clock } from '@tresor/storage';
import { DOCUMENT_ALGORITHM } from '../signed-documents/document-kind.js';
import type { DocumentRepository } from '../signed-documents/document-repository.js';
import { signCompactJws, type DocumentSigner } from '../signed-documents/document-signer.js';

/** One stored version of a policy. */
export interface StoredPolicy<Body> {
  readonly version: number;
  readonly body: Body;
}

export interface SignedPolicyFileOptions<Body> {
  /** The JWS `typ`, e.g. `tresor-resource-policy+jwt`: a document of another kind is refused. */
  readonly typ: string;
  /** What the policy is, for messages ("resource policy"). */
  readonly name: string;
  /** The trust service's document key: policies at rest are signed like the published documents. */
  readonly signer: DocumentSigner;
  readonly issuer: string;
  readonly repository: DocumentRepository;
  readonly clock: Clock;
  /** Parses the stored `policy` member; throws a TresorError for a body this service refuses. */
  readonly parse: (value: unknown) => Body;
  /** The JSON form stored in the `policy` member. */
  readonly toJson: (body: Body) => unknown;
}

/**
 * A policy set through the admin API and kept in the state directory between restarts, the way
 * the reference values are: as a compact JWS signed by the document key (header
 * `{"alg":"ES256","kid","typ"}`, payload `{"policy","iss","iat","version"}`), verified with that
 * key when loaded, so a copy edited at rest is refused (SIGNED_DOCUMENT_INVALID) rather than
 * silently obeyed. The configuration's policy is the initial one: once an admin set a policy, the
 * stored one is in force. Not published: clients have no use for it.
 */
export class SignedPolicyFile<Body> {
  readonly #options: SignedPolicyFileOptions<Body>;
  #stored: StoredPolicy<Body> | undefined;
  #changes: Promise<unknown> = Promise.resolve();

  private constructor(options: SignedPolicyFileOptions<Body>, stored: StoredPolicy<Body> | undefined) {
    this.#options = options;
    this.#stored = stored;
  }

  /**
   * Loads and verifies the stored policy, if any.
   *
   * @throws TresorError SIGNED_DOCUMENT_INVALID when the file does not verify with the document key
   *   or is not this kind of policy; the parser's error when its policy is refused (e.g. a policy
   *   stored in development mode that production mode does not allow)
   */
  static async open<Body>(options: SignedPolicyFileOptions<Body>): Promise<SignedPolicyFile<Body>> {
    const jws = await options.repository.load();
    if (jws === undefined) return new SignedPolicyFile(options, undefined);
    const claims = await verify(jws, options);
    return new SignedPolicyFile(options, { version: claims.version, body: options.parse(claims.policy) });
  }

  /** The stored policy, or undefined when none was ever set (the configuration's is in force). */
  get stored(): StoredPolicy<Body> | undefined {
    return this.#stored;
  }

  /**
   * Signs `body` as the next version; `beforeSave` runs once it is signed and before it is stored
   * (the admin API writes its audit record there: when that fails, nothing is stored). Changes
   * are applied one at a time.
   */
  save(body: Body, beforeSave: (version: number) => Promise<void>): Promise<StoredPolicy<Body>> {
    const next = this.#changes.then(async () => {
      const version = (this.#stored?.version ?? 0) + 1;
      const jws = await signCompactJws(this.#options.signer, this.#options.typ, {
        policy: this.#options.toJson(body),
        iss: this.#options.issuer,
        iat: Math.floor(this.#options.clock.now().getTime() / 1000),
        version,
      });
      await beforeSave(version);
      await this.#options.repository.save(jws);
      this.#stored = { version, body };
      return this.#stored;
    });
    this.#changes = next.catch(() => undefined);
    return next;
  }
}

interface PolicyClaims {
  readonly policy: unknown;
  readonly version: number;
}

async function verify<Body>(jws: string, options: SignedPolicyFileOptions<Body>): Promise<PolicyClaims> {
  const refuse = (why: string, cause?: unknown): TresorError =>
    new TresorError(
      'SIGNED_DOCUMENT_INVALID',
      `the stored ${options.name} ${why}; restore it from a backup or set it again through the admin API`,
      cause === undefined ? {} : { cause },
    );
  let payload: Uint8Array;
  let header: { typ?: unknown; kid?: unknown };
  try {
    const key = await importJWK({ ...options.signer.publicJwk }, DOCUMENT_ALGORITHM);
    ({ payload, protectedHeader: header } = await compactVerify(jws, key, {
      algorithms: [DOCUMENT_ALGORITHM],
    }));
  } catch (cause) {
    throw refuse(`does not verify with signing key ${options.signer.keyId}`, cause);
  }
  if (header.typ !== options.typ) throw refuse(`is of type ${String(header.typ)}, not ${options.typ}`);
  let claims: unknown;
  try {
    claims = JSON.parse(utf8Decode(payload));
  } catch (cause) {
    throw refuse('is not JSON', cause);
  }
  if (typeof claims !== 'object' || claims === null) throw refuse('is not a JSON object');
  const { iss, version, policy } = claims as Record<string, unknown>;
  if (iss !== options.issuer) throw refuse(`was issued by ${String(iss)}, not ${options.issuer}`);
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) {
    throw refuse('has no positive integer version');
  }
  return { policy, version };
}
