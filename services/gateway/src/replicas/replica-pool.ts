import { randomBytes } from 'node:crypto';
import { TresorError, isTresorError, SERVING_ATTESTATION_PATH } from '@tresor/protocol';
import type { Logger } from 'pino';
import type { TrustDocumentSource } from '../attestation/trust-documents.js';
import { MeshClient, readBody, type MeshTls, type TransportFailure } from './mesh-client.js';
import type { ReplicaVerifier, VerifiedReplica } from './replica-verifier.js';

const MAX_EVIDENCE_BYTES = 8 * 1024 * 1024;
const NO_REPLICAS: ReadonlySet<Replica> = new Set();

/** One serving replica as routing sees it. */
export interface Replica {
  readonly url: string;
  readonly client: MeshClient;
  /** Set while the replica is attested and in rotation. */
  verified: VerifiedReplica | undefined;
  /** When its evidence last verified (ms since the epoch). */
  verifiedAtMs: number;
  /** Requests sent and not yet answered completely. */
  outstanding: number;
  /** Code of the last failure, for /readyz and logs (never a message: it could describe infrastructure). */
  lastError: string | null;
  /** Models it served when last attested, kept after a failure so its models are "unavailable", not "unknown". */
  knownModels: readonly string[];
  /** Transport failures since its last answer (any HTTP status counts as an answer). */
  transportFailures: number;
  /** Re-probes since it left the rotation (the backoff exponent). */
  reprobes: number;
  /** Cancels the pending re-probe, if one is scheduled. */
  cancelReprobe: (() => void) | undefined;
}

/** Runs `run` after `ms` (a timer that must not keep the process alive); returns a cancel function. */
export type Delay = (ms: number, run: () => void) => () => void;

const timerDelay: Delay = (ms, run) => {
  const timer = setTimeout(run, ms);
  timer.unref();
  return () => {
    clearTimeout(timer);
  };
};

/** Consecutive timeouts or broken connections after which a replica leaves the rotation. */
export const MAX_TRANSPORT_FAILURES = 3;

export interface ReplicaPoolOptions {
  readonly urls: readonly string[];
  readonly mesh: MeshTls;
  readonly verifier: ReplicaVerifier;
  readonly documents: TrustDocumentSource;
  readonly now: () => Date;
  readonly maxAgeMs: number;
  readonly timeoutMs: number;
  readonly logger: Logger;
  /** Consecutive slow/broken transport failures that take a replica out (default 3). */
  readonly maxTransportFailures?: number;
  /** First re-probe after a replica left the rotation, doubled per failed probe (default 250 ms). */
  readonly reprobeBaseMs?: number;
  /** Longest wait between re-probes (default 30 s). */
  readonly reprobeMaxMs?: number;
  /** Timer for re-probes (tests inject their own). */
  readonly delay?: Delay;
}

/**
 * The serving replicas: attested before they get a request, re-attested periodically with a fresh
 * nonce, and chosen by least outstanding requests among the attested, resident replicas that serve
 * the model. A replica leaves the rotation at once when its evidence fails or expires, when it is
 * gone (connection refused or reset while connecting) or no longer trustworthy (mTLS failure, a TLS
 * key its evidence does not bind, a sealed answer that does not authenticate), and after
 * `maxTransportFailures` consecutive timeouts or broken connections. Overload never takes it out:
 * any HTTP answer (503 busy included) resets the count. A replica out of rotation is re-probed
 * (fresh evidence, fully verified) after a bounded exponential backoff, not only by the periodic
 * re-attestation, and returns only when its evidence verifies.
 */
export class ReplicaPool {
  readonly #replicas: Replica[];
  readonly #options: ReplicaPoolOptions;

