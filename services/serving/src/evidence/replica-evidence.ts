import {
  ATTESTATION_BUNDLE_VERSION,
  type ComponentEvidence,
  type LoadedModelDigest,
  type RuntimeData,
} from '@tresor/protocol';
import { bytesToBase64, runtimeDataHash } from '@tresor/crypto';
import { createHash } from 'node:crypto';
import type { ReceiptPublicJwk } from '../startup/replica-keys.js';
import type { EvidenceSource } from './evidence-source.js';
import type { GpuEvidenceSource } from './gpu-evidence.js';

/** What a replica binds into every evidence it produces. */
export interface ReplicaBinding {
  readonly replicaId: string;
  readonly hpkeKeyConfig: string;
  readonly tlsSpkiSha256: string;
  readonly receiptKey: ReceiptPublicJwk;
  /** The models loaded so far. */
  models(): readonly LoadedModelDigest[];
}

/**
 * Produces a replica's `ComponentEvidence` (packages/protocol attestation-bundle.ts): the runtime
 * data names its HPKE key configuration, TLS key, receipt key, loaded models, the caller's nonce
 * and the hash of the GPU evidence (collected for the same nonce); its canonical SHA-384 is the
 * report data of fresh CPU evidence. Nothing is cached across nonces.
 */
export class ReplicaEvidence {
  readonly #source: EvidenceSource;
  readonly #gpu: GpuEvidenceSource;
  readonly #binding: ReplicaBinding;
  readonly #now: () => Date;

  constructor(
    source: EvidenceSource,
    gpu: GpuEvidenceSource,
    binding: ReplicaBinding,
    now: () => Date = () => new Date(),
  ) {
    this.#source = source;
    this.#gpu = gpu;
    this.#binding = binding;
    this.#now = now;
  }

  get tee(): EvidenceSource['tee'] {
    return this.#source.tee;
  }

  async produce(nonce: string): Promise<ComponentEvidence> {
    const gpu = await this.#gpu.collect(nonce);
    const models = [...this.#binding.models()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    const runtimeData: RuntimeData = {
      version: ATTESTATION_BUNDLE_VERSION,
      component: 'serving',
      nonce,
      hpkeKeyConfig: this.#binding.hpkeKeyConfig,
      tlsSpkiSha256: this.#binding.tlsSpkiSha256,
      ...(gpu === null ? {} : { gpuEvidenceSha256: createHash('sha256').update(gpu.bytes).digest('hex') }),
      models: models.map((m) => ({ id: m.id, sha256: m.sha256 })),
      receiptKey: this.#binding.receiptKey,
    };
    const evidence = await this.#source.collect(await runtimeDataHash(runtimeData));
    return {
      component: 'serving',
      id: this.#binding.replicaId,
      tee: this.#source.tee,
      evidence: bytesToBase64(evidence),
      runtimeData,
      ...(gpu === null ? {} : { gpu: { evidence: bytesToBase64(gpu.bytes) } }),
      producedAt: this.#now().toISOString(),
    };
  }
}
