/**
 * Full RCAR key releases per second over TLS on loopback (issue #6), against a bare fastify TLS echo
 * measured in the same run:
 *
 *   npm run bench:trust                  (tsc -b && tsx bench/trust.ts)
 *   BENCH_SECONDS=5 BENCH_CONCURRENCY=8,16,32 npm run bench:trust   (flows in flight, one row pair each)
 *   BENCH_WARMUP_SECONDS=3 npm run bench:trust                      (releases before measuring)
 *   BENCH_PROFILE_DIR=/tmp/prof npm run bench:trust                 (V8 CPU profile of the server process)
 *
 * The servers run in a child process (one Node thread, as a trust service replica does) and the
 * clients in this one, so the two sides do not share an event loop. The trust service is the real
 * deployment (`startTrustService`: file keystore, SQLite audit log, signed documents, admin API, mesh
 * CA), set up through signed admin requests: reference values for the sample measurement, the sample
 * machine in the residency inventory, a resource and a Cedar policy. One release = POST /kbs/v0/auth →
 * POST /kbs/v0/attest (sample evidence bound to a fresh ECDH key) → GET /kbs/v0/resource (JWE
 * decrypted and compared with the stored secret). The echo baseline replays the three round trips
 * of one recorded release (same methods, headers and request bodies, answers of the same sizes,
 * same keep-alive TLS 1.3 transport, one connection per flow) against a bare fastify route.
 * Target: >= 300 releases/s.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { fastify } from 'fastify';
import { SampleSigningKey } from '@tresor/attestation';
import { FileKeyStore, SecretKeyBytes } from '@tresor/keystore';
import {
  KbsClient,
  generateAdminKey,
  httpsTransport,
  parseDeploymentConfig,
  sampleAttester,
  signAdminRequest,
  startTrustService,
  type KbsTransport,
} from '@tresor/trust';
import { createTestPki } from '../test/support/test-pki.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? '5');
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? '3');
const CONCURRENCIES = (process.env.BENCH_CONCURRENCY ?? '8,16,32').split(',').map(Number);
const MAX_CONCURRENCY = Math.max(...CONCURRENCIES);
const MEASUREMENT = new Uint8Array(48).fill(0x42);
const SECRET = new TextEncoder().encode('bench model key 0123456789abcdef');
const RESOURCE = 'kbs:///bench/key/model';
const PASSPHRASE_ENV = 'TRESOR_BENCH_PASSPHRASE';

interface ServerInfo {
  readonly trustUrl: string;
  readonly echoUrl: string;
  readonly ca: string;
}

/** Child: the trust service and the echo server; prints their URLs, stops when stdin closes. */
async function serve(sampleVerifyKeyHex: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'tresor-bench-trust-'));
  const pki = await createTestPki('bench');
  const env = { [PASSPHRASE_ENV]: 'bench passphrase only' };
  const store = await FileKeyStore.open({
    path: join(dir, 'keys.tresor'),
    passphrase: SecretKeyBytes.copyOf(new TextEncoder().encode(env[PASSPHRASE_ENV])),
    mode: 'development',
    createIfMissing: true,
    scryptLog2N: 14,
  });
  const keys = {
    tokenSigning: [(await store.createSigningKey('ES256')).id],
    documentSigning: (await store.createSigningKey('ES256')).id,
    meshCa: (await store.createSigningKey('ES256')).id,
    auditCheckpoint: (await store.createSigningKey('ES256')).id,
    resourceKek: (await store.createKek()).id,
  };
  await store.close();
  const admin = await generateAdminKey('bench-admin');
  const config = await parseDeploymentConfig(
    {
      service: {
        issuer: 'trust.bench',
        server: { port: 0, tls: { cert: pki.server.cert, key: pki.server.key }, logLevel: 'warn' },
        kbs: { maxSessions: 100_000 },
        attestation: { sampleVerifyKey: sampleVerifyKeyHex, policy: { allowSampleTee: true } },
      },
      keystore: { backend: 'file', path: join(dir, 'keys.tresor'), passphraseEnv: PASSPHRASE_ENV },
      stateDir: join(dir, 'state'),
      keys,
      admin: { keys: [{ id: admin.id, jwk: admin.publicJwk }] },
    },
    dir,
  );
  const service = await startTrustService(config, { env });
  const transport = httpsTransport(service.url, { ca: pki.ca });
  const adminCall = async (operation: string, request: unknown): Promise<void> => {
    const path = `/admin/v0/${operation}`;
    const jws = await signAdminRequest(admin, { audience: 'trust.bench', path, request, now: new Date() });
    const answer = await transport.request(
      'POST',
      path,
      { 'content-type': 'application/jose' },
      new TextEncoder().encode(jws),
    );
    if (answer.status !== 200)
      throw new Error(`${operation}: HTTP ${answer.status} ${new TextDecoder().decode(answer.body)}`);
  };
  await adminCall('reference-values/put', {
    component: 'serving',
    release: 'bench',
    tee: 'sample',
    measurements: { measurement: [Buffer.from(MEASUREMENT).toString('hex')] },
  });
  await adminCall('inventory/replace', {
    hardware: [{ id: sampleVerifyKeyHex, kind: 'sample-machine', jurisdiction: 'CH' }],
  });
  await adminCall('resources/put', {
    path: 'bench/key/model',
    value: Buffer.from(SECRET).toString('base64'),
  });
  await adminCall('resource-policy/set', {
    policy:
      'permit(principal, action == Tresor::Action::"read", resource) when { principal has component && principal.component == "serving" && principal has residency && principal.residency == "CH" };',
  });
  transport.close();

  const echo = fastify({
    https: { cert: pki.server.cert, key: pki.server.key, minVersion: 'TLSv1.3' },
    logger: false,
  });
  echo.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, body, done) => {
    done(null, body);
  });
  // Answers with as many bytes as the path asks for: the size of the trust service's answer.
  const answers = new Map<number, Buffer>();
  echo.route({
    method: ['GET', 'POST'],
    url: '/echo/:bytes',
    handler: (request, reply) => {
      const bytes = Number((request.params as { bytes: string }).bytes);
      let answer = answers.get(bytes);
      if (answer === undefined) answers.set(bytes, (answer = Buffer.alloc(bytes, 0x61)));
      return reply.type('application/json').send(answer);
    },
  });
  const echoUrl = await echo.listen({ host: '127.0.0.1', port: 0 });

  const info: ServerInfo = { trustUrl: service.url, echoUrl, ca: pki.ca };
  process.stdout.write(`${JSON.stringify(info)}\n`);
  process.stdin.resume();
  await new Promise((resolve) => process.stdin.once('end', resolve));
  await echo.close();
  await service.close();
  await rm(dir, { recursive: true, force: true });
}

