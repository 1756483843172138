import { TresorError } from '@tresor/protocol';
import {
  SignedDocumentPublisher,
  type BeforePublish,
  type PublishedDocument,
  type SignedDocumentPublisherOptions,
} from '../signed-documents/signed-document-publisher.js';
import {
  requireReleasedWorkload,
  matchReferenceValues,
  type MeasuredWorkload,
} from './match-reference-values.js';
import {
  MAX_REFERENCE_VALUE_SETS,
  compareKeys,
  sameKey,
  type ReferenceValueKey,
  type ReferenceValueSet,
} from './reference-value-set.js';
import { referenceValuesCodec, type ReferenceValues } from './reference-values-document.js';

/**
 * The trust service's reference values: changed only through signed admin requests (the admin
 * routes call `put` / `remove`), published as a signed, versioned document, and consulted by
 * key release, token issuance and the mesh CA.
 */
export class ReferenceValueStore {
  readonly #publisher: SignedDocumentPublisher<ReferenceValues>;

  private constructor(publisher: SignedDocumentPublisher<ReferenceValues>) {
    this.#publisher = publisher;
  }

  static async open(
    options: Omit<SignedDocumentPublisherOptions<ReferenceValues>, 'codec'>,
  ): Promise<ReferenceValueStore> {
    return new ReferenceValueStore(
      await SignedDocumentPublisher.open({ ...options, codec: referenceValuesCodec }),
    );
  }

  /** The newest signed document. */
  get document(): PublishedDocument<ReferenceValues> {
    return this.#publisher.current;
  }

  get sets(): readonly ReferenceValueSet[] {
    return this.#publisher.current.body.referenceValues;
  }

  get publisher(): SignedDocumentPublisher<ReferenceValues> {
    return this.#publisher;
  }

  /** Adds a set, or replaces the set with the same component, release and TEE kind. */
  put(
    set: ReferenceValueSet,
    beforePublish?: BeforePublish<ReferenceValues>,
  ): Promise<PublishedDocument<ReferenceValues>> {
    return this.#publisher.update(({ referenceValues }) => {
      const others = referenceValues.filter((s) => !sameKey(s, set));
      if (others.length >= MAX_REFERENCE_VALUE_SETS) {
        throw new TresorError(
          'INPUT_MALFORMED',
          `the reference values hold ${MAX_REFERENCE_VALUE_SETS} sets already; remove withdrawn releases first`,
        );
      }
      return { referenceValues: [...others, set].sort(compareKeys) };
    }, beforePublish);
  }

  /** Withdraws a release. @throws TresorError ADMIN_TARGET_NOT_FOUND when no such set exists. */
  remove(
    key: ReferenceValueKey,
    beforePublish?: BeforePublish<ReferenceValues>,
  ): Promise<PublishedDocument<ReferenceValues>> {
    return this.#publisher.update(({ referenceValues }) => {
      const kept = referenceValues.filter((s) => !sameKey(s, key));
      if (kept.length === referenceValues.length) {
        throw new TresorError(
          'ADMIN_TARGET_NOT_FOUND',
          `no reference values for ${key.component} ${key.release} on ${key.tee}`,
        );
      }
      return { referenceValues: kept };
    }, beforePublish);
  }

  /** Every released set the workload is an instance of. */
  match(workload: MeasuredWorkload): readonly ReferenceValueSet[] {
    return matchReferenceValues(this.sets, workload);
  }

  /** The release the workload is; MEASUREMENT_NOT_ALLOWED when it is none. */
  requireReleased(workload: MeasuredWorkload, component?: string): ReferenceValueKey {
    return requireReleasedWorkload(this.sets, workload, component);
  }
}
