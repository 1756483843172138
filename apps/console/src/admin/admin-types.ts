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

/** `audit/verify` (services/gateway/src/admin/status-operations.ts): the storage package's AuditVerification, plus times and the newest records. */
export interface AuditVerificationView {
  readonly intact: boolean;
  readonly records: number;
  readonly firstSeq: number | null;
  readonly lastSeq: number | null;
  readonly firstTime: string | null;
  readonly lastTime: string | null;
  readonly checkpoints: number;
  readonly unsignedRecords: number;
  readonly newestCheckpoint: number | null;
  readonly problem?: { readonly code: string; readonly seq: number | null; readonly message: string };
  readonly recent: readonly {
    readonly seq: number;
    readonly time: string;
    readonly actor: string;
    readonly action: string;
    readonly target: string;
    readonly outcome: string;
  }[];
  readonly checkedAt: string;
}

/** `keystore/status`: the keys the gateway depends on (tenant KEK: BYOK/KYOK; audit checkpoint key). */
export interface KeystoreStatusView {
  readonly backend: string;
  readonly reachable: boolean;
  readonly revoked: boolean;
  readonly keys: readonly {
    readonly role: string;
    readonly id: string;
    readonly state: string;
    readonly reachable: boolean;
    readonly revoked: boolean;
    readonly code?: string;
  }[];
  readonly checkedAt: string;
}
