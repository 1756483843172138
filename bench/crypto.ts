/**
 * Crypto benchmarks, each against a baseline measured in the same run (DESIGN.md §4 bench/).
 *
 *   npm run bench:crypto                       (tsc -b && tsx bench/crypto.ts)
 *   BENCH_MODEL_MIB=64 BENCH_RUNS=3 npm run bench:crypto    (smaller and fewer, for a quick look)
 *   BENCH_SECTIONS=ohttp,chunked npm run bench:crypto       (only some sections)
 *
 * 1. Sealed models: seal and unseal of a 256 MiB file, file to file (temporary files under
 *    os.tmpdir()), with `@tresor/crypto/node` (node:crypto, SHA-256 on a worker thread or inline)
 *    and with the browser-safe WebCrypto core over the same files, against
 *    `openssl speed -evp aes-256-gcm` and `-evp sha256` (one core, 16 KiB blocks). Every run times
 *    each variant once, so all variants see the same background load; medians over BENCH_RUNS.
 * 2. OHTTP (RFC 9458): request + response round trips per second, client and gateway in one
 *    process, against `openssl speed ecdhx25519` (a round trip costs three X25519 scalar
 *    multiplications: the client's key generation and key agreement, the gateway's agreement).
 * 3. Chunked OHTTP: cost per 64-byte response chunk (one SSE event), sealed by the gateway and
 *    opened by the client, with the WebCrypto backend (browser-safe default) and the node:crypto
 *    backend (`nodeOhttpAead`, what serving and gateway use), against OpenSSL's AES-256-GCM on
 *    64-byte blocks. bench/streaming.ts measures the whole seal → open → re-seal → open chain.
 */
import { spawnSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HpkeKeyPair,
  ModelKey,
  beginChunkedOhttpClientExchange,
  beginChunkedOhttpGatewayExchange,
  createGatewayKey,
  decapsulateRequest,
  encapsulateRequest,
  gatewayKeysById,
  openSealedModel,
  readVarint,
  sealModel,
  webCryptoOhttpAead,
  type OhttpAeadBackend,
} from '@tresor/crypto';
import {
  FileByteSource,
  nodeOhttpAead,
  nodeSha256,
  sealModelFile,
  unsealModelFile,
} from '@tresor/crypto/node';

const MIB = 1024 * 1024;
const MODEL_BYTES = Number(process.env.BENCH_MODEL_MIB ?? '256') * MIB;
const RUNS = Number(process.env.BENCH_RUNS ?? '5');
/** BENCH_SECTIONS=ohttp,chunked runs only those sections (default: models,ohttp,chunked). */
const SECTIONS = new Set((process.env.BENCH_SECTIONS ?? 'models,ohttp,chunked').split(','));

interface Timing {
  readonly seconds: number;
  /** CPU seconds of all threads (main, libuv pool, workers) during the run. */
  readonly cpuSeconds: number;
  /** CPU seconds of the main thread alone (NaN where /proc is missing). */
  readonly mainCpuSeconds: number;
}

/**
 * CPU seconds of the main thread, from Linux's /proc/self/task/<pid>/stat (utime and stime, fields
 * 14 and 15, in USER_HZ = 100 ticks per second on Linux): it says how much of the work is on the
 * critical path of the thread that runs AES-GCM.
 */