  constructor(options: ReplicaPoolOptions) {
    this.#options = options;
    this.#replicas = options.urls.map((url) => ({
      url,
      client: new MeshClient(url, options.mesh, options.timeoutMs),
      verified: undefined,
      verifiedAtMs: 0,
      outstanding: 0,
      lastError: null,
      knownModels: [],
      transportFailures: 0,
      reprobes: 0,
      cancelReprobe: undefined,
    }));
  }

  get replicas(): readonly Replica[] {
    return this.#replicas;
  }

  /** Replicas currently in rotation (attested, evidence not expired). */
  healthy(): Replica[] {
    const nowMs = this.#options.now().getTime();
    return this.#replicas.filter((r) => {
      if (r.verified === undefined) return false;
      if (nowMs - r.verified.producedAt.getTime() > this.#options.maxAgeMs) {
        this.#remove(r, 'EVIDENCE_STALE');
        return false;
      }
      return true;
    });
  }

  /** Model ids served by replicas in rotation, sorted. */
  models(): string[] {
    return [...new Set(this.healthy().flatMap((r) => r.verified?.models ?? []))].sort();
  }

  /**
   * The attested replica with the fewest requests in flight that serves `model`, leaving out
   * `exclude` (replicas that already turned this request away).
   * @throws TresorError MODEL_NOT_FOUND (no replica ever served it), REPLICA_UNAVAILABLE (none in rotation does now)
   */
  pick(model: string, exclude: ReadonlySet<Replica> = NO_REPLICAS): Replica & { verified: VerifiedReplica } {
    let best: (Replica & { verified: VerifiedReplica }) | undefined;
    for (const r of this.healthy()) {
      if (exclude.has(r) || !r.verified?.models.includes(model)) continue;
      if (best === undefined || r.outstanding < best.outstanding)
        best = r as Replica & { verified: VerifiedReplica };
    }
    if (best !== undefined) return best;
    if (this.#replicas.some((r) => r.knownModels.includes(model))) {
      throw new TresorError(
        'REPLICA_UNAVAILABLE',
        `no attested serving replica is available for model ${model}`,
      );
    }
    throw new TresorError('MODEL_NOT_FOUND', `no model ${model}; GET /v1/models lists the models`);
  }

  /** Is `model` served by any replica known to the gateway (now or before a failure)? */
  knows(model: string): boolean {
    return this.#replicas.some((r) => r.knownModels.includes(model));
  }

  /** Takes a replica out of rotation at once; it returns only after its evidence verifies again. */
  fail(replica: Replica, code: string): void {
    this.#remove(replica, code);
  }

  /** The replica answered (any HTTP status, 503 busy included): it is there; its failure run ends. */
  answered(replica: Replica): void {
    replica.transportFailures = 0;
  }

  /**
   * A request to the replica failed below HTTP. Gone or untrusted: out at once. Slow or broken:
   * out after `maxTransportFailures` in a row. A stale kept-alive connection says nothing about the
   * replica (the request never reached it; the caller retries on a new connection).
   * @returns whether the replica left the rotation
   */
  transportFailed(replica: Replica, kind: TransportFailure): boolean {
    if (kind === 'stale') return false;
    replica.transportFailures++;
    const limit = this.#options.maxTransportFailures ?? MAX_TRANSPORT_FAILURES;
    if (kind === 'gone' || kind === 'untrusted' || replica.transportFailures >= limit) {
      this.#remove(replica, 'UPSTREAM_FAILED', kind);
      return true;
    }
    this.#options.logger.info(
      { replica: replica.verified?.id, transport: kind, failures: replica.transportFailures },
      'serving replica did not answer a request; still in rotation',
    );
    return false;
  }

  /** Fetches and verifies every replica's evidence with fresh nonces; returns how many are in rotation. */
  async verifyAll(): Promise<number> {
    await Promise.all(this.#replicas.map((r) => this.verify(r)));
    return this.healthy().length;
  }

  /** Fetches and verifies one replica's evidence (a fresh nonce); on any failure it leaves the rotation. */
  async verify(replica: Replica): Promise<void> {
    const nonce = randomBytes(32).toString('hex');
    try {
      const evidence = await this.fetchEvidence(replica, nonce);
      const documents = await this.#options.documents.current();
      const verified = await this.#options.verifier.verify(evidence.json, {
        nonce,
        peerTlsSpkiSha256: evidence.peerSpkiSha256,
        now: this.#options.now(),
        referenceValues: documents.referenceValues,
        inventory: documents.inventory,
        maxAgeMs: this.#options.maxAgeMs,
      });
      const wasOut = replica.verified === undefined;
      replica.verified = verified;
      replica.verifiedAtMs = this.#options.now().getTime();
      replica.lastError = null;
      replica.knownModels = verified.models;
      replica.transportFailures = 0;
      replica.reprobes = 0;
      replica.cancelReprobe?.();
      replica.cancelReprobe = undefined;
      if (wasOut)
        this.#options.logger.info(
          { replica: verified.id, models: verified.models.length },
          'serving replica attested, in rotation',
        );
    } catch (err) {
      this.#remove(replica, isTresorError(err) ? err.code : 'INTERNAL_ERROR');
    }
  }

  /** The replica's evidence for `nonce`, as JSON, and the SPKI hash of the certificate it answered with. */
  async fetchEvidence(replica: Replica, nonce: string): Promise<{ json: unknown; peerSpkiSha256: string }> {
    const answer = await replica.client.send('GET', `${SERVING_ATTESTATION_PATH}?nonce=${nonce}`);
    const bytes = await readBody(answer.body, MAX_EVIDENCE_BYTES);
    if (answer.status !== 200) {
      throw new TresorError(
        'EVIDENCE_UNAVAILABLE',
        `replica ${replica.url} answered HTTP ${answer.status} for its evidence`,
      );
    }
    try {
      return { json: JSON.parse(Buffer.from(bytes).toString('utf8')), peerSpkiSha256: answer.peerSpkiSha256 };
    } catch {
      throw new TresorError(
        'ATTESTATION_EVIDENCE_MALFORMED',
        `replica ${replica.url} answered evidence that is not JSON`,
      );
    }
  }

  /** A renewed mesh identity for every replica's connections. */
  setMesh(tls: MeshTls): void {
    for (const r of this.#replicas) r.client.setTls(tls);
  }

  close(): void {
    this.#closed = true;
    for (const r of this.#replicas) {
      r.cancelReprobe?.();
      r.cancelReprobe = undefined;
      r.client.close();
    }
  }

  #closed = false;

  #remove(replica: Replica, code: string, transport?: TransportFailure): void {
    if (replica.verified !== undefined) {
      this.#options.logger.warn(
        { replica: replica.verified.id, code, ...(transport === undefined ? {} : { transport }) },
        'serving replica taken out of rotation',
      );
    }
    replica.verified = undefined;
    replica.lastError = code;
    replica.transportFailures = 0;
    this.#scheduleReprobe(replica);
  }

  /** Re-probes a replica out of rotation after 250 ms, 500 ms, 1 s, … at most `reprobeMaxMs`. */
  #scheduleReprobe(replica: Replica): void {
    if (this.#closed || replica.cancelReprobe !== undefined) return;
    const base = this.#options.reprobeBaseMs ?? 250;
    const max = this.#options.reprobeMaxMs ?? 30_000;
    const ms = Math.min(max, base * 2 ** Math.min(replica.reprobes, 30));
    replica.reprobes++;
    const delay = this.#options.delay ?? timerDelay;
    replica.cancelReprobe = delay(ms, () => {
      replica.cancelReprobe = undefined;
      if (this.#closed || replica.verified !== undefined) return;
      void this.verify(replica);
    });
  }
}
