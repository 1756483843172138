import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateTestSigner } from './conformance/test-signer.js';
import {
  AUDIT_PUBLIC_KEY_FILE,
  STATE_DB_FILE,
  openMetadataDatabase,
  publishAuditPublicKey,
  readAuditPublicKeys,
  stateDirectoryDatabase,
} from './state-dir.js';

function code(run: () => unknown): string {
  try {
    run();
    return 'none';
  } catch (err) {
    return (err as { code?: string }).code ?? 'no code';
  }
}

describe('state directory', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'tresor-state-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the database in tresor.db, created and migrated on first open, then readable read-only', async () => {
    const target = stateDirectoryDatabase(dir, { mustExist: false });
    expect(target).toEqual({ kind: 'sqlite', file: join(dir, STATE_DB_FILE) });
    expect(code(() => stateDirectoryDatabase(dir, { mustExist: true }))).toBe('STORAGE_UNAVAILABLE');
    await (await openMetadataDatabase(target)).close();
    expect(statSync(join(dir, STATE_DB_FILE)).isFile()).toBe(true);
    const reader = await openMetadataDatabase(stateDirectoryDatabase(dir, { mustExist: true }), {
      readOnly: true,
    });
    await reader.close();
  });

  it('refuses a missing directory, a file in its place, and an unreadable one', () => {
    expect(code(() => stateDirectoryDatabase(join(dir, 'missing'), { mustExist: false }))).toBe(
      'STORAGE_UNAVAILABLE',
    );
    writeFileSync(join(dir, 'file'), '');
    expect(code(() => stateDirectoryDatabase(join(dir, 'file'), { mustExist: false }))).toBe(
      'STORAGE_UNAVAILABLE',
    );
    if (process.getuid?.() !== 0) {
      chmodSync(dir, 0o000);
      expect(code(() => stateDirectoryDatabase(dir, { mustExist: false }))).toBe('STORAGE_UNAVAILABLE');
      chmodSync(dir, 0o700);
    }
  });

  it('publishes checkpoint public keys as a JWK Set, keeping earlier keys after a rotation', () => {
    expect(code(() => readAuditPublicKeys(dir))).toBe('INPUT_UNREADABLE');
    const first = generateTestSigner('sig-2025');
    const second = generateTestSigner('sig-2026');
    publishAuditPublicKey(dir, first.publicJwk);
    publishAuditPublicKey(dir, first.publicJwk);
    publishAuditPublicKey(dir, second.publicJwk);
    const set = JSON.parse(readFileSync(join(dir, AUDIT_PUBLIC_KEY_FILE), 'utf8')) as {
      keys: { kid: string }[];
    };
    expect(set.keys.map((k) => k.kid)).toEqual(['sig-2025', 'sig-2026']);
    expect(code(() => readAuditPublicKeys(dir))).toBe('none');
    expect(
      code(() => {
        publishAuditPublicKey(dir, { ...generateTestSigner('sig-2025').publicJwk });
      }),
    ).toBe('INPUT_MALFORMED');
    expect(
      code(() => {
        publishAuditPublicKey(dir, { ...first.publicJwk, d: 'secret' } as never);
      }),
    ).toBe('INPUT_MALFORMED');
    writeFileSync(join(dir, AUDIT_PUBLIC_KEY_FILE), '{"keys": 5}');
    expect(
      code(() => {
        publishAuditPublicKey(dir, second.publicJwk);
      }),
    ).toBe('INPUT_MALFORMED');
  });
});
