import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DestinationStream } from 'pino';
import { createNodeVerifiers } from '@tresor/attestation/node';
import { openKeyStore, type KeyStore } from '@tresor/keystore';
import {
  AuditLog,
  SqlAuditRepository,
  SqlUsedRequestIds,
  STATE_DB_FILE,
  keyStoreCheckpointSigner,
  openMetadataDatabase,
  publishAuditPublicKey,
  timerScheduler,
  type SqlClient,
} from '@tresor/storage';
import { TresorError } from '@tresor/protocol';
import type { AppraisalPolicy } from '@tresor/attestation';
import type { AdminKeySet } from '../admin/admin-keys.js';
import { DatabaseReplayGuard, type AdminReplayGuard } from '../admin/replay-guard.js';
import { RESOURCE_POLICY_TYPE } from '../admin/resource-operations.js';
import { ATTESTATION_POLICY_TYPE, checkAttestationPolicy } from '../policies/attestation-policy.js';
import { SignedPolicyFile } from '../policies/signed-policy-file.js';
import { CedarResourcePolicy } from '../resource-policy/resource-policy.js';
import { adminPlugin } from '../admin/admin-plugin.js';
import { buildTrustApp, type TrustApp } from '../app.js';
import type { TrustPlugin } from '../context.js';
import { openApiPlugin } from '../openapi/openapi-plugin.js';
import { keyStoreTokenSigner } from '../attestation-service/token-signer.js';
import { InventoryStore } from '../inventory/inventory-store.js';
import { keyStoreCaSigner } from '../mesh-ca/ca-signer.js';
import { MeshCa } from '../mesh-ca/mesh-ca.js';
import { meshCaPlugin } from '../mesh-ca/mesh-plugin.js';
import { ReferenceValueStore } from '../reference-values/reference-value-store.js';
import { FileResourceRepository } from '../resources/resource-repository.js';
import { ResourceStore } from '../resources/resource-store.js';
import { FileDocumentRepository } from '../signed-documents/document-repository.js';
import { keyStoreDocumentSigner } from '../signed-documents/document-signer.js';
import { documentPlugin } from '../signed-documents/document-plugin.js';
import type { DeploymentConfig } from './deployment-config.js';

export const REFERENCE_VALUES_FILE = 'reference-values.jws';
export const RESIDENCY_INVENTORY_FILE = 'residency-inventory.jws';
export const RESOURCES_DIR = 'kbs';
export const RESOURCE_POLICY_FILE = 'resource-policy.jws';
export const ATTESTATION_POLICY_FILE = 'attestation-policy.jws';

export interface StartTrustServiceOptions {
  /** Where the keystore passphrase / PIN variables are read from. */
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly now?: () => Date;
  readonly logDestination?: DestinationStream;
}

export interface RunningTrustService {
  readonly app: TrustApp;
  readonly referenceValues: ReferenceValueStore;
  readonly inventory: InventoryStore;
  readonly meshCa: MeshCa;
  readonly audit: AuditLog;
  /** The https URL it listens on. */
  readonly url: string;
  close(): Promise<void>;
}

export interface TrustPluginParts {
  readonly referenceValues: ReferenceValueStore;
  readonly inventory: InventoryStore;
  readonly meshCa: MeshCa;
  readonly adminKeys: AdminKeySet;
  readonly adminRequestWindowSeconds: number;
  /** Where accepted admin request ids are remembered (the metadata database); default memory. */
  readonly adminReplay?: AdminReplayGuard;
  readonly policyFiles?: {
    readonly resource: SignedPolicyFile<string>;
    readonly attestation: SignedPolicyFile<AppraisalPolicy>;
  };
}

/**
 * The routes this deployment adds to the key broker: published documents, mesh CA, signed admin
 * API and the OpenAPI description (which a test checks against every route registered here).
 */
export function trustPlugins(parts: TrustPluginParts): readonly TrustPlugin[] {
  return [
    documentPlugin(parts.referenceValues, parts.inventory),
    meshCaPlugin(parts.meshCa),
    adminPlugin({
      keys: parts.adminKeys,
      requestWindowSeconds: parts.adminRequestWindowSeconds,
      referenceValues: parts.referenceValues,
      inventory: parts.inventory,
      ...(parts.adminReplay === undefined ? {} : { replay: parts.adminReplay }),
      ...(parts.policyFiles === undefined ? {} : { policyFiles: parts.policyFiles }),
    }),
    openApiPlugin(),
  ];
}

/**
 * Opens everything a deployment config names (keystore, state directory, audit log, documents,
 * resources, mesh CA), builds the trust service with the admin API, the mesh CA and the published
 * documents, and starts listening. Whatever was opened is closed again when a step fails.
 */
