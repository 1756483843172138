/** Answers of the gateway's admin operations (services/gateway/src/admin), as the console reads them. */
export interface TenantView {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
  readonly requestsPerMinute?: number;
  readonly tokensPerDay?: number;
}

export interface ApiKeyView {
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
  readonly scopes: readonly string[];
  readonly createdAt: string;
  readonly expiresAt: string | null;
  readonly revokedAt: string | null;
}

export interface CreatedApiKey extends ApiKeyView {
  /** The secret, shown once. */
  readonly key: string;
}

export interface PolicyView {
  readonly tenant: string;
  readonly policy: string;
  readonly version: number;
  readonly updatedAt: string;
}

/**
 * `audit/verify` (proposed to the gateway: the storage package's AuditVerification) — the page
 * shows whatever of it the gateway answers, and says so when the gateway offers no such operation.
 */
export interface AuditVerificationView {
  readonly intact: boolean;
  readonly records: number;
  readonly checkpoints: number;
  readonly unsignedRecords?: number;
  readonly newestCheckpoint?: number | null;
  readonly problem?: { readonly code: string; readonly seq: number | null; readonly message: string };
  readonly recent?: readonly {
    readonly seq: number;
    readonly time: string;
    readonly actor: string;
    readonly action: string;
    readonly target: string;
    readonly outcome: string;
  }[];
}

/** `keystore/status` (proposed): the tenant key backend and, for KYOK, whether the key server answers and the key is revoked. */
export interface KeystoreStatusView {
  readonly backend: string;
  readonly reachable: boolean;
  readonly revoked: boolean;
  readonly checkedAt: string;
  readonly message?: string;
}
