/**
 * Keystore benchmark: data-key unwraps per second for each backend, against a baseline measured in
 * the same run (DESIGN.md §4 bench/).
 *
 *   npm run bench:keystore          (tsc -b && tsx bench/keystore.ts)
 *
 * Baseline: a raw RFC 3394 unwrap with node:crypto (`id-aes256-wrap`), the operation every backend
 * ends in. Backends:
 *   file    FileKeyStore.unwrapKey (in-process AES-KW plus key checks and SecretKeyBytes handling)
 *   pkcs11  Pkcs11KeyStore.unwrapKey on SoftHSM2 (C_UnwrapKey into a session object, C_GetAttributeValue,
 *           C_DestroyObject), when /usr/lib/softhsm/libsofthsm2.so is installed
 *   kyok    KyokKeyStore.unwrapKey against `tresor kyok serve` in a child process over loopback TLS 1.3
 *           with client certificates: token verification (ES256), policy, revocation check, decision
 *           log line, file keystore behind it. Measured with the client cache off (every unwrap asks
 *           the server) and with the default 500 ms cache.
 * Each figure is the median of 3 runs of 1 s, alternating with baseline runs so both see the same
 * background load. Test-only keys and certificates are generated at run time.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  FileKeyStore,
  KyokKeyStore,
  Pkcs11KeyStore,
  SecretKeyBytes,
  type KeyStore,
  type WrappedKey,
} from '@tresor/keystore';
import {
  TEST_ISSUER,
  TEST_MEASUREMENT,
  createTestPki,
  createTestTrustService,
} from '../test/integration/keystore-pki.js';

const RUNS = 3;
const RUN_MS = 1000;
const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const bin = fileURLToPath(new URL('../apps/cli/bin/tresor.js', import.meta.url));

const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

/** Operations per second of `op` in one run of RUN_MS, `inFlight` at a time. */
async function runOnce(op: () => Promise<void> | void, inFlight: number): Promise<number> {
  let count = 0;
  const start = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() - start < RUN_MS) {
      await op();
      count += 1;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return (count * 1000) / (performance.now() - start);
}

interface Paired {
  readonly rate: number;
  readonly baseline: number;
}

/**
 * Median rate of `op` and of the baseline over RUNS alternating runs (baseline, op, baseline, op, …),
 * so both see the same background load on a shared machine; the ratio is the robust figure.
 */
async function paired(op: () => Promise<void> | void, baseline: () => void, inFlight = 1): Promise<Paired> {
  const rates: number[] = [];
  const baselines: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    baselines.push(await runOnce(baseline, 1));
    rates.push(await runOnce(op, inFlight));
  }
  return { rate: median(rates), baseline: median(baselines) };
}