export async function startTrustService(
  config: DeploymentConfig,
  options: StartTrustServiceOptions,
): Promise<RunningTrustService> {
  const now = options.now ?? (() => new Date());
  const clock = { now };
  const cleanup: (() => Promise<unknown>)[] = [];
  const closeAll = async (): Promise<void> => {
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  };
  try {
    await mkdir(config.stateDir, { recursive: true, mode: 0o700 }).catch((cause: unknown) => {
      throw new TresorError('STORAGE_UNAVAILABLE', `cannot create the state directory ${config.stateDir}`, {
        cause,
      });
    });
    const keyStore: KeyStore = await openKeyStore(config.keystore, {
      env: options.env,
      mode: config.service.mode,
    });
    cleanup.push(() => keyStore.close());

    // SQLite on a worker thread: audit appends (each release waits for its record to be durable)
    // must not block the event loop in the commit fsync. PostgreSQL when replicas share the log
    // and the used admin request ids.
    const db: SqlClient = await openMetadataDatabase(
      config.database === undefined
        ? { kind: 'sqlite', file: join(config.stateDir, STATE_DB_FILE), thread: 'worker' }
        : { kind: 'postgres', ...config.database },
    );
    cleanup.push(() => db.close());
    const checkpointSigner = await keyStoreCheckpointSigner(keyStore, config.keys.auditCheckpoint);
    publishAuditPublicKey(config.stateDir, checkpointSigner.publicJwk);
    const audit = new AuditLog(new SqlAuditRepository(db), { signer: checkpointSigner, clock });

    const documentSigner = await keyStoreDocumentSigner(keyStore, config.keys.documentSigning);
    const documents = { signer: documentSigner, issuer: config.service.issuer, clock };
    const referenceValues = await ReferenceValueStore.open({
      ...documents,
      repository: new FileDocumentRepository(join(config.stateDir, REFERENCE_VALUES_FILE)),
    });
    const inventory = await InventoryStore.open({
      ...documents,
      repository: new FileDocumentRepository(join(config.stateDir, RESIDENCY_INVENTORY_FILE)),
      jurisdiction: config.residency.jurisdiction,
    });
    // Policies set through the admin API, signed by the document key; the configuration's apply
    // until an admin sets one.
    const policyFiles = {
      resource: await SignedPolicyFile.open<string>({
        ...documents,
        typ: RESOURCE_POLICY_TYPE,
        name: 'resource policy',
        repository: new FileDocumentRepository(join(config.stateDir, RESOURCE_POLICY_FILE)),
        parse: (value) => {
          if (typeof value !== 'string') {
            throw new TresorError('SIGNED_DOCUMENT_INVALID', 'the stored resource policy is not Cedar text');
          }
          CedarResourcePolicy.check(value);
          return value;
        },
        toJson: (text) => text,
      }),
      attestation: await SignedPolicyFile.open<AppraisalPolicy>({
        ...documents,
        typ: ATTESTATION_POLICY_TYPE,
        name: 'attestation policy',
        repository: new FileDocumentRepository(join(config.stateDir, ATTESTATION_POLICY_FILE)),
        parse: (value) => checkAttestationPolicy(value, config.service.mode, 'CONFIG_INVALID'),
        toJson: (policy) => policy,
      }),
    };
    const resources = await ResourceStore.open({
      keyStore,
      kekId: config.keys.resourceKek,
      repository: new FileResourceRepository(join(config.stateDir, RESOURCES_DIR)),
    });
    const meshCa = await MeshCa.open({
      signer: await keyStoreCaSigner(keyStore, config.keys.meshCa),
      policy: {
        requireReleased: (workload, component) => referenceValues.requireReleased(workload, component),
        requireResident: (ids) => inventory.requireResident(ids),
      },
      audit,
      clock,
      trustDomain: config.meshCa.trustDomain,
      certificateLifetimeSeconds: config.meshCa.certificateLifetimeSeconds,
    });
    const tokenSigners = await Promise.all(
      config.keys.tokenSigning.map((id) => keyStoreTokenSigner(keyStore, id)),
    );
    const app = await buildTrustApp(config.service, {
      keyStore,
      audit,
      resources,
      tokenSigners,
      ...(config.enforce.referenceValues ? { referenceValues } : {}),
      ...(config.enforce.residency ? { residency: inventory } : {}),
      // Signatures (SNP, TDX, NVIDIA chains) checked by node:crypto on this thread, caches kept.
      verifiers: createNodeVerifiers(),
      ...(policyFiles.attestation.stored === undefined
        ? {}
        : { attestationPolicy: policyFiles.attestation.stored.body }),
      ...(policyFiles.resource.stored === undefined
        ? {}
        : { resourcePolicy: policyFiles.resource.stored.body }),
      now,
      ...(options.logDestination === undefined ? {} : { logDestination: options.logDestination }),
      plugins: trustPlugins({
        referenceValues,
        inventory,
        meshCa,
        adminKeys: config.admin.keys,
        adminRequestWindowSeconds: config.admin.requestWindowSeconds,
        adminReplay: new DatabaseReplayGuard(new SqlUsedRequestIds(db)),
        policyFiles,
      }),
    });
    cleanup.push(() => app.close());
    const stopCheckpoints = audit.scheduleCheckpoints(timerScheduler, (err) => {
      app.server.logger.error(
        { code: err instanceof TresorError ? err.code : 'INTERNAL_ERROR' },
        'audit checkpoint failed',
      );
    });
    cleanup.push(() => {
      stopCheckpoints();
      return Promise.resolve();
    });
    const url = await app.listen();
    return { app, referenceValues, inventory, meshCa, audit, url, close: closeAll };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
