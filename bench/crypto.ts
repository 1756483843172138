/**
 * Crypto benchmarks, each against a baseline measured in the same run (DESIGN.md §4 bench/).
 *
 *   npm run bench:crypto            (tsc -b && tsx bench/crypto.ts)
 *   BENCH_MODEL_MIB=64 npm run bench:crypto    (smaller model file for a quick look)
 *
 * 1. Sealed models: seal and unseal of a 256 MiB file (file to file, temp files under
 *    os.tmpdir()), against `openssl speed -evp aes-256-gcm -seconds 3` (one core, 16 KiB blocks).
 * 2. OHTTP (RFC 9458): request + response round trips per second, client and gateway in one
 *    process, against `openssl speed ecdhx25519` (a round trip costs three X25519 scalar
 *    multiplications: the client's key generation and key agreement, the gateway's agreement).
 * 3. Chunked OHTTP: cost per 64-byte response chunk (one SSE event), sealed by the gateway and
 *    opened by the client, against OpenSSL's AES-256-GCM on 64-byte blocks.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
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
  byteSourceFromBytes,
} from '@tresor/crypto';
import { FileByteSource, nodeSha256, sealModelFile, unsealModelFile } from '@tresor/crypto/node';

const MIB = 1024 * 1024;
const MODEL_BYTES = Number(process.env.BENCH_MODEL_MIB ?? '256') * MIB;
const RUNS = 3;

interface Timing {
  readonly seconds: number;
  /** CPU seconds of all threads (main + libuv pool) during the run. */
  readonly cpuSeconds: number;
}

async function timed(work: () => Promise<unknown>): Promise<Timing> {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return { seconds, cpuSeconds: (used.user + used.system) / 1e6 };
}

const gbps = (bytes: number, seconds: number): number => bytes / seconds / 1e9;
const fmt = (value: number, digits = 2): string => value.toFixed(digits);
const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

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

