import { createHash, randomBytes, X509Certificate } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import type { Server as TlsServer } from 'node:tls';
import type { DestinationStream } from 'pino';
import { Counter } from 'prom-client';
import type { ComponentEvidence, LoadedModelDigest } from '@tresor/protocol';
import { isTresorError, TresorError } from '@tresor/protocol';
import { createServer, TokenBucket, type TresorServer } from '@tresor/server-kit';
import { httpsTransport, KbsClient, meshSpiffeId, type KbsTransport } from '@tresor/trust';
import { parseServingConfig, type ServingConfig, type ServingConfigInput } from './config.js';
import type { Engine } from './engine/engine.js';
import { defaultEngineFactory, type EngineFactory, type EngineModelFile } from './engine-factory.js';
import { isSupervisedEngine, type UpstreamEvent } from './engines/upstream-process.js';
import { registerAttestationRoute } from './evidence/attestation-route.js';
import { evidenceAttester, type EvidenceSource } from './evidence/evidence-source.js';
import { gpuEvidenceSourceOf } from './evidence/gpu-command-source.js';
import { requiredGpuEvidence, type GpuEvidenceSource } from './evidence/gpu-evidence.js';
import { openEvidenceSource } from './evidence/open-evidence-source.js';
import { ReplicaEvidence } from './evidence/replica-evidence.js';
import { PrivateWorkDir } from './models/work-dir.js';
import {
  checkAllowedDigest,
  configuredModels,
  unsealModel,
  type UnsealedModel,
} from './models/sealed-models.js';
import { ConcurrencyLimiter } from './request/concurrency.js';
import { registerOhttpRoute, type ServingRuntime } from './request/ohttp-route.js';
import { ReceiptSigner } from './request/receipts.js';
import { requestMeshCertificate, type MeshCertificate } from './startup/mesh-certificate.js';
import { releaseModelKey, releaseModelKeyRetrying, tokenRelease } from './startup/model-keys.js';
import { allowedModelDigests } from './startup/reference-models.js';
import { generateReplicaKeys, selfSignedCertificate } from './startup/replica-keys.js';
import { trustGet } from './startup/trust-http.js';

/** What the start-up sequence is doing, as /readyz and logs name it. */
export type StartupStep =
  | 'evidence'
  | 'gpu'
  | 'model-keys'
  | 'models'
  | 'engine'
  | 'mesh-certificate'
  | 'ready'
  | 'restarting'
  | 'failed'
  | 'closed';

export interface ServingDependencies {
  /** Builds the engine from the decrypted models; by `engine.kind` when omitted. */
  readonly engineFactory?: EngineFactory;
  /** Replaces the evidence source the configuration names (tests: a fake configfs-tsm tree). */
  readonly evidenceSource?: EvidenceSource;
  /** NVIDIA GPU evidence; none by default. */
  readonly gpu?: GpuEvidenceSource;
  /** Replaces the HTTPS transport to the trust service. */
  readonly trustTransport?: KbsTransport;
  readonly logDestination?: DestinationStream;
  readonly now?: () => Date;
}

export interface RunningServingService {
  /** The https URL it listens on. */
  readonly url: string;
  readonly replicaId: string;
  /** The private folder decrypted models pass through. */
  readonly workDir: string;
  /** Resolves once ready; rejects with the reason it will not become ready (also answered at /readyz). */
  readonly ready: Promise<void>;
  /** Where start-up stands. */
  step(): StartupStep;
  /** The certificate it serves with (PEM): self-signed until the mesh CA certified its key. */
  certificatePem(): string;
  close(): Promise<void>;
}

/** How each supervisor event of a started upstream is logged (codes and counts, never output). */
const UPSTREAM_EVENT_LOG: Record<
  UpstreamEvent['kind'],
  { readonly level: 'info' | 'warn' | 'error'; readonly message: string }
> = {
  exited: { level: 'error', message: 'the upstream engine process exited' },
  'probe-failed': { level: 'warn', message: 'the upstream engine did not answer its health probe' },
  restarting: { level: 'warn', message: 'restarting the upstream engine process' },
  'restart-failed': { level: 'warn', message: 'the upstream engine restart failed' },
  restarted: { level: 'info', message: 'the upstream engine process is serving again' },
  'gave-up': {
    level: 'error',
    message:
      'the upstream engine kept failing; gave up restarting it: this replica stays not-ready until it is restarted',
  },
};