function mainThreadCpuSeconds(): number {
  try {
    const stat = readFileSync(`/proc/self/task/${String(process.pid)}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return Number.NaN;
  }
}

async function timed(work: () => Promise<unknown>): Promise<Timing> {
  const cpu = process.cpuUsage();
  const mainCpu = mainThreadCpuSeconds();
  const start = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return {
    seconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    mainCpuSeconds: mainThreadCpuSeconds() - mainCpu,
  };
}

const fmt = (value: number, digits = 2): string => value.toFixed(digits);
const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const load = (): string =>
  loadavg()
    .map((l) => fmt(l))
    .join(' ');

/**
 * `openssl speed -evp <algorithm>` on one core: bytes per second for each block size
 * (16, 64, 256, 1024, 8192 and 16384 bytes), from its table in 1000s of bytes per second.
 */
function opensslSpeed(algorithm: string, seconds: number): Map<number, number> {
  const result = spawnSync('openssl', ['speed', '-evp', algorithm, '-seconds', String(seconds)], {
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`openssl speed ${algorithm} failed: ${result.stderr}`);
  const lines = result.stdout.split('\n');
  const sizes = [...(lines.find((l) => l.startsWith('type')) ?? '').matchAll(/(\d+) bytes/g)].map((m) =>
    Number(m[1]),
  );
  const cells = lines
    .find((l) => l.toLowerCase().startsWith(`${algorithm.toLowerCase()} `))
    ?.trim()
    .split(/\s+/)
    .slice(-sizes.length);
  if (sizes.at(-1) !== 16384 || cells?.length !== sizes.length || !cells.every((c) => c.endsWith('k'))) {
    throw new Error(`unexpected openssl speed output:\n${result.stdout}`);
  }
  return new Map(sizes.map((size, i) => [size, Number(cells[i]!.slice(0, -1)) * 1000]));
}

/** `openssl speed ecdhx25519`: X25519 key agreements per second on one core. */
function opensslX25519(seconds: number): number {
  const result = spawnSync('openssl', ['speed', '-seconds', String(seconds), 'ecdhx25519'], {
    encoding: 'utf8',
  });
  const match = /ecdh \(X25519\)\s+\S+\s+([\d.]+)/.exec(result.stdout);
  if (result.status !== 0 || match === null)
    throw new Error(`unexpected openssl speed output:\n${result.stdout}`);
  return Number(match[1]);
}

function writeRandomFile(path: string, bytes: number): void {
  const block = new Uint8Array(16 * MIB);
  const fd = openSync(path, 'w');
  try {
    for (let written = 0; written < bytes; written += block.length) {
      randomFillSync(block);
      writeSync(fd, block, 0, Math.min(block.length, bytes - written));
    }
  } finally {
    closeSync(fd);
  }
}

/** Reads `input` and writes `output` in 4 MiB pieces, one write in flight: the file I/O floor. */
async function copyFile(input: string, output: string): Promise<void> {
  const from = await FileByteSource.open(input);
  const to = await open(output, 'wx');
  try {
    for (let piece = await from.read(4 * MIB); piece.length > 0; piece = await from.read(4 * MIB)) {
      await to.write(piece);
    }
  } finally {
    await from.close();
    await to.close();
  }
}

/** Writes every piece a generator yields, in order; returns the generator's value. */
async function writeAll<T>(pieces: AsyncGenerator<Uint8Array, T, undefined>, to: FileHandle): Promise<T> {
  for (;;) {
    const next = await pieces.next();
    if (next.done === true) return next.value;
    await to.write(next.value);
  }
}

/**
 * The browser-safe core over the same files, as `@tresor/crypto/node` did before it had its own
 * engine: a SHA-256 pass, then `sealModel` (WebCrypto AES-GCM in the thread pool, the re-hash on
 * this thread); `unseal` likewise. The reference for what node:crypto and the worker gain.
 */
async function sealWithCore(key: ModelKey, input: string, output: string): Promise<void> {
  const hashing = await FileByteSource.open(input);
  const hash = nodeSha256();
  for (let piece = await hashing.read(4 * MIB); piece.length > 0; piece = await hashing.read(4 * MIB)) {
    hash.update(piece);
  }
  await hashing.close();
  const source = await FileByteSource.open(input);
  const to = await open(output, 'wx');
  try {
    await writeAll(
      sealModel(source, {
        key,
        plaintextLength: source.size,
        plaintextSha256: hash.digest(),
        sha256: nodeSha256,
      }),
      to,
    );
  } finally {
    await source.close();
    await to.close();
  }
}

async function unsealWithCore(key: ModelKey, input: string, output: string): Promise<void> {
  const source = await FileByteSource.open(input);
  const to = await open(output, 'wx');
  try {
    await writeAll((await openSealedModel(source)).unseal(key, { sha256: nodeSha256 }), to);
  } finally {
    await source.close();
    await to.close();
  }
}

async function benchSealedModels(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tresor-bench-'));
  const file = (name: string): string => join(dir, name);
  try {
    writeRandomFile(file('model.bin'), MODEL_BYTES);
    const raw = randomFillSync(new Uint8Array(32));
    const key = await ModelKey.import(raw);
    raw.fill(0);
    // durable: false because an fsync measures the disk, not the crypto (the CLI does fsync).
    const seal = (output: string, parallelHash: boolean) => () =>
      sealModelFile({ input: file('model.bin'), output: file(output), key, durable: false, parallelHash });
    const unseal = (output: string, parallelHash: boolean) => () =>
      unsealModelFile({
        input: file('sealed.tresor'),
        output: file(output),
        key,
        durable: false,
        parallelHash,
      });
    await seal('sealed.tresor', true)();

    const variants: readonly {
      readonly name: string;
      readonly output: string;
      readonly run: () => Promise<unknown>;
    }[] = [
      {
        name: 'seal: node, SHA-256 on a worker thread (default)',
        output: 'a.tresor',
        run: seal('a.tresor', true),
      },
      {
        name: 'unseal: node, SHA-256 on a worker thread (default)',
        output: 'a.out',
        run: unseal('a.out', true),
      },
      { name: 'seal: node, SHA-256 inline (one thread)', output: 'b.tresor', run: seal('b.tresor', false) },
      { name: 'unseal: node, SHA-256 inline (one thread)', output: 'b.out', run: unseal('b.out', false) },
      {
        name: 'seal: browser-safe core (WebCrypto), two passes',
        output: 'c.tresor',
        run: () => sealWithCore(key, file('model.bin'), file('c.tresor')),
      },
      {
        name: 'unseal: browser-safe core (WebCrypto)',
        output: 'c.out',
        run: () => unsealWithCore(key, file('sealed.tresor'), file('c.out')),
      },
      {
        name: 'plain file copy, 4 MiB reads and writes (I/O floor)',
        output: 'copy.bin',
        run: () => copyFile(file('model.bin'), file('copy.bin')),
      },
    ];
    const timings = new Map<string, Timing[]>(variants.map((v) => [v.name, []]));
    for (let run = 0; run < RUNS; run++) {
      for (const variant of variants) {
        rmSync(file(variant.output), { force: true });
        timings.get(variant.name)!.push(await timed(variant.run));
        // The outputs would otherwise fill the page cache and push the input out of it.
        rmSync(file(variant.output), { force: true });
      }
    }

    const aes = aesSpeed().get(16384)!;
    const sha = opensslSpeed('sha256', 3).get(16384)!;
    // One core doing both per byte, and two cores each doing one (SHA-256, the slower, bounds it).
    const oneCore = 1 / (1 / aes + 1 / sha);
    const twoCores = Math.min(aes, sha);
    const percent = (rate: number, of: number): string => `${fmt((100 * rate) / of, 0)} %`;
    console.log(
      `\n## Sealed models: ${String(MODEL_BYTES / MIB)} MiB model, 4 MiB chunks, file to file, median and best of ${String(RUNS)} (variants interleaved)\n`,
    );
    console.log(
      '| operation | median GB/s | best GB/s | CPU s per GB: all threads | main thread | median vs AES-256-GCM | median vs AES+SHA-256, 1 core | median vs SHA-256 (2-core bound) |',
    );
    console.log('|---|---|---|---|---|---|---|---|');
    for (const variant of variants) {
      const list = timings.get(variant.name)!;
      // Bytes per second, like the openssl figures.
      const med = MODEL_BYTES / median(list.map((t) => t.seconds));
      const best = MODEL_BYTES / Math.min(...list.map((t) => t.seconds));
      const cpuPerGb = median(list.map((t) => t.cpuSeconds)) / (MODEL_BYTES / 1e9);
      const mainCpuPerGb = median(list.map((t) => t.mainCpuSeconds)) / (MODEL_BYTES / 1e9);
      console.log(
        `| ${variant.name} | ${fmt(med / 1e9)} | ${fmt(best / 1e9)} | ${fmt(cpuPerGb)} | ${fmt(mainCpuPerGb)} | ${percent(med, aes)} | ${percent(med, oneCore)} | ${percent(med, twoCores)} |`,
      );
    }
    console.log('\n| baseline (same run) | GB/s |');
    console.log('|---|---|');
    console.log(
      `| openssl speed -evp aes-256-gcm -seconds 3, 16384-byte blocks, 1 core | ${fmt(aes / 1e9)} |`,
    );
    console.log(`| openssl speed -evp sha256 -seconds 3, 16384-byte blocks, 1 core | ${fmt(sha / 1e9)} |`);
    console.log(`| AES-256-GCM + SHA-256 on one core: 1 / (1/AES + 1/SHA) | ${fmt(oneCore / 1e9)} |`);
    console.log(`| AES-256-GCM and SHA-256 on two cores: min(AES, SHA) | ${fmt(twoCores / 1e9)} |`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

let aesSpeedCache: Map<number, number> | undefined;
/** One `openssl speed -evp aes-256-gcm -seconds 3` per run, shared by the sections that compare with it. */
function aesSpeed(): Map<number, number> {
  aesSpeedCache ??= opensslSpeed('aes-256-gcm', 3);
  return aesSpeedCache;
}

/** Runs `once` back to back for `seconds` (after a short warm-up) and returns completions per second. */
async function perSecond(seconds: number, once: () => Promise<unknown>): Promise<number> {
  for (let i = 0; i < 50; i++) await once();
  let count = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  while (process.hrtime.bigint() < end) {
    await once();
    count++;
  }
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

async function benchOhttpRoundTrips(): Promise<void> {
  const gatewayKey = createGatewayKey(1, await HpkeKeyPair.generate());
  const keys = gatewayKeysById([gatewayKey]);
  // Sizes of a small chat completion: a 512-byte Binary HTTP request, a 1 KiB response.
  const request = randomFillSync(new Uint8Array(512));
  const response = randomFillSync(new Uint8Array(1024));
  const roundTripWith = (aead: OhttpAeadBackend) => async (): Promise<void> => {
    const { encapsulatedRequest, context } = await encapsulateRequest(gatewayKey.config, request, { aead });
    const received = await decapsulateRequest(keys, encapsulatedRequest, { aead });
    const answer = await received.responder.encapsulateResponse(response);
    await context.decapsulateResponse(answer);
  };
  const roundTrip = roundTripWith(webCryptoOhttpAead);
  const sequential = await perSecond(3, roundTrip);
  const sequentialNode = await perSecond(3, roundTripWith(nodeOhttpAead));
  const parallel = await perSecond(3, () => Promise.all(Array.from({ length: 8 }, roundTrip)));
  const x25519 = opensslX25519(3);
  console.log('\n## OHTTP round trips (client encapsulate, gateway decapsulate + respond, client open)\n');
  console.log('| measure | value |');
  console.log('|---|---|');
  console.log(`| round trips/s, one at a time | ${fmt(sequential, 0)} |`);
  console.log(
    `| round trips/s, one at a time, node:crypto response key schedule and AEAD | ${fmt(sequentialNode, 0)} |`,
  );
  console.log(`| round trips/s, 8 in flight | ${fmt(parallel * 8, 0)} |`);
  console.log(`| openssl speed ecdhx25519 (1 core), key agreements/s | ${fmt(x25519, 0)} |`);
  console.log(
    `| one at a time vs openssl, counting the 3 X25519 operations of a round trip | ${fmt((100 * 3 * sequential) / x25519, 0)} % |`,
  );
}

/** Seals then opens `count` 64-byte response chunks, one at a time, with one AEAD backend. */
async function chunkRound(aead: OhttpAeadBackend, count: number): Promise<{ seal: Timing; open: Timing }> {
  const gatewayKey = createGatewayKey(1, await HpkeKeyPair.generate());
  const keys = gatewayKeysById([gatewayKey]);
  const client = await beginChunkedOhttpClientExchange(gatewayKey.config, { aead });
  const gateway = await beginChunkedOhttpGatewayExchange(keys, client.header, { aead });
  const { responseNonce, responseSealer } = await gateway.beginResponse();
  const opener = await client.openResponse(responseNonce);
  const event = randomFillSync(new Uint8Array(64));
  const wire: Uint8Array[] = [];
  const seal = await timed(async () => {
    for (let i = 0; i < count; i++) wire.push(await responseSealer.sealChunk(event));
  });
  const open = await timed(async () => {
    for (const framed of wire) await opener.openChunk(framed.subarray(readVarint(framed, 0).next));
  });
  return { seal, open };
}

async function benchChunkedOhttp(): Promise<void> {
  const count = 20_000;
  const backends = [webCryptoOhttpAead, nodeOhttpAead];
  const rounds = new Map(backends.map((b) => [b.name, [] as { seal: Timing; open: Timing }[]]));
  // Backends in turn, RUNS times, so both see the same background load.
  for (let run = 0; run < RUNS; run++) {
    for (const backend of backends) rounds.get(backend.name)!.push(await chunkRound(backend, count));
  }
  const aes64 = aesSpeed().get(64)!;
  const micros = (seconds: number): number => (seconds * 1e6) / count;
  console.log(
    `\n## Chunked OHTTP: ${String(count)} response chunks of 64 bytes, one at a time (median of ${String(RUNS)})\n`,
  );
  console.log('| measure | µs per chunk | CPU µs per chunk, all threads | chunks/s |');
  console.log('|---|---|---|---|');
  for (const backend of backends) {
    const list = rounds.get(backend.name)!;
    for (const op of ['seal', 'open'] as const) {
      const wall = micros(median(list.map((r) => r[op].seconds)));
      const cpu = micros(median(list.map((r) => r[op].cpuSeconds)));
      const what = op === 'seal' ? 'gateway seals (sealChunk)' : 'client opens (openChunk)';
      console.log(`| ${what}, ${backend.name} | ${fmt(wall)} | ${fmt(cpu)} | ${fmt(1e6 / wall, 0)} |`);
    }
  }
  console.log(
    `| openssl speed -evp aes-256-gcm, 64-byte blocks (1 core) | ${fmt((64 / aes64) * 1e6, 3)} | | ${fmt(aes64 / 64, 0)} |`,
  );
  console.log('| wire overhead per 64-byte chunk: 2-byte length + 16-byte tag | 18 bytes | | |');
}

async function main(): Promise<void> {
  const cpu = cpus();
  console.log(
    `# bench/crypto.ts\n\nmachine: ${String(cpu.length)} x ${cpu[0]?.model ?? 'unknown CPU'}, node ${process.version}, ` +
      `OpenSSL ${process.versions.openssl}; load average at start ${load()}`,
  );
  if (SECTIONS.has('models')) await benchSealedModels();
  if (SECTIONS.has('ohttp')) await benchOhttpRoundTrips();
  if (SECTIONS.has('chunked')) await benchChunkedOhttp();
  console.log(`\nload average at end ${load()}`);
}

await main();
