import { isErrorCode, isTresorError, type ErrorCode } from '@tresor/protocol';
import type { MatrixEnv } from './env.js';

/**
 * One row of the negative matrix: an attack or misconfiguration, the component that must refuse
 * it, and the catalogue code it must be refused with. `run` performs the attack against real
 * components and reports what happened: it throws the refusal (a TresorError), or returns the code
 * a verdict or an HTTP answer carried (`null` when the attack was accepted).
 */
export interface Attack {
  readonly component: Component;
  readonly attack: string;
  readonly expect: ErrorCode;
  readonly run: (env: MatrixEnv) => Promise<ErrorCode | null>;
}

/**
 * A control: the same path without the attack, which must be accepted, so that each refusal in the
 * matrix is shown to come from the attack and not from a broken setup.
 */
export interface Control {
  readonly component: Component;
  readonly what: string;
  readonly run: (env: MatrixEnv) => Promise<ErrorCode | null>;
}

export type Component =
  | 'attestation'
  | 'key release'
  | 'admin API'
  | 'sealed models'
  | 'OHTTP (crypto layer)'
  // Extension points: rows for these land with the components (see rows-pending.ts).
  | 'gateway'
  | 'serving'
  | 'client';

/** What an attack run ended with. */
export type Observed = ErrorCode | 'ACCEPTED' | `NOT A CATALOGUE ERROR: ${string}`;

export async function observe(run: () => Promise<ErrorCode | null>): Promise<Observed> {
  try {
    const code = await run();
    return code ?? 'ACCEPTED';
  } catch (err) {
    if (isTresorError(err) && isErrorCode(err.code)) return err.code;
    return `NOT A CATALOGUE ERROR: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`;
  }
}

/** The code of a verifier's or appraiser's verdict (`error` is the first failed check's code). */
export function verdict(result: { readonly error: ErrorCode | null }): ErrorCode | null {
  return result.error;
}

/** The code a Tresor server put in its `tresor-error-code` header (null for a success). */
export function answered(response: {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
}): ErrorCode | null {
  const header = response.headers['tresor-error-code'];
  const code = Array.isArray(header) ? header[0] : header;
  if (response.status < 400) return null;
  if (code === undefined || !isErrorCode(code)) {
    throw new Error(`HTTP ${response.status} without a catalogue code in tresor-error-code`);
  }
  return code;
}

/** Runs `f`; a TresorError it throws is the refusal, a normal return is acceptance. */
export async function refusal(f: () => unknown): Promise<ErrorCode | null> {
  await f();
  return null;
}
