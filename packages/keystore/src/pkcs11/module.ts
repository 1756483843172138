import pkcs11js from 'pkcs11js';
import { TresorError, type ErrorCode } from '@tresor/protocol';

/**
 * PKCS#11 modules are process-wide: C_Initialize may run once per process and C_Finalize ends every
 * session of every user of the module (PKCS#11 v2.40 §5.4). So loaded modules are shared and counted
 * here, and finalised when their last user closes.
 */
interface LoadedModule {
  readonly api: pkcs11js.PKCS11;
  readonly initializedHere: boolean;
  users: number;
}

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
  loaded.set(path, { api, initializedHere, users: 1 });
  return api;
}

export function releaseModule(path: string): void {
  const entry = loaded.get(path);
  if (entry === undefined) return;
  entry.users -= 1;
  if (entry.users > 0) return;
  loaded.delete(path);
  try {
    if (entry.initializedHere) entry.api.C_Finalize();
  } finally {
    entry.api.close();
  }
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
  const name = CKR_NAMES.get(ckr) ?? `0x${ckr.toString(16)}`;
  const code: ErrorCode = AUTH.has(ckr)
    ? 'KEYSTORE_AUTH_FAILED'
    : UNAVAILABLE.has(ckr)
      ? 'KEYSTORE_UNAVAILABLE'
      : UNSUPPORTED.has(ckr)
        ? 'KEYSTORE_OPERATION_UNSUPPORTED'
        : fallback;
  return new TresorError(code, `the token answered ${name} while ${doing}`, {
    cause: err,
    details: { ckr: name },
  });
}
