/**
 * Starting the four configurations of issue #14, each server in its own process:
 *
 *   direct            openai client → engine's OpenAI-compatible endpoint (plain HTTP)
 *   nginx             openai client → nginx (TLS 1.3 reverse proxy) → the same engine endpoint
 *   tresor            openai client + @tresor/sdk fetch → gateway → serving (mTLS, re-encrypted) → engine
 *   tresor-via-proxy  openai client → `tresor proxy` → gateway → serving → engine
 *
 * The tresor stack is the one `tresor up` sets up: the harness runs `tresor up` once (state folder,
 * keys, local CA, sealed demo model, tenant, API key, reference values of this build), stops it,
 * and starts trust, serving and gateway itself from the configurations `tresor up` wrote — with the
 * engine of the run and limits raised so that quotas and serving's queue never refuse benchmark
 * traffic. Starting them itself is what lets it read each server's /proc entries.
 */
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { EngineName } from './results.js';
import type { WatchedProcess } from './proc.js';
import { descendants } from './proc.js';
import {
  freePort,
  freePortTriple,
  spawnServer,
  waitForLogLine,
  waitUntilAnswering,
  type ServerChild,
} from './children.js';
import { makeLoopbackCertificate, NGINX_BINARY, nginxArgs, writeNginxPrefix } from './nginx.js';
import { SERVICE_NODE_FLAGS, serviceProcessEnv } from '../../apps/cli/src/platform/children.js';

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const TRESOR_BIN = join(REPO_ROOT, 'apps/cli/bin/tresor.js');
/** The model id every configuration serves (the demo model's id in `tresor up`). */
export const MODEL_ID = 'tresor-demo';
/** Tokens per answer of the fast engine (single-shot and streaming alike). */
export const FAST_RESPONSE_TOKENS = 32;
/** llama.cpp threads, as `tresor up` configures serving. */
export const LLAMA_THREADS = 2;

/** How a load generator reaches a configuration. */
export interface LoadTarget {
  readonly client: 'openai' | 'sdk';
  readonly url: string;
  readonly apiKey: string;
  readonly caFile?: string;
  readonly policyFile?: string;
}

export interface RunningConfiguration {
  readonly target: LoadTarget;
  /** The server processes whose CPU time and peak RSS are reported. */
  readonly processes: readonly WatchedProcess[];
}

/** Node with tsx as loader, for TypeScript child scripts. */
export function tsxNode(script: string, args: readonly string[]): { command: string; args: string[] } {
  return { command: process.execPath, args: ['--import', 'tsx', join(REPO_ROOT, script), ...args] };
}

/** The engine behind an OpenAI-compatible HTTP endpoint (direct and nginx share it). */
export async function startEngineServer(
  engine: EngineName,
  logDir: string,
  demoModelFile: string,
): Promise<{ child: ServerChild; url: string }> {
  const args =
    engine === 'fast'
      ? ['fast', MODEL_ID, String(FAST_RESPONSE_TOKENS)]
      : ['llama', MODEL_ID, demoModelFile, String(LLAMA_THREADS)];
  const { command, args: full } = tsxNode('bench/harness/engine-server.ts', args);
  const child = spawnServer({ name: `engine-${engine}`, command, args: full, logDir, cwd: REPO_ROOT });
  const url = await waitForLogLine(child, /READY (\S+)/);
  return { child, url };
}

