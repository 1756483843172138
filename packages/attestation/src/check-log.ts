import type { ErrorCode } from '@tresor/protocol';
import type { CheckResult, Checks } from './types.js';

/** Records checks in order; the first failure decides the result's error code. */
export class CheckLog {
  readonly #checks: Record<string, CheckResult> = {};
  #firstError: ErrorCode | null = null;

  pass(name: string, detail?: string): true {
    this.#checks[name] = detail === undefined ? { ok: true } : { ok: true, detail };
    return true;
  }

  fail(name: string, code: ErrorCode, detail?: string): false {
    this.#checks[name] = detail === undefined ? { ok: false, code } : { ok: false, code, detail };
    this.#firstError ??= code;
    return false;
  }

  /** Records `ok` as a pass, otherwise a failure with `code`. Returns `ok`. */
  check(name: string, ok: boolean, code: ErrorCode, detail?: string): boolean {
    return ok ? this.pass(name, detail) : this.fail(name, code, detail);
  }

  get valid(): boolean {
    return this.#firstError === null;
  }

  get error(): ErrorCode | null {
    return this.#firstError;
  }

  get checks(): Checks {
    return { ...this.#checks };
  }
}
