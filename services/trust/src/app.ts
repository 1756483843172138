import type { DestinationStream } from 'pino';
import { TresorError } from '@tresor/protocol';
import { SampleVerifyKey, type AppraisalPolicy, type VerifierSet } from '@tresor/attestation';
import type { KeyStore } from '@tresor/keystore';
import { createServer, type TresorServer } from '@tresor/server-kit';
import {
  AttestationService,
  type ReferenceValueLookup,
  type ResidencyLookup,
} from './attestation-service/attestation-service.js';
import type { EndorsementProvider } from './attestation-service/tee-evidence.js';
import type { TokenSigner } from './attestation-service/token-signer.js';
import { AttestationTokenService } from './attestation-service/token-service.js';
import { parseTrustConfig, type TrustConfig, type TrustConfigInput } from './config.js';
import type { AuditSink, SessionAttestation, TrustContext, TrustPlugin } from './context.js';
import { KBS_PREFIX } from './kbs/protocol.js';
import { registerKbsRoutes } from './kbs/routes.js';
import { SessionStore } from './kbs/sessions.js';
import { authenticateWorkload } from './kbs/workload-authentication.js';
import { CedarResourcePolicy } from './resource-policy/resource-policy.js';
import type { ResourceStore } from './resources/resource-store.js';

/** Where the trust service publishes its token-signing keys (RFC 8615 well-known location). */
export const JWKS_PATH = '/.well-known/jwks.json';

export interface TrustDependencies {
  readonly keyStore: KeyStore;
  readonly audit: AuditSink;
  readonly resources: ResourceStore;
  /** Token-signing keys; the first signs, all are published (rotation). */
  readonly tokenSigners: readonly TokenSigner[];
  /** Required in production mode. */
  readonly referenceValues?: ReferenceValueLookup;
  /** Required in production mode. */
  readonly residency?: ResidencyLookup;
  /** TDX collateral, SNP certificates the evidence does not carry. */
  readonly endorsements?: EndorsementProvider;
  readonly verifiers?: VerifierSet;
  /** The appraisal policy in force when it was set through the admin API (stored); else the configuration's. */
  readonly attestationPolicy?: AppraisalPolicy;
  /** The Cedar resource policy in force when it was set through the admin API (stored); else the configuration's. */
  readonly resourcePolicy?: string;
  /** The clock (tests fix it to a recorded evidence's `verify_at`). */
  readonly now?: () => Date;
  readonly logDestination?: DestinationStream;
  /** More routes (admin API, mesh CA, published documents), each in its own scope. */
  readonly plugins?: readonly TrustPlugin[];
}

export interface TrustApp {
  readonly server: TresorServer;
  readonly context: TrustContext;
  /** Starts listening; resolves with the https URL. */
  listen(): Promise<string>;
  close(): Promise<void>;
}

function sampleVerifyKey(config: TrustConfig): SampleVerifyKey | undefined {
  const text = config.attestation.sampleVerifyKey;
  if (text === undefined) return undefined;
  try {
    return SampleVerifyKey.parse(text);
  } catch (cause) {
    throw new TresorError(
      'CONFIG_INVALID',
      'trust configuration field attestation.sampleVerifyKey: an Ed25519 JWK or 64 hex digits',
      { cause },
    );
  }
}

/**
 * Builds the trust service: a server-kit server with the KBS routes (Trustee-compatible key broker
 * and attestation service), the JWKS of the token-signing keys, and the routes plugins add.
 *
 * @throws TresorError CONFIG_INVALID (configuration, or production mode without reference values
 *   or residency inventory), RESOURCE_POLICY_INVALID (the configured resource policy)
 */
export async function buildTrustApp(
  configInput: TrustConfig | TrustConfigInput,
  dependencies: TrustDependencies,
): Promise<TrustApp> {
  const config = parseTrustConfig(configInput);
  if (
    config.mode === 'production' &&
    (dependencies.referenceValues === undefined || dependencies.residency === undefined)
  ) {
    throw new TresorError(
      'CONFIG_INVALID',
      'production mode needs the reference values and the residency inventory',
    );
  }
  const now = dependencies.now ?? (() => new Date());
  const server = createServer({
    service: 'trust',
    config: config.server,
    ...(dependencies.logDestination === undefined ? {} : { logDestination: dependencies.logDestination }),
    readiness: {
      keystore: async () => {
        await dependencies.keyStore.list();
      },
    },
  });
  const tokens = new AttestationTokenService({
    signers: dependencies.tokenSigners,
    issuer: config.issuer,
    lifetimeSeconds: config.tokens.lifetimeSeconds,
    now,
  });
  const sessions = new SessionStore<SessionAttestation>({
    ttlSeconds: config.kbs.sessionTtlSeconds,
    maxSessions: config.kbs.maxSessions,
    now,
  });
  const verifyKey = sampleVerifyKey(config);
  const attestation = new AttestationService({
    policy: dependencies.attestationPolicy ?? config.attestation.policy,
    tokens,
    acceptUnsignedSample: config.attestation.acceptUnsignedSample,
    ...(verifyKey === undefined ? {} : { sampleVerifyKey: verifyKey }),
    ...(dependencies.referenceValues === undefined ? {} : { referenceValues: dependencies.referenceValues }),
    ...(dependencies.residency === undefined ? {} : { residency: dependencies.residency }),
    ...(dependencies.endorsements === undefined ? {} : { endorsements: dependencies.endorsements }),
    ...(dependencies.verifiers === undefined ? {} : { verifiers: dependencies.verifiers }),
  });
  const resourcePolicy = new CedarResourcePolicy(dependencies.resourcePolicy ?? config.resourcePolicy);
  const context: TrustContext = {
    config,
    keyStore: dependencies.keyStore,
    audit: dependencies.audit,
    resources: dependencies.resources,
    resourcePolicy,
    tokens,
    attestation,
    sessions,
    referenceValues: dependencies.referenceValues,
    residency: dependencies.residency,
    now,
    logger: server.logger,
    authenticateWorkload: (request) => authenticateWorkload(request, sessions, tokens, now),
  };

  const { app } = server;
  app.get(JWKS_PATH, (_request, reply) =>
    reply.header('cache-control', 'public, max-age=300').type('application/json').send(tokens.jwks()),
  );
  await app.register(
    (scope, _options, done) => {
      registerKbsRoutes(scope, {
        sessions,
        attestation,
        audit: dependencies.audit,
        resources: dependencies.resources,
        policy: resourcePolicy,
        residency: dependencies.residency,
        authBodyBytes: config.kbs.authBodyBytes,
        attestBodyBytes: config.kbs.attestBodyBytes,
        now,
        authenticate: (request) => context.authenticateWorkload(request),
      });
      done();
    },
    { prefix: KBS_PREFIX },
  );
  for (const plugin of dependencies.plugins ?? []) {
    await app.register(async (scope) => {
      await plugin(scope, context);
    });
  }
  return { server, context, listen: () => server.listen(), close: () => server.close() };
}
