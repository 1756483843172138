import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SecretKeyBytes, type ImportParameters } from '@tresor/keystore';

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
