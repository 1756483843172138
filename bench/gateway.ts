/**
 * Gateway benchmark, against a baseline measured in the same run (DESIGN.md §4 bench/).
 *
 *   npm run bench:gateway                                   (tsc -b && tsx bench/gateway.ts)
 *   BENCH_REQUESTS=100 BENCH_CONCURRENCY=4 npm run bench:gateway      (a quick look)
 *
 * Through the gateway: the SDK client (gateway and replica verified once, every receipt verified)
 * sends each request OHTTP-encapsulated over TLS 1.3 to a real gateway (API key, Cedar policy,
 * rate limit and quota counters, usage record), which re-encapsulates it to a real serving replica
 * over mTLS (echo engine, sealed model released through the trust service).
 * Direct: a plaintext HTTP/1.1 POST to an OpenAI-compatible server in front of the same engine
 * (echo, same answer length) — what a client without any of Tresor's protections would do.
 *
 * For single-shot and streaming chat completions: requests per second at BENCH_CONCURRENCY, p50
 * and p99 latency (to the last byte), the added latency and the ratios. Everything runs in this
 * process on this machine: the gateway, the replica and the client share the CPUs, so the added
 * latency includes the client's own encryption and receipt checks.
 */
import { Agent, request as httpRequest } from 'node:http';
import { cpus, loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { connect, type TresorClient } from '@tresor/sdk';
import { createEchoEngine } from '@tresor/serving';
import {
  CLUSTER_MODEL,
  provisionTenant,
  keepAliveTransport,
  startGatewayCluster,
  trustDocumentKeys,
} from '../test/support/gateway-cluster.js';
import { startOpenAiCompatibleServer } from '../test/support/openai-compatible-server.js';

const REQUESTS = Number(process.env.BENCH_REQUESTS ?? '400');
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? '8');
const TOKENS = Number(process.env.BENCH_TOKENS ?? '16');
const WARMUP = Math.min(50, Math.max(5, Math.floor(REQUESTS / 10)));

interface Run {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
}

const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

/** `count` calls of `send` at `CONCURRENCY`; each must resolve with the whole answer. */
async function measure(count: number, send: (i: number) => Promise<void>): Promise<Run> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < count; i = next++) {
        const t0 = performance.now();
        await send(i);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { rps: count / seconds, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99) };
}

function body(i: number, stream: boolean): string {
  return JSON.stringify({
    model: CLUSTER_MODEL,
    messages: [{ role: 'user', content: `bench request ${i} with a few words to echo back` }],
    max_tokens: TOKENS,
    ...(stream ? { stream: true } : {}),
  });
}

async function main(): Promise<void> {
  const cluster = await startGatewayCluster();
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 });
  const transport = keepAliveTransport(cluster.gatewayCa);
  const direct = await startOpenAiCompatibleServer(
    createEchoEngine({ models: [{ id: CLUSTER_MODEL }], responseTokens: TOKENS }),
    { tokenize: false },
  );
  try {
    const serving = await cluster.startServing({ responseTokens: TOKENS, maxConcurrent: CONCURRENCY * 2 });
    const gateway = await cluster.startGateway({ replicaUrls: [serving.url] });
    const key = await provisionTenant(gateway.url, cluster, 'bench', {
      requestsPerMinute: 10_000_000,
      tokensPerDay: 1_000_000_000,
    });
    const documentKeys = await trustDocumentKeys(cluster.trust);
    const client: TresorClient = await connect(gateway.url, {
      policy: {
        version: 1,
        trustServiceKeys: documentKeys.map((jwk) => ({ jwk })),
        trustSignedReferenceValues: true,
        allowSampleTee: true,
        sampleVerifyKeys: [cluster.trust.sampleKey.verifyKey.hex],
      },
      fetch: transport.fetch,
      tls: transport.tls,
    });

    const viaGateway = async (i: number, stream: boolean): Promise<void> => {
      const response = await client.fetch(`${client.gatewayUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: body(i, stream),
      });
      const text = await response.text();
      if (response.status !== 200)
        throw new Error(`gateway answered ${response.status}: ${text.slice(0, 200)}`);
    };
    const viaDirect = (i: number, stream: boolean): Promise<void> =>
      new Promise((resolve, reject) => {
        const payload = Buffer.from(body(i, stream));
        const req = httpRequest(
          `${direct.url}/v1/chat/completions`,
          {
            method: 'POST',
            agent,
            headers: { 'content-type': 'application/json', 'content-length': payload.length },
          },
          (res) => {
            res.resume();
            res.on('end', () => {
              if (res.statusCode === 200) resolve();
              else reject(new Error(`direct answered ${res.statusCode}`));
            });
          },
        );
        req.on('error', reject);
        req.end(payload);
      });

    const rows: string[] = [];
    for (const stream of [false, true]) {
      const label = stream ? 'streaming' : 'single-shot';
      await measure(WARMUP, (i) => viaDirect(i, stream));
      await measure(WARMUP, (i) => viaGateway(i, stream));
      const base = await measure(REQUESTS, (i) => viaDirect(i, stream));
      const tresor = await measure(REQUESTS, (i) => viaGateway(i, stream));
      rows.push(
        `| ${label} | ${tresor.rps.toFixed(0)} | ${base.rps.toFixed(0)} | ${(tresor.rps / base.rps).toFixed(2)}× | ` +
          `${tresor.p50.toFixed(1)} / ${tresor.p99.toFixed(1)} | ${base.p50.toFixed(1)} / ${base.p99.toFixed(1)} | ` +
          `+${(tresor.p50 - base.p50).toFixed(1)} / +${(tresor.p99 - base.p99).toFixed(1)} |`,
      );
    }
    const [load1, load5] = loadavg();
    const out = [
      `gateway bench: ${REQUESTS} requests per measurement, concurrency ${CONCURRENCY}, ${TOKENS} tokens per answer, ${WARMUP} warm-up`,
      `command: BENCH_REQUESTS=${REQUESTS} BENCH_CONCURRENCY=${CONCURRENCY} BENCH_TOKENS=${TOKENS} npm run bench:gateway`,
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}, load average ${load1?.toFixed(2)} / ${load5?.toFixed(2)} (1 / 5 min)`,
      '',
      '| requests | gateway req/s | direct req/s | ratio | gateway p50 / p99 ms | direct p50 / p99 ms | added p50 / p99 ms |',
      '| --- | --- | --- | --- | --- | --- | --- |',
      ...rows,
    ];
    process.stdout.write(`${out.join('\n')}\n`);
  } finally {
    agent.destroy();
    transport.close();
    await direct.close();
    await cluster.close();
  }
}

await main();
