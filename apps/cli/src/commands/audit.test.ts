import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { utf8Encode } from '@tresor/crypto';
import { FileKeyStore, SecretKeyBytes } from '@tresor/keystore';
import {
  AuditLog,
  AUDIT_PUBLIC_KEY_FILE,
  SqlAuditRepository,
  keyStoreCheckpointSigner,
  openMetadataDatabase,
  publishAuditPublicKey,
  stateDirectoryDatabase,
  type CheckpointSigner,
  type SqlClient,
} from '@tresor/storage';
import { captureIo } from '../../../../test/support/cli-io.js';
import { run } from '../index.js';

let keysDir: string;
let store: FileKeyStore;
let signer: CheckpointSigner;
let stranger: CheckpointSigner;

beforeAll(async () => {
  keysDir = mkdtempSync(join(tmpdir(), 'tresor-cli-audit-keys-'));
  store = await FileKeyStore.open({
    path: join(keysDir, 'keys.json'),
    passphrase: SecretKeyBytes.copyOf(utf8Encode('cli audit test passphrase')),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
  signer = await keyStoreCheckpointSigner(store, (await store.createSigningKey('ES256')).id);
  stranger = await keyStoreCheckpointSigner(store, (await store.createSigningKey('ES384')).id);
});
afterAll(async () => {
  await store.close();
  rmSync(keysDir, { recursive: true, force: true });
});

describe('tresor audit verify', () => {
  let dir: string;
  let client: SqlClient;

  /** A state directory holding 7 records (checkpoints at 3 and 6) and the checkpoint public key. */
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tresor-cli-audit-'));
    client = await openMetadataDatabase(stateDirectoryDatabase(dir, { mustExist: false }));
    const log = new AuditLog(new SqlAuditRepository(client), { signer, checkpointEvery: 3 });
    for (let n = 1; n <= 7; n++) {
      await log.append({
        actor: { type: 'admin', id: 'adm-01' },
        action: 'policy.update',
        target: `tenant:acme/policy:${n}`,
        outcome: 'success',
        details: { revision: n },
      });
    }
    publishAuditPublicKey(dir, signer.publicJwk);
  });
  afterEach(async () => {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const tresor = async (args: string[]) => {
    const io = captureIo();
    const code = await run(['audit', 'verify', ...args], { ...io, cwd: dir });
    return { code, out: io.out(), err: io.err() };
  };
  const tamper = async (sql: string): Promise<void> => {
    await client.execute('DROP TRIGGER IF EXISTS audit_records_append_only');
    for (const statement of sql.split(';')) await client.execute(statement);
  };

  it('exits 0 on an intact log, reading the key from the state directory', async () => {
    const result = await tresor(['--dir', '.']);
    expect(result).toEqual({
      code: 0,
      out:
        'audit log intact: records 1 to 7 (7)\n' +
        'signed checkpoints: 2 verified (newest covers record 6); records not yet under a checkpoint: 1\n',
      err: '',
    });
  });

  it('prints the report as JSON', async () => {
    const result = await tresor(['--dir', dir, '--json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.out)).toEqual({
      intact: true,
      start: { kind: 'genesis' },
      firstSeq: 1,
      lastSeq: 7,
      records: 7,
      checkpoints: 2,
      checkpointsMatched: 2,
      newestCheckpoint: 6,
      unsignedRecords: 1,
    });
  });

  it.each([
    [
      'a deleted record',
      'DELETE FROM audit_records WHERE seq = 4',
      'AUDIT_CHAIN_BROKEN',
      'record 4 is missing',
    ],
    [
      'an edited record',
      "UPDATE audit_records SET actor_id = 'adm-02' WHERE seq = 2",
      'AUDIT_CHAIN_BROKEN',
      'record 2 was edited',
    ],
    [
      'reordered records',
      'UPDATE audit_records SET seq = 0 WHERE seq = 2; UPDATE audit_records SET seq = 2 WHERE seq = 5; UPDATE audit_records SET seq = 5 WHERE seq = 0',
      'AUDIT_CHAIN_BROKEN',
      'record 2 was edited or moved',
    ],
    [
      'a truncated tail',
      'DELETE FROM audit_records WHERE seq > 4',
      'AUDIT_LOG_TRUNCATED',
      'records 5 to 6 are missing',
    ],
    [
      'a forged checkpoint',
      `UPDATE audit_checkpoints SET head_hash = '${'0'.repeat(64)}' WHERE record_count = 3`,
      'AUDIT_CHECKPOINT_INVALID',
      'checkpoint at record 3',
    ],
  ])('exits 1 on %s, naming it', async (_, sql, code, named) => {
    await tamper(sql);
    const result = await tresor(['--dir', dir]);
    expect(result.code).toBe(1);
    expect(result.out).toBe('');
    expect(result.err).toMatch(new RegExp(`^error ${code}: [^\\n]*${named}[^\\n]*\\nfix: [^\\n]+\\n$`));
  });

  it('with --json, prints the failed report on stdout and the error on stderr', async () => {
    await tamper('UPDATE audit_records SET details = \'{"revision":9}\' WHERE seq = 5');
    const result = await tresor(['--dir', dir, '--json']);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.out)).toMatchObject({
      intact: false,
      records: 4,
      problem: { code: 'AUDIT_CHAIN_BROKEN', seq: 5 },
    });
    expect(result.err).toMatch(/^error AUDIT_CHAIN_BROKEN: record 5 was edited/);
  });

  it('exits 1 when the given public key is not the checkpoint key', async () => {
    writeFileSync(join(dir, 'other.jwk'), JSON.stringify(stranger.publicJwk));
    const result = await tresor(['--dir', dir, '--public-key', 'other.jwk']);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/^error AUDIT_CHECKPOINT_INVALID: .*not a trusted key/);
  });

  it('exits 2 for a missing or unreadable directory, database or key, and for bad usage', async () => {
    const cases: [string[], string][] = [
      [['--dir', join(dir, 'nope')], 'STORAGE_UNAVAILABLE'],
      [['--dir', keysDir], 'STORAGE_UNAVAILABLE'],
      [['--dir', dir, '--public-key', 'missing.jwk'], 'INPUT_UNREADABLE'],
      [[], 'USAGE_INVALID'],
      [['--dir', dir, '--db', 'postgres://localhost/x'], 'USAGE_INVALID'],
      [['--db', 'mysql://localhost/x', '--public-key', AUDIT_PUBLIC_KEY_FILE], 'USAGE_INVALID'],
      [['--db', 'postgres://127.0.0.1:1/x'], 'USAGE_INVALID'],
    ];
    for (const [args, code] of cases) {
      const result = await tresor(args);
      expect({ args, code: result.code, err: result.err.split(':')[0] }).toEqual({
        args,
        code: 2,
        err: `error ${code}`,
      });
    }
    writeFileSync(join(dir, 'private.jwk'), JSON.stringify({ ...signer.publicJwk, d: 'AAAA' }));
    const privateKey = await tresor(['--dir', dir, '--public-key', 'private.jwk']);
    expect(privateKey.code).toBe(2);
    expect(privateKey.err).toMatch(/^error INPUT_MALFORMED: .*give the public key only/);
  });

  it('exits 2 when the PostgreSQL server cannot be reached', async () => {
    const result = await tresor([
      '--db',
      'postgresql://tresor@127.0.0.1:1/tresor',
      '--public-key',
      AUDIT_PUBLIC_KEY_FILE,
    ]);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/^error STORAGE_UNAVAILABLE: /);
    expect(result.err).not.toContain('tresor@');
  });

  it('exits 2 for a file that is not a Tresor database', async () => {
    writeFileSync(join(keysDir, 'tresor.db'), 'not a database at all');
    const result = await tresor(['--dir', keysDir, '--public-key', join(dir, AUDIT_PUBLIC_KEY_FILE)]);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(/^error STORAGE_UNAVAILABLE: /);
    rmSync(join(keysDir, 'tresor.db'));
  });
});
