/**
 * Soak test (issue #13): drives the local platform at a steady load and watches for leaks.
 *
 *   npm run soak -- --minutes 30                 the release soak
 *   npm run soak -- --minutes 3                  the CI variant
 *   npm run soak -- --minutes 3 --concurrency 2 --max-slope 2 --json soak.json
 *
 * The platform is the in-process one of test/support/gateway-cluster.ts: a trust service, a REAL
 * serving replica (sealed model released through the KBS, echo engine, sample TEE, mesh
 * certificate) and a REAL gateway (its replica re-attested every minute), all in this process,
 * driven through the SDK (attested
 * connect, OHTTP, receipts verified) by `--concurrency` workers: three non-streaming chat
 * completions, then one streamed, in a loop. Every `--sample-seconds` (10) it samples the process's
 * RSS, V8 heap, open file descriptors (/proc/self/fd) and the latency of the requests finished in
 * the interval. One process holds server and client, so the figures are the platform's and the
 * load generator's together.
 *
 * Each sample also forces a full garbage collection and records the heap still in use after it
 * ("retained heap": live objects only, so no GC sawtooth), which is what a leak grows.
 *
 * Pass, judged on the samples after warm-up (the first `--warmup-seconds`, default 20 % of the run
 * and at least 90 s: heap and JIT grow to their steady state in the first minutes; in runs of at
 * least 22 minutes also at least one OHTTP replay window + 60 s (660 s), since the replay cache
 * fills for one window by design and is flat after it):
 * - zero failed requests;
 * - retained heap flat: its growth from the start to the end of the steady part (each end the
 *   median of 3 samples) at most `--max-heap-growth` MB (default 4) — sound already for the 3-minute
 *   CI run, where 1.5 minutes of steady state cannot separate an RSS trend from the GC sawtooth;
 * - RSS flat: the least-squares slope of RSS below `--max-slope` MB/min (default 2), judged only when
 *   the steady part lasts at least 10 minutes (shorter runs report it);
 * - open descriptors at the end at most 16 above those at the end of warm-up.
 * Exit 0 pass, 1 fail, 2 usage error. Needs the global `gc` (`node --expose-gc`, as the npm scripts
 * run it); without it the flag is set at run time.
 * `--json <file>` is rewritten after every sample, so a run that dies leaves its figures.
 */
import { readdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { connect } from '@tresor/sdk';
import { createNodeTransport } from '@tresor/sdk/node';
import {
  CLUSTER_MODEL,
  provisionTenant,
  startGatewayCluster,
  trustDocumentKeys,
} from '../test/support/gateway-cluster.js';

/** The gateway's default `limits.replayWindowSeconds`, which the soak's gateway keeps. */
const REPLAY_WINDOW_SECONDS = 600;

interface Sample {
  readonly t: number;
  readonly rssMb: number;
  readonly heapMb: number;
  /** heapUsed right after a forced full GC. */
  readonly retainedMb: number;
  readonly fds: number;
  readonly requests: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
}

function usage(message: string): never {
  process.stderr.write(
    `error USAGE_INVALID: ${message}\nfix: npm run soak -- --minutes <n> [--concurrency <n>] [--max-heap-growth <MB>] [--max-slope <MB/min>] [--json <file>]\n`,
  );
  process.exit(2);
}

function positive(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) usage(`--${name} must be a positive number`);
  return n;
}

/** Least-squares slope of y over x. */
export function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

