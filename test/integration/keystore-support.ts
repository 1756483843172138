import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SecretKeyBytes,
  loadKyokServerConfig,
  serveKyok,
  type ImportParameters,
  type ServingKyok,
} from '@tresor/keystore';
import { TEST_ISSUER, TEST_MEASUREMENT, type TestPki, type TestTrustService } from './keystore-pki.js';

/** Where Debian's softhsm2 package puts the PKCS#11 module (scripts/test-integration.sh installs it). */
export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsmToken {
  readonly dir: string;
  readonly label: string;
  readonly pin: () => SecretKeyBytes;
}

/**
 * A private SoftHSM2 token: its own softhsm2.conf and token directory under a temp dir, selected via
 * SOFTHSM2_CONF for this test process only, so nothing in /etc or /var/lib/softhsm is touched.
 * Must run before the module is loaded (SoftHSM reads the variable in C_Initialize).
 */
export async function createSoftHsmToken(label = 'tresor-test'): Promise<SoftHsmToken> {
  if (!existsSync(SOFTHSM_MODULE)) {
    throw new Error(
      `${SOFTHSM_MODULE} is missing: run the suite through \`npm run test:integration\`, which installs softhsm2`,
    );
  }
  const dir = await mkdtemp(join(tmpdir(), 'tresor-softhsm-'));
  await mkdir(join(dir, 'tokens'));
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(
    conf,
    `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
  );
  process.env.SOFTHSM2_CONF = conf;
  execFileSync(
    'softhsm2-util',
    ['--init-token', '--free', '--label', label, '--pin', '1234', '--so-pin', '5678'],
    {
      env: { ...process.env, SOFTHSM2_CONF: conf },
      stdio: 'pipe',
    },
  );
  return { dir, label, pin: () => SecretKeyBytes.copyOf(Buffer.from('1234')) };
}

/**
 * Fault injection: runs `during` with `token` unavailable — its token directory moved away, as an
 * unmounted or lost HSM volume would be — and puts the directory back afterwards, also on failure.
 */
export async function whileSoftHsmTokenAway<T>(token: SoftHsmToken, during: () => Promise<T>): Promise<T> {
  const tokens = join(token.dir, 'tokens');
  const away = join(token.dir, 'tokens-away');
  await rename(tokens, away);
  try {
    return await during();
  } finally {
    await rename(away, tokens);
  }
}

/**
 * Wraps `kek` for `params` with the openssl CLI — an implementation independent of ours:
 *   openssl pkeyutl -encrypt -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:<hash> -pkeyopt rsa_mgf1_md:<hash>
 *   openssl enc -id-aes256-wrap-pad -K <ephemeral hex> -iv A65959A6
 * and concatenates the two, as AWS KMS documents for RSA_AES_KEY_WRAP_SHA_*.
 */
export async function wrapWithOpenssl(
  params: ImportParameters,
  kek: Uint8Array,
  work: string,
): Promise<Uint8Array> {
  const hash = params.wrappingAlgorithm === 'RSA_AES_KEY_WRAP_SHA_256' ? 'sha256' : 'sha1';
  await mkdir(work, { recursive: true });
  const file = (name: string): string => join(work, name);
  await writeFile(file('import.pem'), params.publicKeyPem);
  await writeFile(file('kek.bin'), kek);
  execFileSync('openssl', ['rand', '-out', file('ephemeral.bin'), '32']);
  execFileSync('openssl', [
    'pkeyutl',
    '-encrypt',
    '-pubin',
    '-inkey',
    file('import.pem'),
    '-in',
    file('ephemeral.bin'),
    '-out',
    file('ephemeral.wrapped'),
    '-pkeyopt',
    'rsa_padding_mode:oaep',
    '-pkeyopt',
    `rsa_oaep_md:${hash}`,
    '-pkeyopt',
    `rsa_mgf1_md:${hash}`,
  ]);
  const ephemeralHex = (await readFile(file('ephemeral.bin'))).toString('hex');
  execFileSync('openssl', [
    'enc',
    '-id-aes256-wrap-pad',
    '-K',
    ephemeralHex,
    '-iv',
    'A65959A6',
    '-in',
    file('kek.bin'),
    '-out',
    file('kek.wrapped'),
  ]);
  return Buffer.concat([await readFile(file('ephemeral.wrapped')), await readFile(file('kek.wrapped'))]);
}

/** A customer's KYOK key server laid out in a directory, started on demand. */
export interface KyokServerFixture {
  /** The server's directory; its state (keys, revocations, decision log) is under `state/`. */
  readonly dir: string;
  /** Starts the server on `port` (0: any free port) over the same state; call again after a close. */
  start(port?: number): Promise<ServingKyok>;
}

/**
 * The reference KYOK key server of the integration tests, as a customer would configure it in
 * `dir`: TLS 1.3 with client certificates from `pki`, the trust service's JWKS and issuer, `pki`'s
 * client as admin, a file key store, and a policy admitting each of `tenants` for
 * TEST_MEASUREMENT in CH.
 */
export async function createKyokServerFixture(
  dir: string,
  pki: TestPki,
  trust: TestTrustService,
  tenants: readonly string[],
): Promise<KyokServerFixture> {
  await mkdir(join(dir, 'tls'));
  await writeFile(join(dir, 'tls/server.pem'), pki.server.cert);
  await writeFile(join(dir, 'tls/server.key'), pki.server.key, { mode: 0o600 });
  await writeFile(join(dir, 'tls/clients-ca.pem'), pki.caCert);
  await writeFile(join(dir, 'trust-jwks.json'), JSON.stringify(trust.jwks));
  const admitted = { allowedMeasurements: { measurement: [TEST_MEASUREMENT] }, residency: 'CH' };
  await writeFile(
    join(dir, 'policy.json'),
    JSON.stringify({ tenants: Object.fromEntries(tenants.map((tenant) => [tenant, admitted])) }),
  );
  return {
    dir,
    start: async (port = 0) => {
      const config = join(dir, `kyok-server-${String(port)}.json`);
      await writeFile(
        config,
        JSON.stringify({
          mode: 'development',
          listen: { host: '127.0.0.1', port },
          tls: { cert: 'tls/server.pem', key: 'tls/server.key', clientCa: 'tls/clients-ca.pem' },
          stateDir: 'state',
          keystore: {
            backend: 'file',
            path: 'state/keys.json',
            passphraseEnv: 'KYOK_TEST_PASSPHRASE',
            scryptLog2N: 14,
          },
          trustService: { jwks: 'trust-jwks.json', issuer: TEST_ISSUER, maxTokenAgeSeconds: 300 },
          admins: [pki.client.fingerprint],
          policy: 'policy.json',
        }),
      );
      return serveKyok(await loadKyokServerConfig(config), {
        env: { KYOK_TEST_PASSPHRASE: 'test-only passphrase of the key server' },
      });
    },
  };
}
