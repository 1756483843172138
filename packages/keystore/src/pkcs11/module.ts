import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import { TresorError, type ErrorCode } from '@tresor/protocol';

/**
 * PKCS#11 modules are process-wide: C_Initialize may run once per process and C_Finalize ends every
 * session of every user of the module (PKCS#11 v2.40 §5.4). So loaded modules are shared and counted
 * here, and finalised when their last user closes.
 *
 * A module can also be re-initialised (C_Finalize + C_Initialize) to recover from a lost token:
 * SoftHSM2 2.6 keeps answering CKR_GENERAL_ERROR for a token whose files vanished, even once they are
 * back, until it is initialised again. Re-initialising ends the sessions of every store on the module,
 * so each re-initialisation starts a new `generation`: a store whose session belongs to an older
 * generation opens a new one and must not touch the old handle (the module may have reused its number
 * for another store's session).
 */
interface LoadedModule {
  readonly api: pkcs11js.PKCS11;
  readonly initializedHere: boolean;
  /** False after a C_Initialize that failed during re-initialisation. */
  initialized: boolean;
  generation: number;
  users: number;
  /** Per slot (hex CK_SLOT_ID), a MAC of the PIN this process logged in with (see loginMatches). */
  readonly logins: Map<string, Buffer>;
}

/** Keys the PIN MACs: a process secret, so the map never holds a guessable digest of a short PIN. */
const PIN_MAC_KEY = randomBytes(32);

const loaded = new Map<string, LoadedModule>();

export function acquireModule(path: string): pkcs11js.PKCS11 {
  const existing = loaded.get(path);
  if (existing !== undefined) {
    existing.users += 1;
    return existing.api;
  }
  const api = new pkcs11js.PKCS11();
  try {
    api.load(path);
  } catch (cause) {
    throw new TresorError('KEYSTORE_UNAVAILABLE', `cannot load the PKCS#11 module ${path}`, { cause });
  }
  let initializedHere = true;
  try {
    api.C_Initialize();
  } catch (cause) {
    if (ckrOf(cause) !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
      api.close();
      throw pkcs11Failure(cause, `initialising ${path}`, 'KEYSTORE_UNAVAILABLE');
    }
    // Another library in this process initialised it; it keeps the right to finalise it.
    initializedHere = false;
  }
  loaded.set(path, { api, initializedHere, initialized: true, generation: 0, users: 1, logins: new Map() });
  return api;
}

export function releaseModule(path: string): void {
  const entry = loaded.get(path);
  if (entry === undefined) return;
  entry.users -= 1;
  if (entry.users > 0) return;
  loaded.delete(path);
  try {
    if (entry.initializedHere && entry.initialized) entry.api.C_Finalize();
  } finally {
    entry.api.close();
  }
}

/** The module's current generation (see above); -1 when it is not loaded. */
export function moduleGeneration(path: string): number {
  return loaded.get(path)?.generation ?? -1;
}

/**
 * C_Finalize + C_Initialize, so the module reads its tokens afresh. Returns false, doing nothing, when
 * the module was initialised by another library in this process (only that library may finalise it).
 * Throws KEYSTORE_UNAVAILABLE when C_Initialize fails; the module then stays uninitialised and the
 * next call tries C_Initialize again.
 */
export function reinitializeModule(path: string): boolean {
  const entry = loaded.get(path);
  if (entry?.initializedHere !== true) return false;
  entry.generation += 1;
  entry.logins.clear();
  if (entry.initialized) {
    try {
      entry.api.C_Finalize();
    } catch {
      // A module that cannot finalise is re-initialised all the same; C_Initialize reports the state.
    }
  }
  try {
    entry.api.C_Initialize();
    entry.initialized = true;
  } catch (cause) {
    entry.initialized = ckrOf(cause) === pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED;
    if (!entry.initialized) {
      throw pkcs11Failure(cause, `re-initialising ${path}`, 'KEYSTORE_UNAVAILABLE');
    }
  }
  return true;
}

/**
 * PKCS#11 login state is per token and application (v2.40 §5.6): once one session is logged in,
 * C_Login on another answers CKR_USER_ALREADY_LOGGED_IN without checking the PIN. So the PIN of each
 * successful login is remembered (as a MAC) and a later login that finds the user logged in must
 * present the same PIN: a store opened with a wrong PIN is refused even while another is open.
 */
export function recordLogin(path: string, slot: Uint8Array, pin: Uint8Array): void {
  loaded.get(path)?.logins.set(Buffer.from(slot).toString('hex'), pinMac(pin));
}

