/**
 * Runs the selected matrix of engine × configuration × mode × concurrency: starts what each
 * engine's configurations need, drives each run from a separate load-generator process, and
 * measures the servers from /proc over exactly the measured window.
 */
import { spawn } from 'node:child_process';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { writeDemoModel } from '@tresor/serving';
import type { LoadReport, LoadSpec } from './loadgen.js';
import { cpuSnapshot, resetPeakRss, usageSince, type WatchedProcess } from './proc.js';
import { median, summarize, throughput } from './stats.js';
import {
  runLabel,
  type ConfigurationName,
  type EngineName,
  type RequestMode,
  type RunResult,
} from './results.js';
import type { ServerChild } from './children.js';
import { maxTokensFor, requestCounts } from './plan.js';
import {
  MODEL_ID,
  provisionTresor,
  REPO_ROOT,
  startEngineServer,
  startNginx,
  startTresorProxy,
  startTresorStack,
  tsxNode,
  type LoadTarget,
  type LocalFacts,
} from './configurations.js';

export interface Selection {
  readonly engines: readonly EngineName[];
  readonly configs: readonly ConfigurationName[];
  readonly modes: readonly RequestMode[];
  readonly concurrency: readonly number[];
  readonly quick: boolean;
}

export interface HarnessOptions {
  readonly selection: Selection;
  /** Logs, nginx prefix, demo model, profiles. */
  readonly runDir: string;
  /** `tresor up`'s state folder, reused between runs. */
  readonly stateDir: string;
  /**
   * Adds `--cpu-prof` to gateway, serving, the tresor proxy and every load generator (profiles
   * written under runDir/profiles/<engine> at exit).
   */
  readonly cpuProfile: boolean;
  readonly log: (line: string) => void;
}

async function runLoad(
  spec: LoadSpec,
  processes: () => readonly WatchedProcess[],
  logDir: string,
  label: string,
  profileDir: string | undefined,
): Promise<{ report: LoadReport; usage: ReturnType<typeof usageSince> }> {
  const { command, args: scriptArgs } = tsxNode('bench/harness/loadgen.ts', [JSON.stringify(spec)]);
  // The load generator is the client: with profiles on, it writes one per run. Not under a fixed
  // --cpu-prof-name: tsx's module hooks run on a worker thread, whose profile would overwrite the
  // main thread's; V8's default names carry the thread id, and the main thread's is kept.
  const loadgenProfiles =
    profileDir === undefined ? undefined : join(profileDir, `loadgen-${label.replaceAll('/', '-')}`);
  const args =
    loadgenProfiles === undefined
      ? scriptArgs
      : ['--cpu-prof', `--cpu-prof-dir=${loadgenProfiles}`, ...scriptArgs];
  const child = spawn(command, args, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    if (stderr.length < 8192) stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      resolve(code);
    }),
  );
  let watched: readonly WatchedProcess[] = [];
  let before = new Map<number, number>();
  let result: { report: LoadReport; usage: ReturnType<typeof usageSince> } | undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    if (line === 'WARM') {
      watched = processes();
      for (const p of watched) resetPeakRss(p.pid);
      before = cpuSnapshot(watched);
      child.stdin.write('GO\n');
    } else if (line.startsWith('DONE ')) {
      const usage = usageSince(watched, before);
      result = { report: JSON.parse(line.slice(5)) as LoadReport, usage };
      child.stdin.end();
    }
  }
  const code = await exited;
  if (loadgenProfiles !== undefined) await keepMainThreadProfile(loadgenProfiles);
  if (result === undefined) {
    throw new Error(
      `load generator for ${label} failed (exit ${String(code)}): ${stderr.trim()} (logs: ${logDir})`,
    );
  }
  return result;
}

/**
 * Moves the main thread's profile out of `dir` (V8's default name `CPU.<date>.<time>.<pid>.<thread
 * id>.<seq>.cpuprofile`; the main thread is id 0) to `<dir>.cpuprofile`, and removes `dir`.
 */
async function keepMainThreadProfile(dir: string): Promise<void> {
  const files = await readdir(dir).catch(() => [] as string[]);
  const main = files.find((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f));
  if (main !== undefined) await rename(join(dir, main), `${dir}.cpuprofile`);
  await rm(dir, { recursive: true, force: true });
}