export async function startNginx(
  runDir: string,
  upstreamUrl: string,
  workers: number,
): Promise<{ child: ServerChild; url: string; caFile: string; processes: () => WatchedProcess[] }> {
  const prefix = join(runDir, 'nginx');
  await mkdir(prefix, { recursive: true });
  const { certFile, keyFile } = makeLoopbackCertificate(prefix);
  const port = await freePort();
  const config = await writeNginxPrefix({
    prefix,
    port,
    upstreamPort: Number(new URL(upstreamUrl).port),
    certFile,
    keyFile,
    workers,
  });
  const child = spawnServer({
    name: 'nginx',
    command: NGINX_BINARY,
    args: nginxArgs(prefix, config),
    logDir: runDir,
  });
  const url = `https://127.0.0.1:${String(port)}`;
  await waitUntilAnswering(child, `${url}/v1/models`, { ca: await readFile(certFile, 'utf8') });
  return {
    child,
    url,
    caFile: certFile,
    processes: () => [
      { role: 'nginx master', pid: child.pid },
      ...descendants(child.pid).map((pid) => ({ role: 'nginx workers', pid })),
    ],
  };
}

/** What `tresor up` left in its state folder that a client needs (local.json). */
export interface LocalFacts {
  readonly gatewayUrl: string;
  readonly trustUrl: string;
  readonly apiKey: string;
  readonly caCertFile: string;
  readonly policyFile: string;
  readonly model: string;
}

/**
 * Runs `tresor up --dir <stateDir> --port <base>` until it is ready, then stops it (SIGINT): the
 * first time this creates everything (about 40 s on 2 cores), later it refreshes the reference
 * values for the current build. Returns the facts of local.json.
 */
export async function provisionTresor(stateDir: string, logDir: string): Promise<LocalFacts> {
  const base = await freePortTriple();
  const child = spawnServer({
    name: 'tresor-up',
    command: process.execPath,
    args: [TRESOR_BIN, 'up', '--dir', stateDir, '--port', String(base)],
    logDir,
    cwd: REPO_ROOT,
  });
  try {
    await waitForLogLine(child, /Tresor is ready: (\S+)/, 300_000);
  } finally {
    // Ctrl-C, as a user stops it: `tresor up` stops its three children before it exits.
    await child.stop(30_000, 'SIGINT');
  }
  return JSON.parse(await readFile(join(stateDir, 'local.json'), 'utf8')) as LocalFacts;
}

/** serving.json of `tresor up`, with the run's engine and a queue that never refuses benchmark load. */
export function benchServingConfig(
  upConfig: Record<string, unknown>,
  engine: EngineName,
): Record<string, unknown> {
  return {
    ...upConfig,
    engine:
      engine === 'fast'
        ? { kind: 'echo', responseTokens: FAST_RESPONSE_TOKENS }
        : { kind: 'llama', threads: LLAMA_THREADS },
    // llama.cpp generates 4 sequences at once (its default); the echo engine has no such limit.
    concurrency: { maxConcurrent: engine === 'fast' ? 256 : 4, maxQueue: 4096 },
  };
}

/** gateway.json of `tresor up`, with rate limits and quotas far above what a run sends. */
export function benchGatewayConfig(upConfig: Record<string, unknown>): Record<string, unknown> {
  const limits = (upConfig.limits ?? {}) as Record<string, unknown>;
  return {
    ...upConfig,
    limits: {
      ...limits,
      requestsPerMinutePerKey: 100_000_000,
      requestsPerMinutePerTenant: 100_000_000,
      tokensPerDayPerKey: 1_000_000_000_000,
      tokensPerDayPerTenant: 1_000_000_000_000,
    },
  };
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
}

async function passphrase(stateDir: string, name: string): Promise<string> {
  return (await readFile(join(stateDir, 'secrets', name), 'utf8')).trim();
}

export interface TresorStack {
  readonly children: readonly ServerChild[];
  readonly facts: LocalFacts;
  readonly processes: readonly WatchedProcess[];
}

/**
 * Starts trust, serving (with `engine`) and gateway from the state `tresor up` wrote, in that
 * order, each ready (`/readyz` answers 200 over TLS with the local CA) before the next starts.
 * With `profileDir`, serving and gateway run with `--cpu-prof` and write their profiles there at exit.
 */
