/**
 * What one measured run of the end-to-end benchmark produced, and the names of its dimensions.
 */
import type { LatencySummary } from './stats.js';
import type { ProcessUsage } from './proc.js';

export const CONFIGURATIONS = ['direct', 'nginx', 'tresor', 'tresor-via-proxy'] as const;
export type ConfigurationName = (typeof CONFIGURATIONS)[number];

/** `fast`: the deterministic echo engine (our overhead alone); `llama`: the demo model on llama.cpp. */
export const ENGINES = ['fast', 'llama'] as const;
export type EngineName = (typeof ENGINES)[number];

export const MODES = ['single', 'stream'] as const;
export type RequestMode = (typeof MODES)[number];

export interface RunKey {
  readonly engine: EngineName;
  readonly config: ConfigurationName;
  readonly mode: RequestMode;
  readonly concurrency: number;
}

export interface RunResult extends RunKey {
  /** Requests measured (after warm-up). */
  readonly requests: number;
  readonly errors: number;
  /** The first error's code or status, never a request or answer body. */
  readonly firstError?: string;
  /** Whole request, from send to the last byte of the answer. */
  readonly latencyMs: LatencySummary;
  readonly requestsPerSecond: number;
  /** Streaming: time to the first content event. */
  readonly ttftMs?: LatencySummary;
  /** Streaming: per request, the mean gap between content events after the first, in µs. */
  readonly tokenIntervalUs?: LatencySummary;
  /** Completion tokens per request (median), as the answers report them. */
  readonly completionTokens: number;
  /** Server processes: CPU time over the measured window and peak RSS during it. */
  readonly usage: readonly ProcessUsage[];
  /** The load generator's own CPU time (client side: openai client, sdk encryption). */
  readonly clientCpuMs: number;
}

export function runLabel(key: RunKey): string {
  return `${key.engine}/${key.config}/${key.mode}/c${String(key.concurrency)}`;
}

export function findRun(results: readonly RunResult[], key: RunKey): RunResult | undefined {
  return results.find(
    (r) =>
      r.engine === key.engine &&
      r.config === key.config &&
      r.mode === key.mode &&
      r.concurrency === key.concurrency,
  );
}

/** Server CPU time per request over all server processes of the run, in ms. */
export function serverCpuMsPerRequest(run: RunResult): number {
  const total = run.usage.reduce((sum, u) => sum + u.cpuMs, 0);
  return run.requests === 0 ? 0 : total / run.requests;
}
