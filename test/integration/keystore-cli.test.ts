import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FileKeyStore,
  KyokKeyStore,
  SecretKeyBytes,
  aesKeyUnwrap,
  type ImportParameters,
  type KeyId,
  type KeyMetadata,
} from '@tresor/keystore';
import { run } from '@tresor/cli';
import { expectCode } from '../../packages/keystore/src/conformance/key-store-conformance.js';
import { captureIo } from '../support/cli-io.js';
import {
  SOFTHSM_MODULE,
  createSoftHsmToken,
  wrapWithOpenssl,
  type SoftHsmToken,
} from './keystore-support.js';
import { TEST_ISSUER, TEST_MEASUREMENT, createTestPki, createTestTrustService } from './keystore-pki.js';

const bin = fileURLToPath(new URL('../../apps/cli/bin/tresor.js', import.meta.url));
const PASSPHRASE = 'integration test passphrase (test only)';

let dir: string;
let token: SoftHsmToken;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-keys-cli-'));
  token = await createSoftHsmToken('tresor-cli');
  await writeFile(
    join(dir, 'file-keystore.json'),
    JSON.stringify({ backend: 'file', path: 'keys.json', passphraseEnv: 'TEST_PASSPHRASE', scryptLog2N: 14 }),
  );
  await writeFile(
    join(dir, 'hsm-keystore.json'),
    JSON.stringify({
      backend: 'pkcs11',
      module: SOFTHSM_MODULE,
      tokenLabel: token.label,
      pinEnv: 'TEST_PIN',
    }),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(token.dir, { recursive: true, force: true });
});

const env = (): NodeJS.ProcessEnv => ({
  ...process.env,
  TEST_PASSPHRASE: PASSPHRASE,
  TEST_PIN: '1234',
  SOFTHSM2_CONF: process.env.SOFTHSM2_CONF,
});

