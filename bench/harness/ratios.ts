/**
 * Headline ratios of the end-to-end benchmark, each compared with the target of issue #14 and
 * printed with the exact command that measures it again.
 */
import { findRun, serverCpuMsPerRequest, type ConfigurationName, type RunResult } from './results.js';

/** `1.02x + 0.6 ms` (or `0.98x - 0.1 ms`): the ratio and the absolute difference. */
export function formatLatencyRatio(candidateMs: number, baselineMs: number): string {
  if (!(baselineMs > 0) || !(candidateMs >= 0)) throw new RangeError('latencies must be positive');
  const added = candidateMs - baselineMs;
  const sign = added < 0 ? '-' : '+';
  return `${formatRatio(candidateMs / baselineMs)}x ${sign} ${formatMs(Math.abs(added))} ms`;
}

/** `0.62 × nginx` */
export function formatThroughputRatio(candidate: number, baseline: number, baselineName: string): string {
  if (!(baseline > 0) || !(candidate >= 0)) throw new RangeError('rates must be positive');
  return `${formatRatio(candidate / baseline)} × ${baselineName}`;
}

/** Two decimals, three below 0.1 (so a small ratio does not read as 0.00). */
export function formatRatio(ratio: number): string {
  return ratio < 0.1 ? ratio.toFixed(3) : ratio.toFixed(2);
}

/** Milliseconds with a precision that suits their size: 0.012, 0.61, 12.3, 1234. */
export function formatMs(ms: number): string {
  if (ms < 0.1) return ms.toFixed(3);
  if (ms < 10) return ms.toFixed(2);
  if (ms < 1000) return ms.toFixed(1);
  return ms.toFixed(0);
}

/** `info`: a comparison without a target of its own (shown for context). */
export type Verdict = 'met' | 'missed' | 'not measured' | 'info';

export interface Headline {
  readonly id: string;
  /** e.g. `tresor/direct p50 latency (fast engine, single-shot, concurrency 1) = 1.05x + 0.6 ms` */
  readonly text: string;
  readonly target: string;
  readonly verdict: Verdict;
  /** The command that measures exactly the runs this headline compares. */
  readonly command: string;
}

/** The command line of `bench/e2e.ts` that runs only the given selection. */
export function reproduceCommand(selection: {
  readonly engines: readonly string[];
  readonly configs: readonly string[];
  readonly modes: readonly string[];
  readonly concurrency: readonly number[];
}): string {
  return [
    'npx tsc -b && npx tsx bench/e2e.ts',
    `--engines ${selection.engines.join(',')}`,
    `--configs ${selection.configs.join(',')}`,
    `--modes ${selection.modes.join(',')}`,
    `--concurrency ${selection.concurrency.join(',')}`,
  ].join(' ');
}

interface LatencyHeadlineSpec {
  readonly candidate: ConfigurationName;
  readonly baseline: ConfigurationName;
  readonly percentile: 'p50' | 'p99';
  readonly limitMs?: number;
}

