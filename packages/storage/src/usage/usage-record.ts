import { TresorError } from '@tresor/protocol';
import type { SealedField } from './field-cipher.js';

/**
 * One request's metadata, as the DPA allows it to leave the enclaves (DESIGN.md §1 "Minimal
 * metadata"): tenant, key id, model, token counts, latency, status, time. Never content.
 */
export interface UsageRecordInput {
  /** The request id: unique per request. */
  readonly id: string;
  readonly tenant: string;
  /** Id of the API key the request used (never the key). */
  readonly apiKeyId: string;
  /** Stored encrypted under the tenant's data key: a private model's name says what a tenant works on. */
  readonly model: string;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly latencyMs: number;
  /** HTTP status of the answer. */
  readonly status: number;
  readonly time: Date;
}

export interface UsageRecord {
  readonly id: string;
  readonly tenant: string;
  readonly apiKeyId: string;
  readonly model: SealedField<string>;
  readonly promptTokens: number;
  readonly completionTokens: number;
  readonly latencyMs: number;
  readonly status: number;
  /** ISO 8601 UTC. */
  readonly time: string;
}

export interface UsageTotals {
  readonly requests: number;
  readonly promptTokens: number;
  readonly completionTokens: number;
}

const REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
const IDENTIFIER = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
export const MAX_MODEL_NAME_LENGTH = 256;

function invalid(problem: string): never {
  throw new TresorError('STORAGE_RECORD_INVALID', `usage record: ${problem}`);
}

function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    invalid(`${what} is not a non-negative integer`);
  }
  return value;
}

export function checkTenant(value: unknown): string {
  if (typeof value !== 'string' || !IDENTIFIER.test(value)) {
    invalid('tenant is not 1 to 128 of letters, digits, ".", "_" and "-"');
  }
  return value;
}

/** Validates a record from the gateway before anything is encrypted or stored. */
export function checkUsageRecord(input: UsageRecordInput): UsageRecordInput {
  if (typeof input.id !== 'string' || !REQUEST_ID.test(input.id)) {
    invalid('id is not 1 to 128 of letters, digits, ".", "_", ":" and "-"');
  }
  if (typeof input.apiKeyId !== 'string' || !IDENTIFIER.test(input.apiKeyId)) {
    invalid('apiKeyId is not 1 to 128 of letters, digits, ".", "_" and "-"');
  }
  if (
    typeof input.model !== 'string' ||
    input.model.length === 0 ||
    input.model.length > MAX_MODEL_NAME_LENGTH ||
    CONTROL.test(input.model)
  ) {
    invalid(`model is not 1 to ${MAX_MODEL_NAME_LENGTH} characters without control characters`);
  }
  if (!Number.isInteger(input.status) || input.status < 100 || input.status > 599) {
    invalid('status is not an HTTP status code');
  }
  if (!(input.time instanceof Date) || Number.isNaN(input.time.getTime()))
    invalid('time is not a valid Date');
  const year = input.time.getUTCFullYear();
  if (year < 0 || year > 9999) invalid('time is outside the years 0000 to 9999');
  return {
    id: input.id,
    tenant: checkTenant(input.tenant),
    apiKeyId: input.apiKeyId,
    model: input.model,
    promptTokens: count(input.promptTokens, 'promptTokens'),
    completionTokens: count(input.completionTokens, 'completionTokens'),
    latencyMs: count(input.latencyMs, 'latencyMs'),
    status: input.status,
    time: input.time,
  };
}