/** Steady runs shorter than this report the RSS slope without judging it (GC sawtooth). */
const MIN_RSS_JUDGED_MINUTES = 10;

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** The engine's full collection: `globalThis.gc` under --expose-gc, else exposed at run time. */
function fullGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        minutes: { type: 'string' },
        concurrency: { type: 'string' },
        'sample-seconds': { type: 'string' },
        'warmup-seconds': { type: 'string' },
        'max-slope': { type: 'string' },
        'max-heap-growth': { type: 'string' },
        json: { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    usage(err instanceof Error ? err.message : String(err));
  }
  const minutes = positive('minutes', values.minutes, 30);
  const concurrency = Math.round(positive('concurrency', values.concurrency, 4));
  const sampleMs = positive('sample-seconds', values['sample-seconds'], 10) * 1000;
  const durationMs = minutes * 60_000;
  // The OHTTP replay cache remembers every request for one replay window by design (bounded by its
  // capacity), so the retained heap rises for that long and then stays flat: a run long enough to
  // have a steady part after it judges from there.
  const replayWarmupSeconds = REPLAY_WINDOW_SECONDS + 60;
  const warmupMs =
    positive(
      'warmup-seconds',
      values['warmup-seconds'],
      Math.max(
        sampleMs / 1000,
        90,
        (durationMs * 0.2) / 1000,
        durationMs / 1000 >= 2 * replayWarmupSeconds ? replayWarmupSeconds : 0,
      ),
    ) * 1000;
  const maxSlope = positive('max-slope', values['max-slope'], 2);
  const maxHeapGrowth = positive('max-heap-growth', values['max-heap-growth'], 4);
  const gc = fullGc();

  const out = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  out(
    `soak: ${minutes} min, ${concurrency} workers, a sample every ${sampleMs / 1000} s, warm-up ${Math.round(warmupMs / 1000)} s, retained-heap growth bound ${maxHeapGrowth} MB, RSS slope bound ${maxSlope} MB/min (judged from ${MIN_RSS_JUDGED_MINUTES} min of steady state)`,
  );
  const cluster = await startGatewayCluster();
  let exitCode = 1;
  try {
    const serving = await cluster.startServing();
    const gateway = await cluster.startGateway({ replicaUrls: [serving.url] });
    const apiKey = await provisionTenant(gateway.url, cluster, 'soak', {
      requestsPerMinute: 1_000_000,
      tokensPerDay: 1_000_000_000,
    });
    const documentKeys = await trustDocumentKeys(cluster.trust);
    const client = await connect(gateway.url, {
      policy: {
        version: 1,
        trustServiceKeys: documentKeys.map((jwk) => ({ jwk })),
        trustSignedReferenceValues: true,
        allowSampleTee: true,
        sampleVerifyKeys: [cluster.trust.sampleKey.verifyKey.hex],
      },
      ...createNodeTransport({ ca: cluster.gatewayCa }),
    });

    // The test cluster turns the gateway's re-attestation timer off; run it here as the service
    // would (every minute), or the replica's verification expires after 5 minutes.
    const reattest = setInterval(() => {
      void gateway.pool.verifyAll();
    }, 60_000);
    const start = Date.now();
    let latencies: number[] = [];
    let requests = 0;
    let errors = 0;
    let totalRequests = 0;
    let totalErrors = 0;
    const errorCodes = new Map<string, number>();
    let stop = false;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; !stop; i++) {
        const began = performance.now();
        try {
          const response = await client.fetch(`${client.gatewayUrl}/v1/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
            body: JSON.stringify({
              model: CLUSTER_MODEL,
              messages: [{ role: 'user', content: `soak worker ${w} request ${i} with a few more words` }],
              ...(i % 4 === 3 ? { stream: true } : {}),
            }),
          });
          const text = await response.text();
          if (response.status !== 200) {
            // The catalogue code of the refusal when the body carries one (OpenAI-style error object).
            let code = `HTTP_${response.status}`;
            try {
              const refused = (JSON.parse(text) as { error?: { code?: unknown } }).error?.code;
              if (typeof refused === 'string') code = `${code} ${refused}`;
            } catch {
              // not JSON: the status alone
            }
            throw Object.assign(new Error(`HTTP ${response.status}`), { code });
          }
        } catch (err) {
          errors++;
          totalErrors++;
          const code = (err as { code?: unknown }).code;
          const key = typeof code === 'string' ? code : 'THROWN';
          errorCodes.set(key, (errorCodes.get(key) ?? 0) + 1);
        }
        latencies.push(performance.now() - began);
        requests++;
        totalRequests++;
      }
    };
    const workers = Array.from({ length: concurrency }, (_, w) => worker(w));
    const samples: Sample[] = [];
    const judge = (all: readonly Sample[]) => {
      const steady = all.filter((s) => s.t * 1000 > warmupMs);
      const minutesOf = steady.map((s) => s.t / 60);
      const rssSlope = slope(
        minutesOf,
        steady.map((s) => s.rssMb),
      );
      const heapSlope = slope(
        minutesOf,
        steady.map((s) => s.retainedMb),
      );
      const retainedFirst = median(steady.slice(0, 3).map((s) => s.retainedMb));
      const retainedLast = median(steady.slice(-3).map((s) => s.retainedMb));
      const steadyMinutes = steady.length < 2 ? 0 : (steady.at(-1)!.t - steady[0]!.t) / 60;
      const rssJudged = steadyMinutes >= MIN_RSS_JUDGED_MINUTES;
      const fdsAtWarmup = steady[0]?.fds ?? 0;
      const fdsAtEnd = steady.at(-1)?.fds ?? 0;
      // Six samples at least: two disjoint triples for the medians.
      const enough = steady.length >= 6;
      const heapFlat = retainedLast - retainedFirst <= maxHeapGrowth;
      const rssFlat = !rssJudged || rssSlope < maxSlope;
      const fdsFlat = fdsAtEnd <= fdsAtWarmup + 16;
      return {
        minutes,
        concurrency,
        elapsedSeconds: Math.round((Date.now() - start) / 1000),
        requests: totalRequests,
        errors: totalErrors,
        errorCodes: Object.fromEntries(errorCodes),
        requestsPerSecond: totalRequests / ((Date.now() - start) / 1000),
        warmupSeconds: warmupMs / 1000,
        steadySamples: steady.length,
        retainedMb: { first: retainedFirst, last: retainedLast },
        retainedGrowthMb: retainedLast - retainedFirst,
        maxHeapGrowthMb: maxHeapGrowth,
        retainedSlopeMbPerMin: heapSlope,
        rssSlopeMbPerMin: rssSlope,
        rssJudged,
        maxSlopeMbPerMin: maxSlope,
        rssMb: {
          first: steady[0]?.rssMb,
          last: steady.at(-1)?.rssMb,
          max: Math.max(...all.map((s) => s.rssMb)),
        },
        fds: { atWarmup: fdsAtWarmup, atEnd: fdsAtEnd },
        heapFlat,
        rssFlat,
        fdsFlat,
        pass: totalErrors === 0 && enough && heapFlat && rssFlat && fdsFlat,
        samples: all,
      };
    };
    const writeJson = async (result: ReturnType<typeof judge>): Promise<void> => {
      if (values.json !== undefined) await writeFile(values.json, `${JSON.stringify(result, null, 2)}\n`);
    };
    out('   t(s)  RSS(MB)  heap(MB)  retained(MB)  fds  req/interval  errors  p50(ms)  p95(ms)');
    while (Date.now() - start < durationMs) {
      await new Promise((resolve) => setTimeout(resolve, sampleMs));
      const sorted = [...latencies].sort((a, b) => a - b);
      const memory = process.memoryUsage();
      gc();
      const retained = process.memoryUsage().heapUsed;
      const sample: Sample = {
        t: Math.round((Date.now() - start) / 1000),
        rssMb: memory.rss / 1048576,
        heapMb: memory.heapUsed / 1048576,
        retainedMb: retained / 1048576,
        fds: openFds(),
        requests,
        errors,
        p50Ms: percentile(sorted, 50),
        p95Ms: percentile(sorted, 95),
      };
      samples.push(sample);
      latencies = [];
      requests = 0;
      errors = 0;
      await writeJson(judge(samples));
      out(
        `${String(sample.t).padStart(7)}  ${sample.rssMb.toFixed(1).padStart(7)}  ${sample.heapMb.toFixed(1).padStart(8)}  ${sample.retainedMb.toFixed(1).padStart(12)}  ${String(sample.fds).padStart(3)}  ${String(sample.requests).padStart(12)}  ${String(sample.errors).padStart(6)}  ${sample.p50Ms.toFixed(1).padStart(7)}  ${sample.p95Ms.toFixed(1).padStart(7)}`,
      );
    }
    stop = true;
    await Promise.all(workers);
    clearInterval(reattest);

    const result = judge(samples);
    const { rssSlopeMbPerMin: rssSlope, retainedGrowthMb, fds, pass } = result;
    out('');
    out(
      `${totalRequests} requests (${result.requestsPerSecond.toFixed(1)}/s), ${totalErrors} errors${totalErrors === 0 ? '' : ` ${JSON.stringify(result.errorCodes)}`}`,
    );
    out(
      `retained heap after warm-up: ${result.retainedMb.first.toFixed(1)} → ${result.retainedMb.last.toFixed(1)} MB (growth ${retainedGrowthMb.toFixed(1)}, bound ${maxHeapGrowth}); RSS slope ${rssSlope.toFixed(2)} MB/min over ${result.steadySamples} samples (${result.rssJudged ? `bound ${maxSlope}` : `not judged under ${MIN_RSS_JUDGED_MINUTES} min of steady state`}); open fds ${fds.atWarmup} → ${fds.atEnd}`,
    );
    out(
      pass
        ? 'soak: PASS'
        : `soak: FAIL${totalErrors > 0 ? ' (errors)' : ''}${result.heapFlat ? '' : ' (retained heap grows)'}${result.rssFlat ? '' : ' (RSS grows)'}${result.fdsFlat ? '' : ' (descriptors grow)'}${result.steadySamples >= 6 ? '' : ' (too few samples after warm-up)'}`,
    );
    await writeJson(result);
    exitCode = pass ? 0 : 1;
    await gateway.close();
    await serving.close();
  } finally {
    await cluster.close();
  }
  return exitCode;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(
      `error INTERNAL_ERROR: soak could not run: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    process.exitCode = 1;
  },
);
