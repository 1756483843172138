/**
 * Serving benchmarks, each against a baseline measured in the same run (DESIGN.md §4 bench/).
 *
 *   npm run bench:serving                              (tsc -b && tsx bench/serving.ts)
 *   BENCH_MODEL_MIB=256 BENCH_RUNS=2 npm run bench:serving     (smaller and fewer, for a quick look)
 *
 * 1. Time to ready for a sealed model of BENCH_MODEL_MIB (default 1024) MiB: a real serving
 *    replica (`startServingService`) against an in-process trust service (KBS attestation with the
 *    sample TEE, key release, mesh certificate), unsealing into its private work folder (a tmpfs
 *    when /dev/shm exists, as in production) and handing the file to the engine, versus reading and
 *    "loading" the same plaintext file directly. The engine is `echo`, whose load is one read of the
 *    whole file: llama.cpp cannot load a GiB of random bytes, and for a real GGUF it maps the file,
 *    so its load cost is the same read in both cases. The direct baseline is what a serious
 *    deployment of a plaintext model does: read the whole file once and check its SHA-256 against
 *    the reference value (one streaming pass), then load it (the engine's read). The sealed path
 *    does the same check while it decrypts. Target: ratio ≤ 1.2×.
 * 2. Tokens per second through the sealed path (chunked OHTTP over mTLS, one sealed chunk per SSE
 *    event, receipt) versus iterating the same engine's generation directly, for BENCH_TOKENS
 *    tokens: once with the echo engine at full speed (no model: pure per-token overhead), once
 *    with a per-token delay of BENCH_TOKEN_MS (default 10 ms, about the pace of a large model on a
 *    GPU). Target: ratio ≥ 0.98×.
 *
 * BENCH_SECTIONS=1 runs section 1 only (time to ready), BENCH_SECTIONS=2 section 2 only; default both.
 */
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ModelKey } from '@tresor/crypto';
import { sealModelFile } from '@tresor/crypto/node';
import type { ComponentEvidence } from '@tresor/protocol';
import {
  createEchoEngine,
  sendSealedRequest,
  startServingService,
  type Engine,
  type RunningServingService,
} from '@tresor/serving';
import { SERVING_MEASUREMENT, startServingTrust, type ServingTrust } from '../test/support/serving-trust.js';

const MIB = 1024 * 1024;
const MODEL_MIB = Number(process.env.BENCH_MODEL_MIB ?? '1024');
const RUNS = Number(process.env.BENCH_RUNS ?? '3');
const TOKENS = Number(process.env.BENCH_TOKENS ?? '2000');
const TOKEN_MS = Number(process.env.BENCH_TOKEN_MS ?? '10');
const KEY_PATH = 'models/key/bench';
const SECTIONS = (process.env.BENCH_SECTIONS ?? '1,2').split(',').map((s) => s.trim());

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function writeRandomFile(path: string, bytes: number): Promise<void> {
  const handle = await open(path, 'w');
  try {
    const block = new Uint8Array(8 * MIB);
    for (let written = 0; written < bytes; written += block.length) {
      randomFillSync(block);
      await handle.write(block, 0, Math.min(block.length, bytes - written));
    }
  } finally {
    await handle.close();
  }
}

/** Reads the plaintext once and checks its SHA-256 against the reference value, in one pass. */
async function checkPlaintext(path: string, referenceSha256: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buffer = new Uint8Array(4 * MIB);
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
    }
    if (hash.digest('hex') !== referenceSha256)
      throw new Error('the plaintext does not match its reference value');
  } finally {
    await handle.close();
  }
}

/** The echo engine's load: one read of the whole file. */
async function readThrough(path: string): Promise<void> {
  const handle = await open(path, 'r');
  try {
    const buffer = new Uint8Array(4 * MIB);
    while ((await handle.read(buffer, 0, buffer.length, null)).bytesRead > 0);
  } finally {
    await handle.close();
  }
}

/**
 * Where the start-up spends its time, by the step it reports (polled every millisecond, so each
 * figure is within a millisecond or two): listen = until startServingService returned, then the
 * steps of service.ts (model-keys includes attestation and the reference values, models the
 * unseal, engine the engine's load).
 */