/** Renew a mesh certificate when this much of its lifetime is left. */
const RENEW_AT_REMAINING = 1 / 3;
const RENEW_RETRY_MS = 60_000;

function replicaIdOf(config: ServingConfig): string {
  return config.replicaId ?? `serving-${randomBytes(3).toString('hex')}`;
}

/**
 * Starts a serving replica: listens at once (so /healthz, /readyz and /attestation answer while it
 * starts), then in the background — evidence, GPU policy, model keys through the KBS protocol,
 * decryption, engine, mesh certificate — and becomes ready, or stays not-ready with the specific
 * refusal. It never falls back: no evidence, no key, no plaintext.
 */
export async function startServingService(
  input: ServingConfig | ServingConfigInput,
  deps: ServingDependencies = {},
): Promise<RunningServingService> {
  const config = Object.isFrozen(input) ? (input as ServingConfig) : parseServingConfig(input);
  const now = deps.now ?? (() => new Date());
  const replicaId = replicaIdOf(config);
  const workDir = await PrivateWorkDir.open(config.workDir);
  const keys = await generateReplicaKeys();

  let certificatePem: string;
  let keyPem: string;
  let tlsSpkiSha256: string;
  if (config.tls.source === 'files') {
    [certificatePem, keyPem] = await Promise.all([
      readFile(config.tls.certFile, 'utf8'),
      readFile(config.tls.keyFile, 'utf8'),
    ]).catch((cause: unknown) => {
      throw new TresorError('CONFIG_INVALID', 'cannot read tls.certFile or tls.keyFile', { cause });
    });
    const spki = new X509Certificate(certificatePem).publicKey.export({ type: 'spki', format: 'der' });
    tlsSpkiSha256 = createHash('sha256').update(spki).digest('hex');
  } else {
    certificatePem = await selfSignedCertificate(keys.tls, replicaId);
    keyPem = keys.tlsKeyPem;
    tlsSpkiSha256 = keys.tlsSpkiSha256;
  }
  const mtls = config.mtls.required;
  let clientCaPem = mtls
    ? config.mtls.clientCaFile === undefined
      ? // Until the mesh CA is known, only this replica's own self-signed certificate is trusted:
        // no peer holds a certificate it issued, so nobody gets in.
        await selfSignedCertificate(keys.tls, `${replicaId} (no peers yet)`)
      : await readFile(config.mtls.clientCaFile, 'utf8').catch((cause: unknown) => {
          throw new TresorError('CONFIG_INVALID', `cannot read mtls.clientCaFile`, { cause });
        })
    : undefined;
  const allowedPeers = mtls
    ? new Set(
        config.mtls.allowedPeers ?? [
          meshSpiffeId({ trustDomain: config.mtls.trustDomain, component: 'gateway', tenant: null }),
        ],
      )
    : null;

  const server: TresorServer = createServer({
    service: 'serving',
    config: {
      host: config.listen.host,
      port: config.listen.port,
      tls: {
        cert: certificatePem,
        key: keyPem,
        ...(clientCaPem === undefined ? {} : { clientCa: clientCaPem }),
        requireClientCert: false,
      },
      // Sealed requests are at most a few MiB; /v1/ohttp sets its own limit.
      limits: { bodyBytes: 1024 * 1024, requestTimeoutMs: 600_000 },
      shutdownGraceMs: config.shutdownGraceMs,
      logLevel: config.logLevel,
    },
    ...(deps.logDestination === undefined ? {} : { logDestination: deps.logDestination }),
  });
  const log = server.logger;

  let step: StartupStep = 'evidence';
  let failure: TresorError | undefined;
  let runtime: ServingRuntime | undefined;
  let engine: Engine | undefined;
  let bootEvidence: ComponentEvidence | undefined;
  let bootEvidenceSha256 = '';
  const loaded: LoadedModelDigest[] = [];
  const startup = new AbortController();
  let renewTimer: NodeJS.Timeout | undefined;
  let transport: KbsTransport | undefined;
  let kbs: KbsClient | undefined;

  const notReady = (): TresorError =>
    failure ??
    new TresorError('SERVICE_NOT_READY', `serving is starting (step: ${step})`, { details: { step } });
  const runtimeOrRefuse = (): ServingRuntime => {
    if (runtime === undefined || step !== 'ready') throw notReady();
    return runtime;
  };

  const setSecureContext = (cert: string, ca: string | undefined): void => {
    certificatePem = cert;
    (server.app.server as unknown as TlsServer).setSecureContext({
      cert,
      key: keyPem,
      minVersion: 'TLSv1.3',
      ...(ca === undefined ? {} : { ca }),
    });
  };

  // /readyz answers the specific refusal (MODEL_KEY_NOT_RELEASED with the trust service's code,
  // EVIDENCE_UNAVAILABLE, GPU_CC_REQUIRED, …) instead of a bare "not ready".
  server.app.addHook('onRequest', (request, reply, done) => {
    const refused = request.url.split('?')[0] === '/readyz' && step !== 'ready' ? notReady() : undefined;
    const retryAfter = refused?.details?.retryAfterSeconds;
    // While the engine process is being restarted: when to ask again.
    if (typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
    done(refused);
  });
  server.addReadinessCheck('startup', () => {
    runtimeOrRefuse();
    return Promise.resolve();
  });

  let evidence: ReplicaEvidence | undefined;
  registerAttestationRoute(server.app, {
    produce: (nonce) => {
      if (evidence === undefined) throw notReady();
      return evidence.produce(nonce);
    },
    boot: () => bootEvidence,
    // Wall-clock time, not the injected `now`: tests that fix `now` still see the bucket refill.
    bucket: new TokenBucket(config.attestationRatePerSecond, () => Date.now()),
  });
  const limiter = new ConcurrencyLimiter(config.concurrency.maxConcurrent, config.concurrency.maxQueue);
  registerOhttpRoute(server.app, {
    keys: keys.ohttpKeys,
    runtime: runtimeOrRefuse,
    limiter,
    retryAfterSeconds: config.concurrency.retryAfterSeconds,
    receipts: new ReceiptSigner(keys.receiptSigningKey, now),
    evidenceSha256: () => bootEvidenceSha256,
    replicaId,
    allowedPeers,
  });

  // Content-free: counts only (docs/serving.md, "Engine supervision").
  const engineExits = new Counter({
    name: 'serving_engine_exits_total',
    help: 'Exits of the supervised upstream engine process after it was serving (crash, kill, failed health probes).',
    registers: [server.metrics.registry],
  });
  const engineRestarts = new Counter({
    name: 'serving_engine_restarts_total',
    help: 'Restarts of the supervised upstream engine process that got it serving again.',
    registers: [server.metrics.registry],
  });
  const logUpstreamEvent = (event: UpstreamEvent): void => {
    if (event.kind === 'exited') engineExits.inc();
    if (event.kind === 'restarted') engineRestarts.inc();
    const { kind, ...fields } = event;
    const { level, message } = UPSTREAM_EVENT_LOG[kind];
    log[level]({ event: kind, ...fields }, message);
  };

  const url = await server.listen().catch(async (err: unknown) => {
    await workDir.close();
    throw err;
  });

  const checkOpen = (): void => {
    if (startup.signal.aborted)
      throw new TresorError('SERVICE_NOT_READY', 'serving was closed while starting');
  };

  /** Renews the mesh certificate when a third of its lifetime is left; retries each minute on failure. */
  function scheduleMeshRenewal(
    mesh: MeshCertificate,
    attester: Parameters<typeof requestMeshCertificate>[0]['attester'],
  ): void {
    const schedule = (certificate: MeshCertificate): void => {
      const lifetime = certificate.notAfter.getTime() - now().getTime();
      renewTimer = setTimeout(() => void renew(), Math.max(1_000, lifetime * (1 - RENEW_AT_REMAINING)));
      renewTimer.unref();
    };
    const renew = async (): Promise<void> => {
      if (transport === undefined || startup.signal.aborted) return;
      try {
        const next = await requestMeshCertificate({
          transport,
          attester,
          tlsKeys: keys.tls,
          component: 'serving',
        });
        setSecureContext(next.certificatePem, clientCaPem);
        schedule(next);
      } catch (err) {
        log.warn(
          { code: isTresorError(err) ? err.code : 'INTERNAL_ERROR' },
          'mesh certificate renewal failed; retrying',
        );
        renewTimer = setTimeout(() => void renew(), RENEW_RETRY_MS);
        renewTimer.unref();
      }
    };
    schedule(mesh);
  }

  async function start(): Promise<void> {
    const source = deps.evidenceSource ?? (await openEvidenceSource(config));
    checkOpen();
    const gpu = deps.gpu ?? gpuEvidenceSourceOf(config.gpu);
    evidence = new ReplicaEvidence(
      source,
      gpu,
      {
        replicaId,
        hpkeKeyConfig: keys.hpkeKeyConfig,
        tlsSpkiSha256,
        receiptKey: keys.receiptKey,
        models: () => loaded,
      },
      now,
    );

    step = 'gpu';
    // Production with requireGpu refuses a replica without a CC-mode GPU; there is no CPU-only fallback.
    const gpuRequired = config.gpu.requireGpu;
    const gpuEvidence = await requiredGpuEvidence(gpu, randomBytes(32).toString('hex'), gpuRequired);
    const attester = evidenceAttester(source, gpuEvidence === null ? undefined : gpu);

    step = 'model-keys';
    const trustCa =
      config.trust.caFile === undefined
        ? undefined
        : await readFile(config.trust.caFile, 'utf8').catch((cause: unknown) => {
            throw new TresorError('CONFIG_INVALID', 'cannot read trust.caFile', { cause });
          });
    transport =
      deps.trustTransport ?? httpsTransport(config.trust.url, trustCa === undefined ? {} : { ca: trustCa });
    kbs = new KbsClient({ url: config.trust.url, attester, transport });
    const refs = await configuredModels(config);
    const kbsClient = kbs;
    const trustTransport = transport;
    // A restarted engine process gets its model the way start-up did: key released again by the
    // trust service (KBS session, re-attested when expired), reference values fetched and checked
    // again, unsealed into the private work folder. One attempt: the engine supervisor backs off.
    const reloadModel = async (id: string, signal: AbortSignal): Promise<EngineModelFile> => {
      const ref = refs.find((r) => r.id === id);
      if (ref === undefined) throw new TresorError('MODEL_NOT_FOUND', `model ${id} is not configured`);
      const rawKey = await releaseModelKey(kbsClient, ref.id, ref.key);
      try {
        const allowed = await allowedModelDigests(trustTransport, tokenRelease(kbsClient.token ?? ''));
        await checkAllowedDigest(ref, allowed);
      } catch (err) {
        rawKey.fill(0);
        throw err;
      }
      const model = await unsealModel(ref, rawKey, workDir.path, AbortSignal.any([signal, startup.signal]));
      return { id: model.id, path: model.path, sha256: model.sha256 };
    };
    const unsealed: UnsealedModel[] = [];
    try {
      let allowed: ReadonlySet<string> | undefined;
      for (const ref of refs) {
        checkOpen();
        step = 'model-keys';
        // A trust service that is down or restarting is asked again (bounded backoff); meanwhile
        // /readyz answers MODEL_KEY_NOT_RELEASED naming TRUST_SERVICE_UNREACHABLE.
        const rawKey = await releaseModelKeyRetrying(kbs, ref.id, ref.key, {
          signal: startup.signal,
          onRetry: (error, delayMs) => {
            failure = error;
            log.warn(
              { code: error.code, refusal: error.details?.refusal, delayMs },
              'model key not released; retrying',
            );
          },
        });
        failure = undefined;
        try {
          allowed ??= await allowedModelDigests(transport, tokenRelease(kbs.token ?? ''));
          await checkAllowedDigest(ref, allowed);
        } catch (err) {
          rawKey.fill(0);
          throw err;
        }
        step = 'models';
        unsealed.push(await unsealModel(ref, rawKey, workDir.path, startup.signal));
      }
      checkOpen();
      step = 'engine';
      engine = await (deps.engineFactory ?? defaultEngineFactory)(
        unsealed.map((m) => ({ id: m.id, path: m.path, sha256: m.sha256 })),
        config.engine,
        { reloadModel, onUpstreamEvent: logUpstreamEvent },
      ).catch((cause: unknown) => {
        if (isTresorError(cause)) throw cause;
        throw new TresorError('MODEL_LOAD_FAILED', 'the engine could not load the decrypted models', {
          cause,
        });
      });
    } finally {
      // Loaded (llama.cpp maps the file; the mapping outlives the name) or failed: either way the
      // plaintext leaves the file system now.
      await Promise.all(unsealed.map((m) => unlink(m.path).catch(() => undefined)));
    }
    for (const m of unsealed) loaded.push({ id: m.id, sha256: m.sha256 });

    step = 'mesh-certificate';
    if (config.tls.source === 'mesh') {
      const mesh = await requestMeshCertificate({
        transport,
        attester,
        tlsKeys: keys.tls,
        component: 'serving',
      });
      if (mtls && config.mtls.clientCaFile === undefined) clientCaPem = mesh.caCertificatePem;
      setSecureContext(mesh.certificatePem, clientCaPem);
      scheduleMeshRenewal(mesh, attester);
    } else if (mtls && config.mtls.clientCaFile === undefined) {
      clientCaPem = new TextDecoder().decode(
        (await trustGet(transport, '/mesh/v0/ca', 'application/pem-certificate-chain')).body,
      );
      setSecureContext(certificatePem, clientCaPem);
    }
    checkOpen();

    // The boot evidence names the loaded models; receipts name its hash.
    bootEvidence = await evidence.produce(randomBytes(32).toString('hex'));
    bootEvidenceSha256 = createHash('sha256')
      .update(Buffer.from(bootEvidence.evidence, 'base64'))
      .digest('hex');
    const readyEngine = engine;
    const digests = new Map(loaded.map((m) => [m.id, m.sha256]));
    runtime = { engine: readyEngine, modelSha256: (model) => digests.get(model) };
    step = 'ready';
    if (isSupervisedEngine(readyEngine)) {
      // An engine process that dies takes the replica out of service while it is restarted
      // (not-ready, ENGINE_UNAVAILABLE with Retry-After), and for good once the supervisor gives up.
      const readyRuntime = runtime;
      readyEngine.onStateChange((state, error) => {
        if (step !== 'ready' && step !== 'restarting') return;
        if (state === 'serving') {
          failure = undefined;
          runtime = readyRuntime;
          step = 'ready';
          return;
        }
        failure = error ?? new TresorError('ENGINE_UNAVAILABLE', 'the engine is not serving');
        runtime = undefined;
        step = state === 'failed' ? 'failed' : 'restarting';
      });
    }
    log.info(
      { replica: replicaId, models: loaded.length, tee: source.tee, engine: readyEngine.kind },
      'serving ready',
    );
  }

  const ready = start().catch(async (err: unknown) => {
    const error = isTresorError(err)
      ? err
      : new TresorError('INTERNAL_ERROR', 'serving start-up failed unexpectedly', { cause: err });
    failure = error;
    if (step !== 'closed') step = 'failed';
    log.warn({ code: error.code, refusal: error.details?.refusal }, 'serving is not ready');
    await engine?.close().catch(() => undefined);
    engine = undefined;
    await workDir.wipe();
    throw error;
  });
  ready.catch(() => undefined);

  let closing: Promise<void> | undefined;
  return {
    url,
    replicaId,
    workDir: workDir.path,
    ready,
    step: () => step,
    certificatePem: () => certificatePem,
    close() {
      closing ??= (async () => {
        startup.abort();
        if (renewTimer !== undefined) clearTimeout(renewTimer);
        await server.close();
        await ready.catch(() => undefined);
        step = 'closed';
        runtime = undefined;
        await engine?.close().catch(() => undefined);
        kbs?.close();
        if (deps.trustTransport === undefined) transport?.close();
        await workDir.close();
      })();
      return closing;
    },
  };
}