function sha256Throughput(bytes: number): number {
  const block = new Uint8Array(4 * MIB);
  const start = process.hrtime.bigint();
  const hash = nodeSha256();
  for (let done = 0; done < bytes; done += block.length) hash.update(block);
  hash.digest();
  return bytes / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** Runs `work` RUNS times, after `reset`, and keeps the timings. */
async function repeat(reset: () => void, work: () => Promise<unknown>): Promise<Timing[]> {
  const timings: Timing[] = [];
  for (let run = 0; run < RUNS; run++) {
    reset();
    timings.push(await timed(work));
  }
  return timings;
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

async function drain(pieces: AsyncIterable<Uint8Array>): Promise<Uint8Array[]> {
  const kept: Uint8Array[] = [];
  for await (const piece of pieces) kept.push(piece);
  return kept;
}

async function benchSealedModels(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'tresor-bench-'));
  const file = (name: string): string => join(dir, name);
  const remove =
    (...names: string[]) =>
    () => {
      for (const name of names) rmSync(file(name), { force: true });
    };
  try {
    writeRandomFile(file('model.bin'), MODEL_BYTES);
    const raw = randomFillSync(new Uint8Array(32));
    const key = await ModelKey.import(raw);
    raw.fill(0);

    // File to file, as `tresor model seal|unseal` does it; durable: false because the fsync
    // measures the disk, not the crypto (the CLI does fsync).
    const seal = await repeat(remove('model.tresor'), () =>
      sealModelFile({ input: file('model.bin'), output: file('model.tresor'), key, durable: false }),
    );
    const unseal = await repeat(remove('model.out'), () =>
      unsealModelFile({ input: file('model.tresor'), output: file('model.out'), key, durable: false }),
    );
    const copy = await repeat(remove('copy.bin'), () => copyFile(file('model.bin'), file('copy.bin')));

    // The same pipelines on bytes in memory: what the crypto costs without file I/O.
    const plaintext = readFileSync(file('model.bin'));
    const sealedBytes = readFileSync(file('model.tresor'));
    const digest = createHash('sha256').update(plaintext).digest();
    const sealInMemory = await repeat(
      () => undefined,
      () =>
        drain(
          sealModel(byteSourceFromBytes(plaintext), {
            key,
            plaintextLength: plaintext.length,
            plaintextSha256: digest,
            sha256: nodeSha256,
          }),
        ),
    );
    const unsealInMemory = await repeat(
      () => undefined,
      async () =>
        drain((await openSealedModel(byteSourceFromBytes(sealedBytes))).unseal(key, { sha256: nodeSha256 })),
    );

    const aes = aesSpeed().get(16384)!;
    const sha = opensslSpeed('sha256', 3).get(16384)!;
    const nodeSha = sha256Throughput(MODEL_BYTES);
    const row = (name: string, timings: readonly Timing[]): string => {
      const best = Math.min(...timings.map((t) => t.seconds));
      const med = median(timings.map((t) => t.seconds));
      const cpuPerGb = median(timings.map((t) => t.cpuSeconds)) / (MODEL_BYTES / 1e9);
      return `| ${name} | ${fmt(gbps(MODEL_BYTES, best))} | ${fmt(gbps(MODEL_BYTES, med))} | ${fmt(cpuPerGb)} | ${fmt((100 * gbps(MODEL_BYTES, best) * 1e9) / aes, 0)} % |`;
    };
    console.log(
      `\n## Sealed models: ${String(MODEL_BYTES / MIB)} MiB model, 4 MiB chunks, best and median of ${String(RUNS)}\n`,
    );
    console.log(
      '| operation | best GB/s | median GB/s | CPU s per GB (all threads) | best vs openssl AES-256-GCM 16 KiB |',
    );
    console.log('|---|---|---|---|---|');
    console.log(row('seal, file to file (SHA-256 pass, then AES-GCM + SHA-256 check)', seal));
    console.log(row('unseal, file to file (AES-GCM + SHA-256)', unseal));
    console.log(row('seal, in memory (second pass only: AES-GCM + SHA-256)', sealInMemory));
    console.log(row('unseal, in memory (AES-GCM + SHA-256)', unsealInMemory));
    console.log(row('plain file copy, 4 MiB reads and writes (no crypto)', copy));
    console.log('\n| baseline (same run) | GB/s |');
    console.log('|---|---|');
    console.log(
      `| openssl speed -evp aes-256-gcm -seconds 3, 16384-byte blocks, 1 core | ${fmt(aes / 1e9)} |`,
    );
    console.log(`| openssl speed -evp sha256 -seconds 3, 16384-byte blocks, 1 core | ${fmt(sha / 1e9)} |`);
    console.log(`| node:crypto createHash('sha256'), 4 MiB updates | ${fmt(nodeSha / 1e9)} |`);
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
  const roundTrip = async (): Promise<void> => {
    const { encapsulatedRequest, context } = await encapsulateRequest(gatewayKey.config, request);
    const received = await decapsulateRequest(keys, encapsulatedRequest);
    const answer = await received.responder.encapsulateResponse(response);
    await context.decapsulateResponse(answer);
  };
  const sequential = await perSecond(3, roundTrip);
  const parallel = await perSecond(3, () => Promise.all(Array.from({ length: 8 }, roundTrip)));
  const x25519 = opensslX25519(3);
  console.log('\n## OHTTP round trips (client encapsulate, gateway decapsulate + respond, client open)\n');
  console.log('| measure | value |');
  console.log('|---|---|');
  console.log(`| round trips/s, one at a time | ${fmt(sequential, 0)} |`);
  console.log(`| round trips/s, 8 in flight | ${fmt(parallel * 8, 0)} |`);
  console.log(`| openssl speed ecdhx25519 (1 core), key agreements/s | ${fmt(x25519, 0)} |`);
  console.log(
    `| one at a time vs openssl, counting the 3 X25519 operations of a round trip | ${fmt((100 * 3 * sequential) / x25519, 0)} % |`,
  );
}

async function benchChunkedOhttp(): Promise<void> {
  const gatewayKey = createGatewayKey(1, await HpkeKeyPair.generate());
  const keys = gatewayKeysById([gatewayKey]);
  const client = await beginChunkedOhttpClientExchange(gatewayKey.config);
  const gateway = await beginChunkedOhttpGatewayExchange(keys, client.header);
  const { responseNonce, responseSealer } = await gateway.beginResponse();
  const opener = await client.openResponse(responseNonce);
  const event = randomFillSync(new Uint8Array(64));
  const count = 20_000;
  const wire: Uint8Array[] = [];
  const seal = await timed(async () => {
    for (let i = 0; i < count; i++) wire.push(await responseSealer.sealChunk(event));
  });
  const open = await timed(async () => {
    for (const framed of wire) await opener.openChunk(framed.subarray(readVarint(framed, 0).next));
  });
  const aes64 = aesSpeed().get(64)!;
  const micros = (t: Timing): number => (t.seconds * 1e6) / count;
  console.log(`\n## Chunked OHTTP: ${String(count)} response chunks of 64 bytes, one at a time\n`);
  console.log('| measure | µs per chunk | chunks/s |');
  console.log('|---|---|---|');
  console.log(`| gateway seals (sealChunk) | ${fmt(micros(seal))} | ${fmt(1e6 / micros(seal), 0)} |`);
  console.log(`| client opens (openChunk) | ${fmt(micros(open))} | ${fmt(1e6 / micros(open), 0)} |`);
  console.log(
    `| openssl speed -evp aes-256-gcm, 64-byte blocks (1 core) | ${fmt((64 / aes64) * 1e6, 3)} | ${fmt(aes64 / 64, 0)} |`,
  );
  console.log(`| wire overhead per chunk | ${String(wire[0]!.length - event.length)} bytes | |`);
}

async function main(): Promise<void> {
  const cpu = cpus();
  console.log(
    `# bench/crypto.ts\n\nmachine: ${String(cpu.length)} x ${cpu[0]?.model ?? 'unknown CPU'}, node ${process.version}, ` +
      `OpenSSL ${process.versions.openssl}; load average at start ${loadavg()
        .map((l) => fmt(l))
        .join(' ')}`,
  );
  await benchSealedModels();
  await benchOhttpRoundTrips();
  await benchChunkedOhttp();
  console.log(
    `\nload average at end ${loadavg()
      .map((l) => fmt(l))
      .join(' ')}`,
  );
}

await main();
