import {
  ATTESTATION_BUNDLE_VERSION,
  TresorError,
  type AttestationBundle,
  type ComponentEvidence,
  type RuntimeData,
} from '@tresor/protocol';
import {
  bytesToBase64,
  bytesToBase64Url,
  encodeKeyConfig,
  runtimeDataHash,
  type OhttpKeyConfig,
} from '@tresor/crypto';
import type { ReplicaPool } from '../replicas/replica-pool.js';
import type { TeeAttester } from './gateway-attester.js';
import type { TrustDocumentSource } from './trust-documents.js';

const NONCE = /^[0-9a-f]{64}$/;

/** Validates a client nonce: 32 bytes as 64 lowercase hex digits. @throws TresorError USAGE_INVALID */
export function parseNonce(value: unknown): string {
  if (typeof value !== 'string' || !NONCE.test(value)) {
    throw new TresorError(
      'USAGE_INVALID',
      'nonce must be 32 random bytes as 64 lowercase hex digits (?nonce=<hex>)',
    );
  }
  return value;
}

export interface AttestationBundleOptions {
  readonly id: string;
  readonly attester: TeeAttester;
  readonly keyConfig: OhttpKeyConfig;
  readonly tlsSpkiSha256: string;
  readonly pool: ReplicaPool;
  readonly documents: TrustDocumentSource;
  readonly trustUrl: string;
  readonly now: () => Date;
}

/**
 * Builds `GET /.well-known/tresor/attestation?nonce=` answers: the gateway's own evidence over
 * runtime data binding its OHTTP key configuration, the SHA-256 of its TLS certificate's public key
 * and the nonce; every replica in rotation attested live with the same nonce (a replica that cannot
 * answer now is left out, and so is not routed to by a client that checks); and the trust
 * service's signed reference values and residency inventory.
 */
export class AttestationBundleBuilder {
  readonly #o: AttestationBundleOptions;
  readonly #hpkeKeyConfig: string;

  constructor(options: AttestationBundleOptions) {
    this.#o = options;
    this.#hpkeKeyConfig = bytesToBase64Url(encodeKeyConfig(options.keyConfig));
  }

  async gatewayEvidence(nonce: string): Promise<ComponentEvidence> {
    const runtimeData: RuntimeData = {
      version: ATTESTATION_BUNDLE_VERSION,
      component: 'gateway',
      nonce,
      hpkeKeyConfig: this.#hpkeKeyConfig,
      tlsSpkiSha256: this.#o.tlsSpkiSha256,
    };
    const evidence = await this.#o.attester.attest(await runtimeDataHash(runtimeData));
    return {
      component: 'gateway',
      id: this.#o.id,
      tee: this.#o.attester.tee,
      evidence: bytesToBase64(evidence),
      runtimeData,
      producedAt: this.#o.now().toISOString(),
    };
  }

  async build(nonce: string): Promise<AttestationBundle> {
    const [gateway, documents, serving] = await Promise.all([
      this.gatewayEvidence(nonce),
      this.#o.documents.current(),
      Promise.all(
        this.#o.pool.healthy().map(async (replica) => {
          try {
            const { json } = await this.#o.pool.fetchEvidence(replica, nonce);
            return json as ComponentEvidence;
          } catch {
            return undefined;
          }
        }),
      ),
    ]);
    return {
      version: ATTESTATION_BUNDLE_VERSION,
      nonce,
      gateway,
      serving: serving.filter((e): e is ComponentEvidence => e !== undefined),
      referenceValues: documents.referenceValuesJws,
      residencyInventory: documents.residencyInventoryJws,
      trustUrl: this.#o.trustUrl,
    };
  }
}
