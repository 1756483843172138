/**
 * Child processes of the benchmark: every server runs in its own process (so /proc gives its CPU
 * time and peak RSS), its output goes to a log file in the run folder, and it counts as ready when
 * its URL answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface ServerChild {
  readonly name: string;
  readonly process: ChildProcess;
  readonly pid: number;
  readonly logFile: string;
  /** `signal` (default SIGTERM), then SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs?: number, signal?: NodeJS.Signals): Promise<void>;
}

export interface SpawnOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logDir: string;
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
}

/** Every server child still running, so that Ctrl-C stops them all (see {@link stopAllOnSignal}). */
const live = new Set<ServerChild>();

/** On SIGINT/SIGTERM: stops every server child this process started, then exits (130). */
export function stopAllOnSignal(): void {
  const handler = (): void => {
    void Promise.all([...live].map((child) => child.stop(2000))).finally(() => process.exit(130));
  };
  process.once('SIGINT', handler);
  process.once('SIGTERM', handler);
}

export function spawnServer(options: SpawnOptions): ServerChild {
  const logFile = join(options.logDir, `${options.name}.log`);
  const fd = openSync(logFile, 'a');
  const child = spawn(options.command, [...options.args], {
    cwd: options.cwd,
    env: options.env ?? process.env,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`${options.name} did not start (${options.command})`);
  let stopping = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      live.delete(server);
      // A server that dies under load fails its run (the load generator's requests time out); say
      // which one and how, so the run's output points at the right log.
      if (!stopping) {
        process.stderr.write(
          `${options.name} exited unexpectedly (${signal ?? `exit code ${String(code)}`}); its log: ${logFile}\n`,
        );
      }
      resolve();
    }),
  );
  const server: ServerChild = {
    name: options.name,
    process: child,
    pid: child.pid,
    logFile,
    async stop(graceMs = 5000, signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      stopping = true;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  live.add(server);
  return server;
}

/** The last lines of a log file, for a failure message. */
export function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Any HTTP answer from `url` (status given back), or undefined while nothing listens. */
function probe(url: string, ca: string | undefined): Promise<number | undefined> {
  return new Promise((resolve) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(
      target,
      { method: 'GET', agent: false, timeout: 3000, ...(ca === undefined ? {} : { ca }) },
      (res) => {
        res.resume();
        resolve(res.statusCode);
      },
    );
    req.on('timeout', () => req.destroy());
    req.on('error', () => {
      resolve(undefined);
    });
    req.end();
  });
}

/**
 * Waits until `url` answers (with 200 when `expect200`), polling; fails with the child's log tail
 * when it exits first or the deadline passes.
 */
export async function waitUntilAnswering(
  child: ServerChild,
  url: string,
  options: { readonly ca?: string; readonly expect200?: boolean; readonly timeoutMs?: number } = {},
): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 120_000);
  for (;;) {
    if (child.process.exitCode !== null || child.process.signalCode !== null) {
      throw new Error(`${child.name} exited before it was ready:\n${logTail(child.logFile)}`);
    }
    const status = await probe(url, options.ca);
    if (status !== undefined && (options.expect200 !== true || status === 200)) return;
    if (Date.now() > deadline) {
      throw new Error(`${child.name} was not ready at ${url} in time:\n${logTail(child.logFile)}`);
    }
    await sleep(200);
  }
}

/** A port the kernel says is free now on 127.0.0.1 (bound and released at once). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolve(port);
      });
    });
  });
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => {
      resolve(false);
    });
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () =>
      server.close(() => {
        resolve(true);
      }),
    );
  });
}

/** A base port n with n, n+1 and n+2 free (the local platform's gateway, trust and serving). */
export async function freePortTriple(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt += 1) {
    const base = 20000 + Math.floor(Math.random() * 40000);
    if ((await portFree(base)) && (await portFree(base + 1)) && (await portFree(base + 2))) return base;
  }
  throw new Error('no three consecutive free ports found');
}

/** Waits for a line of the child's log matching `pattern`; gives back the first capture group. */
export async function waitForLogLine(
  child: ServerChild,
  pattern: RegExp,
  timeoutMs = 120_000,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let text = '';
    try {
      text = readFileSync(child.logFile, 'utf8');
    } catch {
      // not written yet
    }
    const match = pattern.exec(text);
    if (match !== null) return match[1] ?? match[0];
    if (child.process.exitCode !== null || child.process.signalCode !== null) {
      throw new Error(`${child.name} exited before it was ready:\n${logTail(child.logFile)}`);
    }
    if (Date.now() > deadline)
      throw new Error(`${child.name} was not ready in time:\n${logTail(child.logFile)}`);
    await sleep(100);
  }
}