/** The headlines of issue #14's targets, from whatever runs are present (absent ones: not measured). */
export function headlines(results: readonly RunResult[]): Headline[] {
  const out: Headline[] = [];

  // 1. Added latency of the confidential path over direct, concurrency 1, fast engine.
  const latencySpecs: LatencyHeadlineSpec[] = [
    { candidate: 'tresor', baseline: 'direct', percentile: 'p50', limitMs: 1 },
    { candidate: 'tresor', baseline: 'direct', percentile: 'p99', limitMs: 3 },
    { candidate: 'tresor-via-proxy', baseline: 'direct', percentile: 'p50' },
    { candidate: 'nginx', baseline: 'direct', percentile: 'p50' },
  ];
  for (const spec of latencySpecs) {
    const key = { engine: 'fast', mode: 'single', concurrency: 1 } as const;
    const cand = findRun(results, { ...key, config: spec.candidate });
    const base = findRun(results, { ...key, config: spec.baseline });
    const label = `${spec.candidate}/${spec.baseline} ${spec.percentile} latency (fast engine, single-shot, concurrency 1)`;
    const target = spec.limitMs === undefined ? '-' : `≤ +${String(spec.limitMs)} ms`;
    const command = reproduceCommand({
      engines: ['fast'],
      configs: [spec.baseline, spec.candidate],
      modes: ['single'],
      concurrency: [1],
    });
    if (cand === undefined || base === undefined || cand.errors > 0 || base.errors > 0) {
      out.push({
        id: `latency-${spec.candidate}-${spec.percentile}`,
        text: `${label}: not measured`,
        target,
        verdict: 'not measured',
        command,
      });
      continue;
    }
    const c = cand.latencyMs[spec.percentile];
    const b = base.latencyMs[spec.percentile];
    out.push({
      id: `latency-${spec.candidate}-${spec.percentile}`,
      text: `${label} = ${formatLatencyRatio(c, b)}`,
      target,
      verdict: spec.limitMs === undefined ? 'info' : c - b <= spec.limitMs ? 'met' : 'missed',
      command,
    });
  }

  // 2. Throughput at concurrency 64 against the nginx TLS proxy, fast engine.
  for (const candidate of ['tresor', 'tresor-via-proxy'] as const) {
    const key = { engine: 'fast', mode: 'single', concurrency: 64 } as const;
    const cand = findRun(results, { ...key, config: candidate });
    const base = findRun(results, { ...key, config: 'nginx' });
    const label = `${candidate} req/s (fast engine, single-shot, concurrency 64)`;
    const target = candidate === 'tresor' ? '≥ 0.5 × nginx' : '-';
    const command = reproduceCommand({
      engines: ['fast'],
      configs: ['nginx', candidate],
      modes: ['single'],
      concurrency: [64],
    });
    if (cand === undefined || base === undefined || cand.errors > 0 || base.errors > 0) {
      out.push({
        id: `throughput-${candidate}`,
        text: `${label}: not measured`,
        target,
        verdict: 'not measured',
        command,
      });
      continue;
    }
    const ratio = cand.requestsPerSecond / base.requestsPerSecond;
    out.push({
      id: `throughput-${candidate}`,
      text: `${label} = ${formatThroughputRatio(cand.requestsPerSecond, base.requestsPerSecond, 'nginx')} (${cand.requestsPerSecond.toFixed(0)} vs ${base.requestsPerSecond.toFixed(0)} req/s)`,
      target,
      verdict: candidate === 'tresor' ? (ratio >= 0.5 ? 'met' : 'missed') : 'info',
      command,
    });
  }

  // 3. Requests per server CPU-second (LiteLLM: ≈ 23 req/s per vCPU; we aim for > 10x that).
  {
    const run = findRun(results, { engine: 'fast', config: 'tresor', mode: 'single', concurrency: 64 });
    const label =
      'tresor requests per server CPU-second (gateway + serving + trust, fast engine, concurrency 64)';
    const command = reproduceCommand({
      engines: ['fast'],
      configs: ['tresor'],
      modes: ['single'],
      concurrency: [64],
    });
    if (run === undefined || run.errors > 0) {
      out.push({
        id: 'per-core',
        text: `${label}: not measured`,
        target: '> 230 (10 × LiteLLM)',
        verdict: 'not measured',
        command,
      });
    } else {
      const perCpuSecond = 1000 / serverCpuMsPerRequest(run);
      out.push({
        id: 'per-core',
        text: `${label} = ${perCpuSecond.toFixed(0)} (${formatRatio(perCpuSecond / 23)} × LiteLLM's 23 req/s per vCPU)`,
        target: '> 230 (10 × LiteLLM)',
        verdict: perCpuSecond > 230 ? 'met' : 'missed',
        command,
      });
    }
  }

  // 4. Streaming: added time per token event, fast engine, concurrency 1.
  {
    const key = { engine: 'fast', mode: 'stream', concurrency: 1 } as const;
    const cand = findRun(results, { ...key, config: 'tresor' });
    const base = findRun(results, { ...key, config: 'direct' });
    const label =
      'tresor/direct time per token event (fast engine, streaming, concurrency 1, median of per-request means)';
    const command = reproduceCommand({
      engines: ['fast'],
      configs: ['direct', 'tresor'],
      modes: ['stream'],
      concurrency: [1],
    });
    const c = cand?.tokenIntervalUs;
    const b = base?.tokenIntervalUs;
    if (c === undefined || b === undefined || (cand?.errors ?? 1) > 0 || (base?.errors ?? 1) > 0) {
      out.push({
        id: 'token-event',
        text: `${label}: not measured`,
        target: '≤ +30 µs',
        verdict: 'not measured',
        command,
      });
    } else {
      const added = c.p50 - b.p50;
      out.push({
        id: 'token-event',
        text: `${label} = ${c.p50.toFixed(1)} µs vs ${b.p50.toFixed(1)} µs (${added < 0 ? '-' : '+'} ${Math.abs(added).toFixed(1)} µs)`,
        target: '≤ +30 µs',
        verdict: added <= 30 ? 'met' : 'missed',
        command,
      });
    }
  }

  // 5. Streaming TTFT with the real engine.
  {
    const key = { engine: 'llama', mode: 'stream', concurrency: 1 } as const;
    const cand = findRun(results, { ...key, config: 'tresor' });
    const base = findRun(results, { ...key, config: 'direct' });
    const label = 'tresor/direct p50 time to first token (llama demo model, streaming, concurrency 1)';
    const command = reproduceCommand({
      engines: ['llama'],
      configs: ['direct', 'tresor'],
      modes: ['stream'],
      concurrency: [1],
    });
    const c = cand?.ttftMs;
    const b = base?.ttftMs;
    if (c === undefined || b === undefined || (cand?.errors ?? 1) > 0 || (base?.errors ?? 1) > 0) {
      out.push({
        id: 'ttft-llama',
        text: `${label}: not measured`,
        target: '≤ 1.02x',
        verdict: 'not measured',
        command,
      });
    } else {
      out.push({
        id: 'ttft-llama',
        text: `${label} = ${formatLatencyRatio(c.p50, b.p50)}`,
        target: '≤ 1.02x',
        verdict: c.p50 / b.p50 <= 1.02 ? 'met' : 'missed',
        command,
      });
    }
  }

  // 6. Gateway peak RSS during the concurrency-64 runs.
  {
    const runs = results.filter((r) => r.config === 'tresor' && r.concurrency === 64 && r.engine === 'fast');
    const peaks = runs.flatMap((r) => r.usage.filter((u) => u.role === 'gateway').map((u) => u.peakRssMiB));
    const command = reproduceCommand({
      engines: ['fast'],
      configs: ['tresor'],
      modes: ['single', 'stream'],
      concurrency: [64],
    });
    const label = 'gateway peak RSS (fast engine, concurrency 64)';
    if (peaks.length === 0) {
      out.push({
        id: 'gateway-rss',
        text: `${label}: not measured`,
        target: '≤ 150 MB',
        verdict: 'not measured',
        command,
      });
    } else {
      const peakMb = (Math.max(...peaks) * 1024 * 1024) / 1e6;
      out.push({
        id: 'gateway-rss',
        text: `${label} = ${peakMb.toFixed(0)} MB`,
        target: '≤ 150 MB',
        verdict: peakMb <= 150 ? 'met' : 'missed',
        command,
      });
    }
  }
  return out;
}
