import fc from 'fast-check';
import pkcs11js from 'pkcs11js';
import { describe, expect, it } from 'vitest';
import { TresorError, isErrorCode } from '@tresor/protocol';
import {
  acquireModule,
  ckrName,
  loginMatches,
  moduleGeneration,
  pkcs11Failure,
  recordLogin,
  reinitializeModule,
  releaseModule,
  tokenUnavailable,
} from './module.js';

const answer = (ckr: number): pkcs11js.Pkcs11Error => new pkcs11js.Pkcs11Error(ckrName(ckr), ckr, 'C_Test');

/** The return values a lost token or session gives, whatever the operation (issue #13). */
const LOST = [
  pkcs11js.CKR_SESSION_HANDLE_INVALID,
  pkcs11js.CKR_SESSION_CLOSED,
  pkcs11js.CKR_TOKEN_NOT_PRESENT,
  pkcs11js.CKR_DEVICE_REMOVED,
  pkcs11js.CKR_DEVICE_ERROR,
  pkcs11js.CKR_CRYPTOKI_NOT_INITIALIZED,
  pkcs11js.CKR_USER_NOT_LOGGED_IN,
];

describe('pkcs11Failure', () => {
  it.each(LOST.map((ckr) => [ckrName(ckr), ckr]))(
    'names %s KEYSTORE_UNAVAILABLE whatever the operation, and says to check the HSM',
    (name, ckr) => {
      const failure = pkcs11Failure(answer(ckr), 'unwrapping the data key', 'KEY_UNWRAP_FAILED');
      expect(failure.code).toBe('KEYSTORE_UNAVAILABLE');
      expect(failure.message).toContain(name);
      expect(failure.message).toMatch(/check that the HSM and its token are reachable/);
      expect(failure.details).toEqual({ ckr: name });
    },
  );

  it('names PIN failures KEYSTORE_AUTH_FAILED and missing mechanisms KEYSTORE_OPERATION_UNSUPPORTED', () => {
    expect(pkcs11Failure(answer(pkcs11js.CKR_PIN_INCORRECT), 'logging in', 'KEYSTORE_UNAVAILABLE').code).toBe(
      'KEYSTORE_AUTH_FAILED',
    );
    expect(pkcs11Failure(answer(pkcs11js.CKR_PIN_LOCKED), 'logging in', 'KEYSTORE_UNAVAILABLE').code).toBe(
      'KEYSTORE_AUTH_FAILED',
    );
    expect(
      pkcs11Failure(answer(pkcs11js.CKR_MECHANISM_INVALID), 'signing', 'KEYSTORE_UNAVAILABLE').code,
    ).toBe('KEYSTORE_OPERATION_UNSUPPORTED');
  });

  it('leaves operation failures, and CKR_GENERAL_ERROR, to the operation (the store probes the token)', () => {
    for (const ckr of [
      pkcs11js.CKR_WRAPPED_KEY_INVALID,
      pkcs11js.CKR_ENCRYPTED_DATA_INVALID,
      pkcs11js.CKR_GENERAL_ERROR,
    ]) {
      expect(pkcs11Failure(answer(ckr), 'unwrapping the data key', 'KEY_UNWRAP_FAILED').code).toBe(
        'KEY_UNWRAP_FAILED',
      );
    }
  });

  it('passes a TresorError through and names anything else KEYSTORE_UNAVAILABLE', () => {
    const own = new TresorError('KEY_NOT_FOUND', 'no key');
    expect(pkcs11Failure(own, 'looking up', 'KEY_UNWRAP_FAILED')).toBe(own);
    const odd = pkcs11Failure(new Error('addon crashed'), 'signing', 'KEY_UNWRAP_FAILED');
    expect(odd.code).toBe('KEYSTORE_UNAVAILABLE');
    expect(odd.message).toContain('signing');
  });

  it('maps any return value to a catalogue code that is never KEY_NOT_FOUND (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (ckr) => {
        const failure = pkcs11Failure(answer(ckr), 'wrapping the data key', 'KEYSTORE_UNAVAILABLE');
        expect(isErrorCode(failure.code)).toBe(true);
        expect(failure.code).not.toBe('KEY_NOT_FOUND');
        expect(failure.message).toContain(ckrName(ckr));
      }),
    );
  });

  it('names unknown return values by their hex value', () => {
    expect(ckrName(0x8000_1234)).toBe('0x80001234');
    expect(ckrName(pkcs11js.CKR_GENERAL_ERROR)).toBe('CKR_GENERAL_ERROR');
  });
});

describe('tokenUnavailable', () => {
  it('is retryable KEYSTORE_UNAVAILABLE and keeps the cause out of the message', () => {
    const cause = new Error('secret detail');
    const failure = tokenUnavailable('the token stopped answering', cause, 'CKR_GENERAL_ERROR');
    expect(failure.code).toBe('KEYSTORE_UNAVAILABLE');
    expect(failure.status).toBe(503);
    expect(failure.cause).toBe(cause);
    expect(failure.message).not.toContain('secret detail');
    expect(failure.details).toEqual({ ckr: 'CKR_GENERAL_ERROR' });
    expect(tokenUnavailable('gone', cause).details).toBeUndefined();
  });
});

describe('module registry', () => {
  it('refuses a module that cannot be loaded and keeps no entry for it', () => {
    const path = '/nonexistent/libpkcs11-test.so';
    expect(() => acquireModule(path)).toThrow(
      expect.objectContaining({ code: 'KEYSTORE_UNAVAILABLE' }) as Error,
    );
    expect(moduleGeneration(path)).toBe(-1);
    expect(reinitializeModule(path)).toBe(false);
    expect(() => {
      releaseModule(path);
    }).not.toThrow();
  });

  it('has no login record for a module that is not loaded, and records none', () => {
    const path = '/nonexistent/libpkcs11-test.so';
    const slot = Buffer.from([1, 0, 0, 0, 0, 0, 0, 0]);
    recordLogin(path, slot, Buffer.from('1234'));
    expect(loginMatches(path, slot, Buffer.from('1234'))).toBeNull();
    expect(loginMatches(path, slot, Buffer.from('9999'))).toBeNull();
  });
});