function unwrapOp(store: KeyStore, wrapped: WrappedKey): () => Promise<void> {
  return async () => {
    (await store.unwrapKey(wrapped)).dispose();
  };
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tresor-bench-keystore-'));
  const rows: [string, Paired | null][] = [];
  let server: ChildProcess | undefined;
  try {
    // Baseline: raw RFC 3394 unwrap.
    const kek = randomBytes(32);
    const dataKey = randomBytes(32);
    const wrapIv = Buffer.from('a6a6a6a6a6a6a6a6', 'hex');
    const w = createCipheriv('id-aes256-wrap', kek, wrapIv);
    const rawWrapped = Buffer.concat([w.update(dataKey), w.final()]);
    const baseline = (): void => {
      const d = createDecipheriv('id-aes256-wrap', kek, wrapIv);
      Buffer.concat([d.update(rawWrapped), d.final()]).fill(0);
    };

    // file
    const file = await FileKeyStore.open({
      path: join(dir, 'keys.json'),
      passphrase: SecretKeyBytes.copyOf(Buffer.from('bench passphrase (test only)')),
      mode: 'development',
      createIfMissing: true,
      scryptLog2N: 14,
    });
    const fileKek = await file.createKek();
    const fileWrapped = await file.wrapKey(fileKek.id, SecretKeyBytes.copyOf(dataKey));
    rows.push(['file: FileKeyStore', await paired(unwrapOp(file, fileWrapped), baseline)]);
    await file.close();

    // pkcs11 on SoftHSM2, in a private token directory.
    let softhsm: Paired | null = null;
    if (existsSync(SOFTHSM_MODULE) && spawnSync('softhsm2-util', ['--version']).status === 0) {
      await mkdir(join(dir, 'tokens'));
      const conf = join(dir, 'softhsm2.conf');
      await writeFile(
        conf,
        `directories.tokendir = ${join(dir, 'tokens')}\nobjectstore.backend = file\nlog.level = ERROR\n`,
      );
      process.env.SOFTHSM2_CONF = conf;
      spawnSync(
        'softhsm2-util',
        ['--init-token', '--free', '--label', 'bench', '--pin', '1234', '--so-pin', '5678'],
        {
          stdio: 'ignore',
        },
      );
      const hsm = await Pkcs11KeyStore.open({
        module: SOFTHSM_MODULE,
        tokenLabel: 'bench',
        pin: SecretKeyBytes.copyOf(Buffer.from('1234')),
      });
      const hsmKek = await hsm.createKek();
      softhsm = await paired(
        unwrapOp(hsm, await hsm.wrapKey(hsmKek.id, SecretKeyBytes.copyOf(dataKey))),
        baseline,
      );
      await hsm.close();
    }

    // kyok: the reference server in its own process, over loopback TLS 1.3 with mTLS.
    const [pki, trust] = await Promise.all([createTestPki(), createTestTrustService()]);
    await writeFile(join(dir, 'server.pem'), pki.server.cert);
    await writeFile(join(dir, 'server.key'), pki.server.key, { mode: 0o600 });
    await writeFile(join(dir, 'ca.pem'), pki.caCert);
    await writeFile(join(dir, 'jwks.json'), JSON.stringify(trust.jwks));
    await writeFile(
      join(dir, 'policy.json'),
      JSON.stringify({
        tenants: { bench: { allowedMeasurements: { measurement: [TEST_MEASUREMENT] }, residency: 'CH' } },
      }),
    );
    await writeFile(
      join(dir, 'server.json'),
      JSON.stringify({
        mode: 'development',
        listen: { host: '127.0.0.1', port: 0 },
        tls: { cert: 'server.pem', key: 'server.key', clientCa: 'ca.pem' },
        stateDir: 'kyok-state',
        keystore: {
          backend: 'file',
          path: 'kyok-state/keys.json',
          passphraseEnv: 'BENCH_KYOK_PASSPHRASE',
          scryptLog2N: 14,
        },
        trustService: { jwks: 'jwks.json', issuer: TEST_ISSUER },
        admins: [pki.client.fingerprint],
        policy: 'policy.json',
      }),
    );
    const child = spawn(process.execPath, [bin, 'kyok', 'serve', '--config', join(dir, 'server.json')], {
      env: { ...process.env, BENCH_KYOK_PASSPHRASE: 'bench kyok passphrase (test only)' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    server = child;
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /listening on (https:\/\/\S+)/.exec(out);
        if (match !== null) resolve(match[1]!);
      });
      child.once('exit', (code) => {
        reject(new Error(`tresor kyok serve exited with ${String(code)}`));
      });
    });
    const token = await trust.mint(undefined, { ttlSeconds: 3600 });
    const kyok = (ttl: number): KyokKeyStore =>
      new KyokKeyStore({
        url,
        tenant: 'bench',
        tls: { cert: pki.client.cert, key: pki.client.key, ca: pki.caCert },
        attestationToken: () => Promise.resolve(token),
        unwrapCacheTtlMs: ttl,
      });
    const admin = kyok(0);
    const kyokKek = await admin.createKek();
    const kyokWrapped = await admin.wrapKey(kyokKek.id, SecretKeyBytes.copyOf(dataKey));
    const uncached = kyok(0);
    rows.push(['pkcs11: Pkcs11KeyStore on SoftHSM2 2.6', softhsm]);
    rows.push([
      'kyok: loopback TLS 1.3 + mTLS, cache off, 1 in flight',
      await paired(unwrapOp(uncached, kyokWrapped), baseline),
    ]);
    rows.push([
      'kyok: loopback TLS 1.3 + mTLS, cache off, 16 in flight',
      await paired(unwrapOp(uncached, kyokWrapped), baseline, 16),
    ]);
    const cached = kyok(500);
    rows.push([
      'kyok: default 500 ms client cache (hits)',
      await paired(unwrapOp(cached, kyokWrapped), baseline),
    ]);
    await Promise.all([admin.close(), uncached.close(), cached.close()]);

    console.log(
      `# Keystore unwraps per second (${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, load ${loadavg()[0]!.toFixed(2)}, Node ${process.version})\n`,
    );
    console.log('| backend | unwraps/s | baseline unwraps/s (same runs) | ratio to baseline |');
    console.log('|---|---|---|---|');
    for (const [name, result] of rows) {
      if (result === null) console.log(`| ${name} | not installed (apt-get install softhsm2) | | |`);
      else
        console.log(
          `| ${name} | ${fmt(result.rate)} | ${fmt(result.baseline)} | ${(result.rate / result.baseline).toFixed(4)} |`,
        );
    }
    console.log(
      '\nbaseline: node:crypto createDecipheriv(id-aes256-wrap) of one 40-byte RFC 3394 block, in this process.',
    );
  } finally {
    server?.kill('SIGTERM');
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
