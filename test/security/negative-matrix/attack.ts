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
  readonly expect: Expected;
  readonly run: (env: MatrixEnv) => Promise<Expected | null>;
}

/**
 * Refusals below HTTP, where no catalogue code can be sent: the TLS handshake fails (TLS ≤ 1.2),
 * the HTTP parser answers 400 and closes without serving anything (request smuggling), the server
 * answers 408 and closes a request that arrives too slowly (slowloris), or resets such an HTTP/2 stream.
 */
export const TRANSPORT_REFUSALS = [
  'TLS_HANDSHAKE_REFUSED',
  'HTTP_400_AND_CLOSED',
  'HTTP_408_AND_CLOSED',
  'HTTP2_STREAM_RESET',
] as const;
export type TransportRefusal = (typeof TRANSPORT_REFUSALS)[number];
export type Expected = ErrorCode | TransportRefusal;

/**
 * A control: the same path without the attack, which must be accepted, so that each refusal in the
 * matrix is shown to come from the attack and not from a broken setup.
 */
export interface Control {
  readonly component: Component;
  readonly what: string;
  readonly run: (env: MatrixEnv) => Promise<Expected | null>;
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
export type Observed = Expected | 'ACCEPTED' | `NOT A CATALOGUE ERROR: ${string}`;

export async function observe(run: () => Promise<Expected | null>): Promise<Observed> {
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
