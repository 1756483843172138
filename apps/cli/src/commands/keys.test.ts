import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SecretKeyBytes, wrapKeyForImport, type ImportParameters, type KeyMetadata } from '@tresor/keystore';
import { captureIo } from '../../../../test/support/cli-io.js';
import { run } from '../index.js';

let dir: string;
const env = { TRESOR_TEST_PASSPHRASE: 'cli test passphrase (test only)' };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tresor-cli-keys-'));
  writeFileSync(
    join(dir, 'keystore.json'),
    JSON.stringify({
      backend: 'file',
      path: 'keys.json',
      passphraseEnv: 'TRESOR_TEST_PASSPHRASE',
      scryptLog2N: 14,
    }),
  );
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const tresor = async (args: string[], extraEnv: Record<string, string> = {}) => {
  const io = captureIo({ ...env, ...extraEnv });
  const code = await run(args, { ...io, cwd: dir });
  return { code, out: io.out(), err: io.err() };
};
const failure = (code: string): RegExp => new RegExp(`^error ${code}: [^\\n]+\\nfix: [^\\n]+\\n$`);
const ks = ['--keystore', 'keystore.json'];

describe('tresor keys', () => {
  it('creates, lists, describes, disables, enables and destroys keys', async () => {
    const created = await tresor(['keys', 'create', ...ks, '--label', 'tenant acme', '--json']);
    expect(created.code).toBe(0);
    const kek = JSON.parse(created.out) as KeyMetadata;
    expect(kek).toMatchObject({ kind: 'kek', algorithm: 'A256KW', state: 'enabled', label: 'tenant acme' });

    const signing = await tresor(['keys', 'create', ...ks, '--signing', 'ES384']);
    expect(signing.code).toBe(0);
    expect(signing.out).toMatch(/^created signing key sig-[0-9a-f]{24} \(ES384\)\n$/);

    const list = await tresor(['keys', 'list', ...ks]);
    expect(list.code).toBe(0);
    expect(list.out.split('\n')[0]).toMatch(/^ID\s+KIND\s+ALGORITHM\s+STATE\s+ORIGIN\s+CREATED\s+LABEL$/);
    expect(list.out).toContain(kek.id);

    expect((await tresor(['keys', 'disable', kek.id, ...ks])).out).toBe(`${kek.id} is now disabled\n`);
    expect(JSON.parse((await tresor(['keys', 'describe', kek.id, ...ks, '--json'])).out)).toMatchObject({
      state: 'disabled',
    });
    expect((await tresor(['keys', 'enable', kek.id, ...ks])).out).toBe(`${kek.id} is now enabled\n`);

    const unconfirmed = await tresor(['keys', 'destroy', kek.id, ...ks]);
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.err).toMatch(failure('USAGE_INVALID'));
    expect((await tresor(['keys', 'destroy', kek.id, ...ks, '--yes'])).out).toBe(
      `${kek.id} is now destroyed\n`,
    );
    const again = await tresor(['keys', 'enable', kek.id, ...ks]);
    expect(again.code).toBe(1);
    expect(again.err).toMatch(failure('KEY_DESTROYED'));
  });

  it('imports a KEK wrapped for the printed import parameters (BYOK)', async () => {
    const paramsOut = await tresor(['keys', 'import-params', ...ks]);
    expect(paramsOut.code).toBe(0);
    const params = JSON.parse(paramsOut.out) as ImportParameters;
    expect(params.wrappingAlgorithm).toBe('RSA_AES_KEY_WRAP_SHA_256');
    expect((await tresor(['keys', 'import-params', ...ks, '--format', 'pem'])).out).toBe(params.publicKeyPem);
    expect(JSON.parse((await tresor(['keys', 'import-params', ...ks, '--format', 'jwk'])).out)).toEqual(
      params.publicKeyJwk,
    );

    writeFileSync(join(dir, 'kek.wrapped'), wrapKeyForImport(params, SecretKeyBytes.copyOf(randomBytes(32))));
    const imported = await tresor(['keys', 'import', ...ks, '--in', 'kek.wrapped', '--label', 'byok']);
    expect(imported.code).toBe(0);
    expect(imported.out).toMatch(/^imported KEK kek-[0-9a-f]{24} \(A256KW, origin imported\)\n$/);

    writeFileSync(join(dir, 'garbage.wrapped'), randomBytes(424));
    const refused = await tresor(['keys', 'import', ...ks, '--in', 'garbage.wrapped']);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(failure('KEY_IMPORT_INVALID'));
    const missing = await tresor(['keys', 'import', ...ks, '--in', 'nope.bin']);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(failure('INPUT_UNREADABLE'));
  });

  it('refuses with the contract codes: no keystore, production mode, wrong passphrase, bad ids', async () => {
    const none = await tresor(['keys', 'list']);
    expect(none.code).toBe(2);
    expect(none.err).toMatch(failure('USAGE_INVALID'));
    const viaEnv = await tresor(['keys', 'list'], { TRESOR_KEYSTORE: 'keystore.json' });
    expect(viaEnv.code).toBe(0);

    const production = await tresor(['keys', 'list', ...ks], { TRESOR_MODE: 'production' });
    expect(production.code).toBe(2);
    expect(production.err).toMatch(failure('KEYSTORE_PRODUCTION_REFUSED'));

    const wrong = await tresor(['keys', 'list', ...ks], {
      TRESOR_TEST_PASSPHRASE: 'not the right passphrase',
    });
    expect(wrong.code).toBe(1);
    expect(wrong.err).toMatch(failure('KEYSTORE_AUTH_FAILED'));

    const unset = await tresor(['keys', 'list', ...ks], { TRESOR_TEST_PASSPHRASE: '' });
    expect(unset.code).toBe(2);
    expect(unset.err).toMatch(failure('CONFIG_INVALID'));

    const badId = await tresor(['keys', 'describe', 'no/such', ...ks]);
    expect(badId.code).toBe(2);
    expect(badId.err).toMatch(failure('USAGE_INVALID'));
    const unknown = await tresor(['keys', 'describe', 'kek-000000000000000000000000', ...ks]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(failure('KEY_NOT_FOUND'));

    const badAlgorithm = await tresor(['keys', 'create', ...ks, '--signing', 'RS256']);
    expect(badAlgorithm.code).toBe(2);
    expect(badAlgorithm.err).toMatch(failure('USAGE_INVALID'));
  });

  it('never prints key material or the passphrase', async () => {
    const outputs = await Promise.all([
      tresor(['keys', 'list', ...ks, '--json']),
      tresor(['keys', 'create', ...ks, '--json']),
      tresor(['keys', 'list', ...ks], { TRESOR_TEST_PASSPHRASE: 'wrong passphrase here' }),
    ]);
    for (const o of outputs) {
      expect(o.out + o.err).not.toContain(env.TRESOR_TEST_PASSPHRASE);
      expect(o.out + o.err).not.toMatch(/material|PRIVATE KEY/);
    }
  });
});