/** Whether `pin` is the PIN this process logged in to `slot` with; null when it has no record. */
export function loginMatches(path: string, slot: Uint8Array, pin: Uint8Array): boolean | null {
  const recorded = loaded.get(path)?.logins.get(Buffer.from(slot).toString('hex'));
  return recorded === undefined ? null : timingSafeEqual(recorded, pinMac(pin));
}

function pinMac(pin: Uint8Array): Buffer {
  return createHmac('sha256', PIN_MAC_KEY).update(pin).digest();
}

/** The CK_RV of a pkcs11js error, or null for anything else. */
export function ckrOf(err: unknown): number | null {
  if (err instanceof pkcs11js.Pkcs11Error) return err.code;
  return null;
}

const CKR_NAMES = new Map<number, string>(
  Object.entries(pkcs11js)
    .filter((entry): entry is [string, number] => entry[0].startsWith('CKR_') && typeof entry[1] === 'number')
    .map(([name, value]) => [value, name]),
);

/** The CKR_ name of a return value, or its hex value when pkcs11js does not name it. */
export function ckrName(ckr: number): string {
  return CKR_NAMES.get(ckr) ?? `0x${ckr.toString(16)}`;
}

/** Return values that mean the token or session is gone, whatever the operation was. */
const UNAVAILABLE = new Set<number>([
  pkcs11js.CKR_DEVICE_ERROR,
  pkcs11js.CKR_DEVICE_MEMORY,
  pkcs11js.CKR_DEVICE_REMOVED,
  pkcs11js.CKR_TOKEN_NOT_PRESENT,
  pkcs11js.CKR_TOKEN_NOT_RECOGNIZED,
  pkcs11js.CKR_SESSION_CLOSED,
  pkcs11js.CKR_SESSION_HANDLE_INVALID,
  pkcs11js.CKR_CRYPTOKI_NOT_INITIALIZED,
  pkcs11js.CKR_USER_NOT_LOGGED_IN,
  pkcs11js.CKR_SLOT_ID_INVALID,
]);

const AUTH = new Set<number>([
  pkcs11js.CKR_PIN_INCORRECT,
  pkcs11js.CKR_PIN_INVALID,
  pkcs11js.CKR_PIN_LEN_RANGE,
  pkcs11js.CKR_PIN_LOCKED,
  pkcs11js.CKR_PIN_EXPIRED,
]);

/** Whether a return value is about the PIN (KEYSTORE_AUTH_FAILED). */
export function isAuthFailure(ckr: number): boolean {
  return AUTH.has(ckr);
}

const UNSUPPORTED = new Set<number>([pkcs11js.CKR_MECHANISM_INVALID, pkcs11js.CKR_FUNCTION_NOT_SUPPORTED]);

/**
 * Maps a PKCS#11 failure to a catalogue error. Token-wide conditions (device, session, PIN, missing
 * mechanism) have fixed codes; everything else gets `fallback`, the code that fits the operation
 * (KEY_UNWRAP_FAILED for an unwrap, KEY_IMPORT_INVALID for an import, …).
 */
export function pkcs11Failure(err: unknown, doing: string, fallback: ErrorCode): TresorError {
  if (err instanceof TresorError) return err;
  const ckr = ckrOf(err);
  if (ckr === null) {
    return new TresorError('KEYSTORE_UNAVAILABLE', `PKCS#11 call failed while ${doing}`, { cause: err });
  }
  const name = ckrName(ckr);
  if (UNAVAILABLE.has(ckr)) return tokenUnavailable(`the token answered ${name} while ${doing}`, err, name);
  const code: ErrorCode = AUTH.has(ckr)
    ? 'KEYSTORE_AUTH_FAILED'
    : UNSUPPORTED.has(ckr)
      ? 'KEYSTORE_OPERATION_UNSUPPORTED'
      : fallback;
  return new TresorError(code, `the token answered ${name} while ${doing}`, {
    cause: err,
    details: { ckr: name },
  });
}

/**
 * KEYSTORE_UNAVAILABLE for a token that cannot be reached: retryable, and never KEY_NOT_FOUND, which
 * operators read as "the key was deleted".
 */
export function tokenUnavailable(what: string, cause?: unknown, ckr?: string): TresorError {
  return new TresorError(
    'KEYSTORE_UNAVAILABLE',
    `${what}: check that the HSM and its token are reachable; the keystore reconnects by itself on a later operation`,
    { ...(cause === undefined ? {} : { cause }), ...(ckr === undefined ? {} : { details: { ckr } }) },
  );
}
