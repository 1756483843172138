import type { AppraisalPolicy } from '@tresor/attestation';
import type { TrustPlugin } from '../context.js';
import { attestationPolicyOperations } from '../policies/attestation-policy.js';
import type { SignedPolicyFile } from '../policies/signed-policy-file.js';
import { inventoryOperations } from '../inventory/admin-operations.js';
import type { InventoryStore } from '../inventory/inventory-store.js';
import { referenceValueOperations } from '../reference-values/admin-operations.js';
import type { ReferenceValueStore } from '../reference-values/reference-value-store.js';
import type { AdminKeySet } from './admin-keys.js';
import { ADMIN_PREFIX, adminRoutes } from './admin-routes.js';
import { ReplayGuard, type AdminReplayGuard } from './replay-guard.js';
import { resourceOperations, resourcePolicyOperations } from './resource-operations.js';

export interface AdminPluginOptions {
  readonly keys: AdminKeySet;
  /** How far a request's `iat` may lie from now; default 300 s. */
  readonly requestWindowSeconds?: number;
  readonly referenceValues: ReferenceValueStore;
  readonly inventory: InventoryStore;
  /** Where accepted request ids are remembered; default: this process's memory (gone at a restart). */
  readonly replay?: AdminReplayGuard;
  /** Where policies set through the API are stored (signed) so they survive restarts; else memory only. */
  readonly policyFiles?: {
    readonly resource: SignedPolicyFile<string>;
    readonly attestation: SignedPolicyFile<AppraisalPolicy>;
  };
}

export const DEFAULT_ADMIN_WINDOW_SECONDS = 300;

/**
 * The signed admin API (`/admin/v0/…`): reference values, residency inventory, resources, the
 * resource policy and the attestation policy, each change signed by a configured admin key, used once, and audited. The
 * audience of admin requests is the service's issuer name.
 */
export function adminPlugin(options: AdminPluginOptions): TrustPlugin {
  return async (app, context) => {
    const startedAt = context.now();
    await app.register(adminRoutes, {
      prefix: ADMIN_PREFIX,
      keys: options.keys,
      audience: context.config.issuer,
      windowSeconds: options.requestWindowSeconds ?? DEFAULT_ADMIN_WINDOW_SECONDS,
      clock: { now: context.now },
      startedAt,
      replay: options.replay ?? new ReplayGuard(),
      audit: context.audit,
      operations: [
        ...referenceValueOperations(options.referenceValues),
        ...inventoryOperations(options.inventory),
        ...resourceOperations(context.resources),
        ...resourcePolicyOperations(context.resourcePolicy, options.policyFiles?.resource),
        ...attestationPolicyOperations(
          context.attestation,
          context.config.mode,
          options.policyFiles?.attestation,
        ),
      ],
    });
  };
}