interface RecordedExchange {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array | undefined;
  readonly answerBytes: number;
}

/** Passes requests through, noting each one and the size of its answer. */
function recordingTransport(inner: KbsTransport, log: RecordedExchange[]): KbsTransport {
  return {
    async request(method, path, headers, body) {
      const answer = await inner.request(method, path, headers, body);
      log.push({ method, path, headers: { ...headers }, body, answerBytes: answer.body.length });
      return answer;
    },
    close: () => {
      inner.close();
    },
  };
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU time (ms, all threads) a process has used so far, from /proc/<pid>/stat (utime + stime). */
function processCpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
}

/**
 * Runs `flow` in `concurrency` loops for `seconds`; returns completions per second, latencies, and
 * the CPU time per completion of the server process and of this (client) process.
 */
async function measure(
  concurrency: number,
  seconds: number,
  flow: (worker: number) => Promise<void>,
  serverPid: number,
) {
  const latencies: number[] = [];
  const server0 = processCpuMs(serverPid);
  const client0 = processCpuMs(process.pid);
  const deadline = performance.now() + seconds * 1000;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, worker) => {
      while (performance.now() < deadline) {
        const t = performance.now();
        await flow(worker);
        latencies.push(performance.now() - t);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number): number =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  const count = latencies.length;
  return {
    count,
    perSecond: count / elapsed,
    p50: at(0.5),
    p99: at(0.99),
    serverCpuMs: (processCpuMs(serverPid) - server0) / count,
    clientCpuMs: (processCpuMs(process.pid) - client0) / count,
  };
}