export async function startTresorStack(
  stateDir: string,
  facts: LocalFacts,
  engine: EngineName,
  logDir: string,
  profileDir?: string,
): Promise<TresorStack> {
  const servingConfig = join(stateDir, 'serving', 'bench-serving.json');
  const gatewayConfig = join(stateDir, 'gateway', 'bench-gateway.json');
  await writeFile(
    servingConfig,
    JSON.stringify(
      benchServingConfig(await readJson(join(stateDir, 'serving', 'serving.json')), engine),
      null,
      2,
    ),
    { mode: 0o600 },
  );
  await writeFile(
    gatewayConfig,
    JSON.stringify(benchGatewayConfig(await readJson(join(stateDir, 'gateway', 'gateway.json'))), null, 2),
    { mode: 0o600 },
  );
  const ca = await readFile(facts.caCertFile, 'utf8');
  const baseEnv = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/tmp' };
  const trustUrl = facts.trustUrl;
  const servingPort = Number(new URL(facts.gatewayUrl).port) + 2;
  const children: ServerChild[] = [];
  const start = async (
    name: 'trust' | 'serving' | 'gateway',
    config: string,
    url: string,
    env: Record<string, string>,
  ): Promise<void> => {
    // V8 writes the profile when the process exits (SIGTERM: serving and gateway shut down cleanly).
    const profile =
      profileDir !== undefined && name !== 'trust'
        ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, `--cpu-prof-name=${name}.cpuprofile`]
        : [];
    const child = spawnServer({
      name: `${name}-${engine}`,
      command: process.execPath,
      // The memory settings `tresor up` and the images give every service process.
      args: [...profile, ...SERVICE_NODE_FLAGS, TRESOR_BIN, name, 'serve', '--config', config],
      logDir,
      cwd: stateDir,
      env: { ...baseEnv, ...serviceProcessEnv(name), ...env },
    });
    children.push(child);
    await waitUntilAnswering(child, `${url}/readyz`, { ca, expect200: true, timeoutMs: 180_000 });
  };
  try {
    await start('trust', join(stateDir, 'trust', 'deployment.json'), trustUrl, {
      TRESOR_KEYSTORE_PASSPHRASE: await passphrase(stateDir, 'keystore-passphrase'),
    });
    await start('serving', servingConfig, `https://127.0.0.1:${String(servingPort)}`, {});
    await start('gateway', gatewayConfig, facts.gatewayUrl, {
      TRESOR_KEYSTORE_PASSPHRASE: await passphrase(stateDir, 'gateway-keystore-passphrase'),
    });
  } catch (err) {
    for (const child of children.reverse()) await child.stop();
    throw err;
  }
  const [trust, serving, gateway] = children as [ServerChild, ServerChild, ServerChild];
  return {
    children,
    facts,
    processes: [
      { role: 'gateway', pid: gateway.pid },
      { role: 'serving', pid: serving.pid },
      { role: 'trust', pid: trust.pid },
    ],
  };
}

/** `tresor proxy` in front of the gateway, on a free loopback port. */
export async function startTresorProxy(
  facts: LocalFacts,
  logDir: string,
  engine: EngineName,
  profileDir?: string,
): Promise<{ child: ServerChild; url: string }> {
  const port = await freePort();
  const child = spawnServer({
    name: `proxy-${engine}`,
    command: process.execPath,
    args: [
      ...(profileDir === undefined
        ? []
        : ['--cpu-prof', `--cpu-prof-dir=${profileDir}`, '--cpu-prof-name=proxy.cpuprofile']),
      TRESOR_BIN,
      'proxy',
      '--upstream',
      facts.gatewayUrl,
      '--policy',
      facts.policyFile,
      '--ca',
      facts.caCertFile,
      '--listen',
      `127.0.0.1:${String(port)}`,
    ],
    logDir,
    cwd: REPO_ROOT,
  });
  const url = `http://127.0.0.1:${String(port)}`;
  await waitUntilAnswering(child, `${url}/`, { timeoutMs: 60_000 });
  return { child, url };
}