function stepTimeline(serving: RunningServingService, start: number): { summary(): string } {
  // [step, wall ms, process CPU µs] at each change.
  const marks: [string, number, number][] = [['listen', start, 0]];
  const cpuAtStart = process.cpuUsage();
  const cpu = (): number => {
    const used = process.cpuUsage(cpuAtStart);
    return used.user + used.system;
  };
  let last = '';
  const poll = setInterval(() => {
    const step = serving.step();
    if (step !== last) {
      marks.push([step, performance.now(), cpu()]);
      last = step;
    }
  }, 1);
  return {
    summary() {
      clearInterval(poll);
      const end: [string, number, number] = ['end', performance.now(), cpu()];
      return marks
        .map(([name, at, cpuAt], i) => {
          const [, until, cpuUntil] = marks[i + 1] ?? end;
          return name === 'ready'
            ? undefined
            : `${name} ${((until - at) / 1000).toFixed(2)} s/${((cpuUntil - cpuAt) / 1e6).toFixed(2)} s CPU`;
        })
        .filter((part) => part !== undefined)
        .join(', ');
    },
  };
}

function config(
  trust: ServingTrust,
  sealed: string,
  workDir: string,
  engine: Record<string, unknown> = { kind: 'echo' },
) {
  return {
    mode: 'local' as const,
    listen: { host: '127.0.0.1', port: 0 },
    trust: { url: trust.url, caFile: trust.caFile },
    tee: { source: 'sample' as const, signingKeyFile: trust.sampleKeyFile, measurement: SERVING_MEASUREMENT },
    models: [{ id: 'bench', file: sealed, key: `kbs:///${KEY_PATH}` }],
    engine: engine as { kind: 'echo' },
    workDir,
    logLevel: 'silent' as const,
    shutdownGraceMs: 0,
  };
}

async function timeToReady(dir: string): Promise<void> {
  const plain = join(dir, 'model.bin');
  const sealed = join(dir, 'model.tresor');
  const rawKey = new Uint8Array(32);
  randomFillSync(rawKey);
  console.log(`\n## 1. Time to ready, ${MODEL_MIB} MiB model, ${RUNS} runs`);
  await writeRandomFile(plain, MODEL_MIB * MIB);
  const header = await sealModelFile({
    input: plain,
    output: sealed,
    key: await ModelKey.import(rawKey),
    keyId: `kbs:///${KEY_PATH}`,
    durable: false,
  });
  const trust = await startServingTrust({ resources: { [KEY_PATH]: rawKey } });
  const workRoot = existsSync('/dev/shm') ? '/dev/shm' : dir;
  console.log(
    `work folder under ${workRoot}; sealed file and plaintext under ${dir} (page cache warm after the first run)`,
  );
  try {
    const direct: number[] = [];
    const sealedTimes: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const directCpuBefore = process.cpuUsage();
      let start = performance.now();
      await checkPlaintext(plain, header.plaintextSha256);
      await readThrough(plain);
      createEchoEngine({ models: [{ id: 'bench' }] });
      direct.push((performance.now() - start) / 1000);
      const directCpu = process.cpuUsage(directCpuBefore);

      const usageBefore = process.resourceUsage();
      start = performance.now();
      const workDir = await mkdtemp(join(workRoot, 'tresor-bench-'));
      const serving = await startServingService(config(trust, sealed, workDir));
      const steps = stepTimeline(serving, start);
      await serving.ready;
      sealedTimes.push((performance.now() - start) / 1000);
      const usage = process.resourceUsage();
      const phases = steps.summary();
      await serving.close();
      await rm(workDir, { recursive: true, force: true });
      const cpu =
        usage.userCPUTime + usage.systemCPUTime - usageBefore.userCPUTime - usageBefore.systemCPUTime;
      console.log(
        `run ${run + 1}: direct ${direct.at(-1)!.toFixed(2)} s (process CPU ${((directCpu.user + directCpu.system) / 1e6).toFixed(2)} s), ` +
          `sealed ${sealedTimes.at(-1)!.toFixed(2)} s ` +
          `(process CPU ${(cpu / 1e6).toFixed(2)} s, ${usage.minorPageFault - usageBefore.minorPageFault} page faults; ${phases})`,
      );
    }
    const ratio = median(sealedTimes) / median(direct);
    console.log(`| path | median s | GiB/s |\n|---|---|---|`);
    console.log(
      `| read + SHA-256 check + load plaintext | ${median(direct).toFixed(2)} | ${(MODEL_MIB / 1024 / median(direct)).toFixed(2)} |`,
    );
    console.log(
      `| attest + key + unseal + load (ready) | ${median(sealedTimes).toFixed(2)} | ${(MODEL_MIB / 1024 / median(sealedTimes)).toFixed(2)} |`,
    );
    console.log(`ratio sealed / direct: ${ratio.toFixed(2)}x (target <= 1.2x)`);
  } finally {
    await trust.close();
    await rm(plain, { force: true });
    await rm(sealed, { force: true });
  }
}

