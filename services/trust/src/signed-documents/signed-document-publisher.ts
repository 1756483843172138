import type { JSONWebKeySet } from 'jose';
import { TresorError } from '@tresor/protocol';
import type { Clock } from '@tresor/storage';
import type { SignedDocumentKind } from './document-kind.js';
import type { DocumentRepository } from './document-repository.js';
import { signDocument, type DocumentSigner } from './document-signer.js';
import { verifySignedDocument } from './verify-signed-document.js';

/** How one kind of document maps its typed body to and from the JWS payload members. */
export interface DocumentBodyCodec<Body> {
  readonly kind: SignedDocumentKind;
  /** The body of version 1, published when nothing was stored yet. */
  readonly empty: Body;
  /** The payload members besides `iss`, `iat` and `version`. */
  toClaims(body: Body): Readonly<Record<string, unknown>>;
  /** Parses the body out of verified claims; throws SIGNED_DOCUMENT_INVALID. */
  fromClaims(claims: Readonly<Record<string, unknown>>): Body;
}

/** Runs between signing a new version and serving it; throwing drops the version. */
export type BeforePublish<Body> = (next: PublishedDocument<Body>) => Promise<void>;

/** One published version. */
export interface PublishedDocument<Body> {
  readonly version: number;
  readonly issuedAt: Date;
  readonly body: Body;
  /** The compact JWS served to clients. */
  readonly jws: string;
}

export interface SignedDocumentPublisherOptions<Body> {
  readonly codec: DocumentBodyCodec<Body>;
  readonly signer: DocumentSigner;
  /** The `iss` of every document. */
  readonly issuer: string;
  readonly repository: DocumentRepository;
  readonly clock: Clock;
}

/**
 * Holds the newest version of one signed document. Every change is a new version, signed, stored,
 * and only then served; changes are applied one at a time, so versions grow by exactly one and no
 * two documents ever share a version number.
 */
export class SignedDocumentPublisher<Body> {
  readonly #options: SignedDocumentPublisherOptions<Body>;
  #current: PublishedDocument<Body>;
  #changes: Promise<unknown> = Promise.resolve();

  private constructor(options: SignedDocumentPublisherOptions<Body>, current: PublishedDocument<Body>) {
    this.#options = options;
    this.#current = current;
  }

  /**
   * Loads the stored document and verifies it with the signer's own key (a copy edited at rest is
   * refused, SIGNED_DOCUMENT_INVALID), or publishes version 1 with the empty body.
   */
  static async open<Body>(
    options: SignedDocumentPublisherOptions<Body>,
  ): Promise<SignedDocumentPublisher<Body>> {
    const stored = await options.repository.load();
    if (stored === undefined) {
      const first = await sign(options, 1, options.codec.empty);
      await options.repository.save(first.jws);
      return new SignedDocumentPublisher(options, first);
    }
    let verified;
    try {
      verified = await verifySignedDocument(stored, {
        kind: options.codec.kind,
        keys: { keys: [options.signer.publicJwk] },
        issuer: options.issuer,
      });
    } catch (cause) {
      throw new TresorError(
        'SIGNED_DOCUMENT_INVALID',
        `the stored ${options.codec.kind} document does not verify with signing key ${options.signer.keyId}; restore it from a backup`,
        { cause },
      );
    }
    return new SignedDocumentPublisher(options, {
      version: verified.claims.version,
      issuedAt: verified.issuedAt,
      body: options.codec.fromClaims(verified.claims),
      jws: stored,
    });
  }

  get current(): PublishedDocument<Body> {
    return this.#current;
  }

  /** The key set clients pin to verify this document. */
  get verificationKeys(): JSONWebKeySet {
    return { keys: [{ ...this.#options.signer.publicJwk }] };
  }

  /**
   * Applies `change` to the newest body and publishes the result as the next version. When
   * `change` throws (a refused edit), nothing is signed and the version stays. `beforePublish` runs
   * once the new version is signed and before it is stored or served (the admin API writes its
   * audit record there); when it throws, the new version is dropped.
   */
  update(
    change: (body: Body) => Body,
    beforePublish?: BeforePublish<Body>,
  ): Promise<PublishedDocument<Body>> {
    const next = this.#changes.then(async () => {
      const body = change(this.#current.body);
      const published = await sign(this.#options, this.#current.version + 1, body);
      await beforePublish?.(published);
      await this.#options.repository.save(published.jws);
      this.#current = published;
      return published;
    });
    this.#changes = next.catch(() => undefined);
    return next;
  }
}

async function sign<Body>(
  options: SignedDocumentPublisherOptions<Body>,
  version: number,
  body: Body,
): Promise<PublishedDocument<Body>> {
  const now = options.clock.now();
  const iat = Math.floor(now.getTime() / 1000);
  // The common claims come last so that no body member can stand in for them.
  const jws = await signDocument(options.signer, options.codec.kind, {
    ...options.codec.toClaims(body),
    iss: options.issuer,
    iat,
    version,
  });
  return { version, issuedAt: new Date(iat * 1000), body, jws };
}