/** Runs every selected combination; a configuration that cannot start is reported and skipped. */
export async function runHarness(options: HarnessOptions): Promise<RunResult[]> {
  const { selection, runDir, log } = options;
  const logDir = join(runDir, 'logs');
  await mkdir(logDir, { recursive: true });
  const results: RunResult[] = [];
  const wantsTresor = selection.configs.some((c) => c === 'tresor' || c === 'tresor-via-proxy');
  let facts: LocalFacts | undefined;
  if (wantsTresor) {
    log(
      `setting up the tresor stack with \`tresor up --dir ${options.stateDir}\` (first time: about a minute)`,
    );
    facts = await provisionTresor(options.stateDir, logDir);
  }
  const demoModel = join(runDir, 'tresor-demo.gguf');
  if (selection.engines.includes('llama')) await writeDemoModel(demoModel);

  for (const engine of selection.engines) {
    const started: ServerChild[] = [];
    const profileDir = options.cpuProfile ? join(runDir, 'profiles', engine) : undefined;
    const targets = new Map<ConfigurationName, { target: LoadTarget; processes: () => WatchedProcess[] }>();
    try {
      if (selection.configs.includes('direct') || selection.configs.includes('nginx')) {
        const server = await startEngineServer(engine, logDir, demoModel);
        started.push(server.child);
        const engineProc: WatchedProcess = { role: 'engine', pid: server.child.pid };
        targets.set('direct', {
          target: { client: 'openai', url: `${server.url}/v1`, apiKey: 'bench' },
          processes: () => [engineProc],
        });
        if (selection.configs.includes('nginx')) {
          const nginx = await startNginx(runDir, server.url, 2);
          started.push(nginx.child);
          targets.set('nginx', {
            target: { client: 'openai', url: `${nginx.url}/v1`, apiKey: 'bench', caFile: nginx.caFile },
            processes: () => [...nginx.processes(), engineProc],
          });
        }
      }
      if (facts !== undefined) {
        const stack = await startTresorStack(options.stateDir, facts, engine, logDir, profileDir);
        started.push(...stack.children);
        targets.set('tresor', {
          target: {
            client: 'sdk',
            url: facts.gatewayUrl,
            apiKey: facts.apiKey,
            caFile: facts.caCertFile,
            policyFile: facts.policyFile,
          },
          processes: () => [...stack.processes],
        });
        if (selection.configs.includes('tresor-via-proxy')) {
          const proxy = await startTresorProxy(facts, logDir, engine, profileDir);
          started.push(proxy.child);
          targets.set('tresor-via-proxy', {
            target: { client: 'openai', url: `${proxy.url}/v1`, apiKey: facts.apiKey },
            processes: () => [{ role: 'proxy', pid: proxy.child.pid }, ...stack.processes],
          });
        }
      }
      for (const config of selection.configs) {
        const entry = targets.get(config);
        if (entry === undefined) continue;
        for (const mode of selection.modes) {
          for (const concurrency of selection.concurrency) {
            const key = { engine, config, mode, concurrency };
            const counts = requestCounts(engine, concurrency, selection.quick);
            const spec: LoadSpec = {
              ...entry.target,
              model: MODEL_ID,
              stream: mode === 'stream',
              concurrency,
              requests: counts.requests,
              warmup: counts.warmup,
              maxTokens: maxTokensFor(engine),
            };
            const { report, usage } = await runLoad(spec, entry.processes, logDir, runLabel(key), profileDir);
            const result = toResult(key, report, usage);
            results.push(result);
            log(describe(result));
          }
        }
      }
    } finally {
      for (const child of started.reverse()) await child.stop();
    }
  }
  return results;
}

function toResult(
  key: { engine: EngineName; config: ConfigurationName; mode: RequestMode; concurrency: number },
  report: LoadReport,
  usage: ReturnType<typeof usageSince>,
): RunResult {
  const ok = report.latenciesMs.length;
  return {
    ...key,
    requests: ok + report.errors,
    errors: report.errors,
    ...(report.firstError === undefined ? {} : { firstError: report.firstError }),
    latencyMs: ok > 0 ? summarize(report.latenciesMs) : { count: 0, p50: 0, p90: 0, p99: 0, mean: 0, max: 0 },
    requestsPerSecond: throughput(ok, report.elapsedMs),
    ...(report.ttftMs.length > 0 ? { ttftMs: summarize(report.ttftMs) } : {}),
    ...(report.tokenIntervalsUs.length > 0 ? { tokenIntervalUs: summarize(report.tokenIntervalsUs) } : {}),
    completionTokens: report.completionTokens.length > 0 ? median(report.completionTokens) : 0,
    usage,
    clientCpuMs: report.clientCpuMs,
  };
}

function describe(r: RunResult): string {
  const stream =
    r.ttftMs === undefined
      ? ''
      : ` ttft p50 ${r.ttftMs.p50.toFixed(2)} ms` +
        (r.tokenIntervalUs === undefined ? '' : `, token ${r.tokenIntervalUs.p50.toFixed(1)} µs`);
  const errors = r.errors > 0 ? ` ERRORS ${String(r.errors)} (${r.firstError ?? ''})` : '';
  return (
    `${runLabel(r).padEnd(36)} ${String(r.requests).padStart(5)} req  p50 ${r.latencyMs.p50.toFixed(2)} ` +
    `p90 ${r.latencyMs.p90.toFixed(2)} p99 ${r.latencyMs.p99.toFixed(2)} ms  ${r.requestsPerSecond.toFixed(0)} req/s${stream}${errors}`
  );
}