async function directTokensPerSecond(engine: Engine): Promise<number> {
  const start = performance.now();
  let tokens = 0;
  for await (const event of engine.chat({
    model: 'bench',
    messages: [{ role: 'user', content: 'one two three four five six seven eight' }],
    maxTokens: TOKENS,
  })) {
    if (event.type === 'delta') tokens++;
  }
  return tokens / ((performance.now() - start) / 1000);
}

async function sealedTokensPerSecond(
  serving: RunningServingService,
  trust: ServingTrust,
  gateway: { cert: string; key: string },
  evidence: ComponentEvidence,
): Promise<number> {
  const start = performance.now();
  const answer = await sendSealedRequest({
    url: serving.url,
    keyConfig: evidence.runtimeData.hpkeKeyConfig,
    method: 'POST',
    path: '/v1/chat/completions',
    body: {
      model: 'bench',
      messages: [{ role: 'user', content: 'one two three four five six seven eight' }],
      max_tokens: TOKENS,
      stream: true,
    },
    tls: { ca: trust.meshCa.caCertificatePem, cert: gateway.cert, key: gateway.key },
    serverSpiffeId: 'spiffe://tresor.local/serving/_',
  });
  const seconds = (performance.now() - start) / 1000;
  // One event per token, plus role, finish, [DONE] and the receipt.
  const tokens = answer.chunks.length - 4;
  if (answer.status !== 200 || tokens !== TOKENS) throw new Error(`sealed stream gave ${tokens} tokens`);
  return tokens / seconds;
}

async function tokensPerSecond(dir: string): Promise<void> {
  console.log(`\n## 2. Tokens per second, ${TOKENS} tokens per request, ${RUNS} runs`);
  const rawKey = new Uint8Array(32);
  randomFillSync(rawKey);
  const plain = join(dir, 'small.bin');
  const sealed = join(dir, 'small.tresor');
  await writeFile(plain, new Uint8Array(4096));
  await sealModelFile({
    input: plain,
    output: sealed,
    key: await ModelKey.import(rawKey),
    keyId: `kbs:///${KEY_PATH}`,
    durable: false,
  });
  const trust = await startServingTrust({ resources: { [KEY_PATH]: rawKey } });
  try {
    const gateway = await trust.meshClient('gateway');
    for (const delay of [0, TOKEN_MS]) {
      const engineOptions = { models: [{ id: 'bench' }], responseTokens: TOKENS, interTokenDelayMs: delay };
      const engine = createEchoEngine(engineOptions);
      const serving = await startServingService(config(trust, sealed, await mkdtemp(join(dir, 'work-'))), {
        engineFactory: () => Promise.resolve(createEchoEngine(engineOptions)),
      });
      await serving.ready;
      const component = await attestation(serving, trust);
      const direct: number[] = [];
      const viaSealed: number[] = [];
      for (let run = 0; run < RUNS; run++) {
        direct.push(await directTokensPerSecond(engine));
        viaSealed.push(await sealedTokensPerSecond(serving, trust, gateway, component));
      }
      await serving.close();
      await engine.close();
      const ratio = median(viaSealed) / median(direct);
      console.log(
        `echo engine, ${delay} ms per token: direct ${median(direct).toFixed(0)} tok/s, sealed ${median(viaSealed).toFixed(0)} tok/s, ratio ${ratio.toFixed(3)}x (target >= 0.98x)`,
      );
    }
  } finally {
    await trust.close();
  }
}

async function attestation(serving: RunningServingService, trust: ServingTrust): Promise<ComponentEvidence> {
  const { request } = await import('node:https');
  return new Promise((resolve, reject) => {
    const req = request(
      `${serving.url}/attestation?nonce=${'ab'.repeat(32)}`,
      { ca: trust.meshCa.caCertificatePem, checkServerIdentity: () => undefined },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (p: Buffer) => parts.push(p));
        res.on('end', () => {
          resolve(JSON.parse(Buffer.concat(parts).toString('utf8')) as ComponentEvidence);
        });
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const dir = await mkdtemp(join(tmpdir(), 'tresor-bench-serving-'));
console.log(
  `# Serving bench — ${cpus()[0]?.model ?? 'cpu'} x${cpus().length}, Node ${process.version}, load ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
try {
  if (SECTIONS.includes('1')) await timeToReady(dir);
  if (SECTIONS.includes('2')) await tokensPerSecond(dir);
} finally {
  await rm(dir, { recursive: true, force: true });
}