async function main(): Promise<void> {
  const sampleKey = SampleSigningKey.generate();
  const profile =
    process.env.BENCH_PROFILE_DIR === undefined
      ? []
      : ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`];
  const child = spawn(
    process.execPath,
    [...process.execArgv, ...profile, fileURLToPath(import.meta.url), 'serve', sampleKey.verifyKey.hex],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const info = await new Promise<ServerInfo>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', (line) => {
      resolve(JSON.parse(line) as ServerInfo);
    });
    child.once('exit', (code) => {
      reject(new Error(`the server process exited (${code})`));
    });
  });
  const pid = child.pid ?? 0;
  try {
    const expected = Buffer.from(SECRET).toString('hex');
    const clients = Array.from(
      { length: MAX_CONCURRENCY },
      () =>
        new KbsClient({
          url: info.trustUrl,
          attester: sampleAttester({ signingKey: sampleKey, measurement: MEASUREMENT }),
          tls: { ca: info.ca },
        }),
    );
    // One release through a recording transport: what the echo baseline replays.
    const exchanges: RecordedExchange[] = [];
    const recorder = new KbsClient({
      url: info.trustUrl,
      attester: sampleAttester({ signingKey: sampleKey, measurement: MEASUREMENT }),
      transport: recordingTransport(httpsTransport(info.trustUrl, { ca: info.ca }), exchanges),
    });
    await recorder.attest();
    await recorder.getResource(RESOURCE);
    recorder.close();
    if (exchanges.length !== 3) throw new Error(`a release took ${exchanges.length} round trips, not 3`);
    const release = async (worker: number): Promise<void> => {
      const client = clients[worker]!;
      await client.attest();
      const secret = await client.getResource(RESOURCE);
      if (Buffer.from(secret).toString('hex') !== expected)
        throw new Error('a client received the wrong secret');
    };
    const transports: KbsTransport[] = Array.from({ length: MAX_CONCURRENCY }, () =>
      httpsTransport(info.echoUrl, { ca: info.ca }),
    );
    const echo = async (worker: number): Promise<void> => {
      const t = transports[worker]!;
      for (const exchange of exchanges) {
        const answer = await t.request(
          exchange.method,
          `/echo/${exchange.answerBytes}`,
          exchange.headers,
          exchange.body,
        );
        if (answer.status !== 200 || answer.body.length !== exchange.answerBytes)
          throw new Error(`echo answered ${answer.status} with ${answer.body.length} bytes`);
      }
    };
    const sizes = exchanges
      .map((e) => `${e.method} ${e.path} ${e.body?.length ?? 0} B -> ${e.answerBytes} B`)
      .join(', ');

    // Warm-up: TLS sessions, keep-alive connections, and the JIT (V8 and the Cedar wasm module are
    // still compiling for the first seconds; a trust service runs for days).
    await measure(MAX_CONCURRENCY, WARMUP_SECONDS, release, pid);
    await measure(MAX_CONCURRENCY, 1, echo, pid);
    const row = (name: string, r: Awaited<ReturnType<typeof measure>>, ratio: string): string =>
      `| ${name.padEnd(34)} | ${r.perSecond.toFixed(0).padStart(7)} | ${r.p50.toFixed(1).padStart(8)} | ${r.p99.toFixed(1).padStart(8)} | ${r.serverCpuMs.toFixed(2).padStart(10)} | ${r.clientCpuMs.toFixed(2).padStart(10)} | ${ratio.padStart(6)} |`;
    const load = loadavg()
      .map((l) => l.toFixed(1))
      .join(' ');
    console.log(
      `Node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), load ${load} at start`,
    );
    console.log(`${SECONDS} s per row, servers in a child process, clients here`);
    console.log(`round trips (replayed by the echo): ${sizes}\n`);
    console.log(
      '| case (flows in flight)             |   per s | p50 (ms) | p99 (ms) | server CPU | client CPU |  ratio |',
    );
    console.log(
      '|                                    |         |          |          |  ms / flow |  ms / flow |        |',
    );
    console.log(
      '| ---------------------------------- | ------: | -------: | -------: | ---------: | ---------: | -----: |',
    );
    let best = 0;
    for (const concurrency of CONCURRENCIES) {
      const releases = await measure(concurrency, SECONDS, release, pid);
      const echoes = await measure(concurrency, SECONDS, echo, pid);
      best = Math.max(best, releases.perSecond);
      console.log(
        row(
          `RCAR key release (${concurrency})`,
          releases,
          (releases.perSecond / echoes.perSecond).toFixed(3),
        ),
      );
      console.log(row(`bare fastify TLS echo x3 (${concurrency})`, echoes, '1'));
    }
    console.log(`\ntarget >= 300 releases/s: ${best >= 300 ? 'met' : 'missed'} (best ${best.toFixed(0)}/s)`);
    for (const c of clients) c.close();
    for (const t of transports) t.close();
  } finally {
    child.stdin.end();
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

if (process.argv[2] === 'serve') await serve(process.argv[3] ?? '');
else await main();
