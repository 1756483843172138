import type { ErrorCode } from '@tresor/protocol';

/** One check's verdict before it is recorded under its name: a failure always names its code. */
export type CheckOutcome =
  { readonly ok: true } | { readonly ok: false; readonly code: ErrorCode; readonly detail: string };

export const PASSED: CheckOutcome = { ok: true };

export function failed(code: ErrorCode, detail: string): CheckOutcome {
  return { ok: false, code, detail };
}