/** Runs the built `tresor` bin, as a customer would. */
function tresorBin(...args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, env: env(), encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Runs a `tresor` command in this process (same code as the bin, without Node start-up per call). */
async function tresor(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  return tresorWith(env(), ...args);
}

async function tresorWith(
  vars: NodeJS.ProcessEnv,
  ...args: string[]
): Promise<{ code: number; out: string; err: string }> {
  const io = captureIo(
    Object.fromEntries(Object.entries(vars).filter((e): e is [string, string] => e[1] !== undefined)),
  );
  const code = await run(args, { ...io, cwd: dir });
  return { code, out: io.out(), err: io.err() };
}

describe('tresor keys import with a key wrapped by the openssl CLI', () => {
  it('file keystore: RSA-OAEP-SHA256 + AES-KWP round trip, and refusal of a wrongly wrapped key', async () => {
    const paramsRun = await tresor('keys', 'import-params', '--keystore', 'file-keystore.json');
    expect(paramsRun.code).toBe(0);
    const params = JSON.parse(paramsRun.out) as ImportParameters;
    expect(params.wrappingAlgorithm).toBe('RSA_AES_KEY_WRAP_SHA_256');
    const kek = randomBytes(32);
    await writeFile(join(dir, 'kek.wrapped'), await wrapWithOpenssl(params, kek, join(dir, 'openssl-file')));
    const imported = await tresor(
      'keys',
      'import',
      '--keystore',
      'file-keystore.json',
      '--in',
      'kek.wrapped',
      '--json',
    );
    expect(imported.err).toBe('');
    expect(imported.code).toBe(0);
    const meta = JSON.parse(imported.out) as KeyMetadata;
    expect(meta.origin).toBe('imported');

    // The keystore now holds exactly the customer's key: what it wraps, the customer's own copy unwraps.
    const store = await FileKeyStore.open({
      path: join(dir, 'keys.json'),
      passphrase: SecretKeyBytes.copyOf(Buffer.from(PASSPHRASE)),
      mode: 'development',
    });
    const dataKey = randomBytes(32);
    const wrapped = await store.wrapKey(meta.id, SecretKeyBytes.copyOf(dataKey));
    expect(Buffer.from(aesKeyUnwrap(kek, wrapped.ciphertext)).equals(dataKey)).toBe(true);
    await store.close();

    // Wrapped with the wrong OAEP hash, or cut short: refused with KEY_IMPORT_INVALID, exit 1.
    const sha1 = await wrapWithOpenssl(
      { ...params, wrappingAlgorithm: 'RSA_AES_KEY_WRAP_SHA_1' },
      kek,
      join(dir, 'openssl-sha1'),
    );
    await writeFile(join(dir, 'wrong.wrapped'), sha1);
    await writeFile(join(dir, 'short.wrapped'), sha1.subarray(0, 100));
    for (const file of ['wrong.wrapped', 'short.wrapped']) {
      const refused = await tresor('keys', 'import', '--keystore', 'file-keystore.json', '--in', file);
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(/^error KEY_IMPORT_INVALID: [^\n]+\nfix: [^\n]+\n$/);
    }
  });

  it('pkcs11 keystore (SoftHSM2): the import is unwrapped inside the token', async () => {
    const created = await tresor('keys', 'create', '--keystore', 'hsm-keystore.json', '--label', 'hsm kek');
    expect(created.code).toBe(0);
    expect(created.out).toMatch(/^created KEK kek-/);
    const params = JSON.parse(
      (await tresor('keys', 'import-params', '--keystore', 'hsm-keystore.json')).out,
    ) as ImportParameters;
    await writeFile(
      join(dir, 'hsm.wrapped'),
      await wrapWithOpenssl(params, randomBytes(32), join(dir, 'openssl-hsm')),
    );
    const imported = await tresor('keys', 'import', '--keystore', 'hsm-keystore.json', '--in', 'hsm.wrapped');
    expect(imported.code).toBe(0);
    const list = await tresor('keys', 'list', '--keystore', 'hsm-keystore.json', '--json');
    const keys = JSON.parse(list.out) as KeyMetadata[];
    expect(keys.map((k) => k.origin).sort()).toEqual(['generated', 'imported']);
    const wrongPin = await tresorWith(
      { ...env(), TEST_PIN: '0000' },
      'keys',
      'list',
      '--keystore',
      'hsm-keystore.json',
    );
    expect(wrongPin.code).toBe(1);
    expect(wrongPin.err).toMatch(/^error KEYSTORE_AUTH_FAILED: /);
  });
});

describe('tresor kyok serve | revoke | reinstate', () => {
  let server: ChildProcess;
  let url: string;
  let client: KyokKeyStore;

  beforeAll(async () => {
    const [pki, trust] = await Promise.all([createTestPki(), createTestTrustService()]);
    const kyok = join(dir, 'kyok');
    await mkdir(kyok);
    await writeFile(join(kyok, 'server.pem'), pki.server.cert);
    await writeFile(join(kyok, 'server.key'), pki.server.key, { mode: 0o600 });
    await writeFile(join(kyok, 'clients-ca.pem'), pki.caCert);
    await writeFile(join(kyok, 'jwks.json'), JSON.stringify(trust.jwks));
    await writeFile(
      join(kyok, 'policy.json'),
      JSON.stringify({
        tenants: { acme: { allowedMeasurements: { measurement: [TEST_MEASUREMENT] }, residency: 'CH' } },
      }),
    );
    await writeFile(
      join(kyok, 'server.json'),
      JSON.stringify({
        mode: 'production',
        listen: { host: '127.0.0.1', port: 0 },
        tls: { cert: 'server.pem', key: 'server.key', clientCa: 'clients-ca.pem' },
        stateDir: 'state',
        keystore: { backend: 'pkcs11', module: SOFTHSM_MODULE, tokenLabel: token.label, pinEnv: 'TEST_PIN' },
        trustService: { jwks: 'jwks.json', issuer: TEST_ISSUER },
        admins: [pki.client.fingerprint],
        policy: 'policy.json',
      }),
    );
    server = spawn(process.execPath, [bin, 'kyok', 'serve', '--config', join(kyok, 'server.json')], {
      env: env(),
    });
    url = await new Promise<string>((resolve, reject) => {
      let out = '';
      server.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /listening on (https:\/\/\S+)/.exec(out);
        if (match !== null) resolve(match[1]!);
      });
      server.once('exit', (code) => {
        reject(new Error(`kyok serve exited with ${String(code)}`));
      });
    });
    let current: Promise<string> | null = null;
    client = new KyokKeyStore({
      url,
      tenant: 'acme',
      tls: { cert: pki.client.cert, key: pki.client.key, ca: pki.caCert },
      attestationToken: () => (current ??= trust.mint()),
    });
  });
  afterAll(async () => {
    await client.close();
    if (server.exitCode === null) server.kill('SIGKILL');
  });

  it('serves an HSM-backed KEK, stops within 1 s of `tresor kyok revoke`, and resumes on `reinstate`', async () => {
    const kek = await client.createKek({ label: 'acme' });
    const wrapped = await client.wrapKey(kek.id, SecretKeyBytes.copyOf(randomBytes(32)));
    (await client.unwrapKey(wrapped)).dispose();

    const revokedAt = performance.now();
    const revoke = tresorBin('kyok', 'revoke', '--state-dir', join(dir, 'kyok/state'), '--tenant', 'acme');
    expect(revoke.code).toBe(0);
    const revokeDone = performance.now();
    let refusedAt = 0;
    for (;;) {
      const outcome = await client.unwrapKey(wrapped).then(
        (k) => {
          k.dispose();
          return null;
        },
        (e: unknown) => e,
      );
      if (outcome !== null) {
        expect(outcome).toMatchObject({ code: 'KEY_REVOKED' });
        refusedAt = performance.now();
        break;
      }
      expect(performance.now() - revokeDone).toBeLessThan(1000);
      await new Promise((r) => setTimeout(r, 20));
    }
    // Measured from the moment the revocation was on disk (the CLI process start-up excluded).
    expect(refusedAt - revokeDone).toBeLessThanOrEqual(1000);
    expect(refusedAt).toBeGreaterThan(revokedAt);

    expect(
      tresorBin('kyok', 'reinstate', '--state-dir', join(dir, 'kyok/state'), '--tenant', 'acme').code,
    ).toBe(0);
    (await client.unwrapKey(wrapped)).dispose();
    await expectCode(client.describe('kek-000000000000000000000000' as KeyId), 'KEY_NOT_FOUND');
  });

  it('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
