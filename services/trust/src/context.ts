import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { KeyStore } from '@tresor/keystore';
import type { AuditEntry } from '@tresor/storage';
import type {
  AttestationService,
  ReferenceValueLookup,
  ResidencyLookup,
} from './attestation-service/attestation-service.js';
import type { AttestedIdentity } from './attestation-service/attested-identity.js';
import type { AttestationTokenService } from './attestation-service/token-service.js';
import type { TrustConfig } from './config.js';
import type { SessionStore } from './kbs/sessions.js';
import type { TeePublicKey } from './kbs/tee-public-key.js';
import type { CedarResourcePolicy } from './resource-policy/resource-policy.js';
import type { ResourceStore } from './resources/resource-store.js';

/** Where the trust service records what it did (the tamper-evident audit log; `AuditLog` fits). */
export interface AuditSink {
  append(entry: AuditEntry): Promise<unknown>;
}

/** What an attested session remembers about its workload. */
export interface SessionAttestation {
  readonly identity: AttestedIdentity;
  readonly teePublicKey: TeePublicKey;
}

/** A caller proven to be an attested workload, by its KBS session or by a bearer attestation token. */
export interface AuthenticatedWorkload extends SessionAttestation {
  readonly token: string;
  readonly via: 'session' | 'bearer';
}

/**
 * What the trust service's parts share. Routes added by plugins (admin API, mesh CA, published
 * documents) reach the keystore, audit log, resources, policies and the attested caller through it.
 */
export interface TrustContext {
  readonly config: TrustConfig;
  readonly keyStore: KeyStore;
  readonly audit: AuditSink;
  readonly resources: ResourceStore;
  readonly resourcePolicy: CedarResourcePolicy;
  readonly tokens: AttestationTokenService;
  readonly attestation: AttestationService;
  readonly sessions: SessionStore<SessionAttestation>;
  /** Absent only in development mode: then no reference values are required. */
  readonly referenceValues: ReferenceValueLookup | undefined;
  /** Absent only in development mode: then residency is not checked. */
  readonly residency: ResidencyLookup | undefined;
  readonly now: () => Date;
  readonly logger: Logger;
  /**
   * The attested workload behind a request: the `kbs-session-id` cookie of an attested, unexpired
   * session, else `Authorization: Bearer <attestation token>` verified against this service's keys.
   *
   * @throws TresorError ATTESTATION_TOKEN_INVALID (none or bad), ATTESTATION_TOKEN_EXPIRED,
   *   KBS_SESSION_UNKNOWN, KBS_SESSION_EXPIRED
   */
  authenticateWorkload(request: FastifyRequest): Promise<AuthenticatedWorkload>;
}

/**
 * A plugin adds routes to the trust service. It runs in its own fastify scope (errors there use
 * Tresor's `{code, message, action}` shape unless the plugin installs another shaper).
 */
export type TrustPlugin = (app: FastifyInstance, context: TrustContext) => Promise<void> | void;
