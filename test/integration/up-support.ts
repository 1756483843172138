import { spawn, type ChildProcess } from 'node:child_process';
import { open, readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * Running the real, built `tresor` CLI as separate processes for the fault and canary tests:
 * `tresor up` on a state directory, single services (`tresor trust serve`, `tresor serving serve`)
 * on the state `tresor up` created, and the process-table checks that nothing is left behind.
 */

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TRESOR = join(ROOT, 'apps/cli/bin/tresor.js');

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A process started by these helpers: its output so far (stdout and stderr together) and its exit. */
export interface Running {
  readonly process: ChildProcess;
  readonly pid: number;
  readonly exit: Promise<Exit>;
  output(): string;
  /** Resolves once the output contains `text`; rejects (with the output) if the process exits first. */
  waitFor(text: string): Promise<void>;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolveFree) => {
    const server = createServer();
    server.once('error', () => {
      resolveFree(false);
    });
    server.listen(port, '127.0.0.1', () => {
      server.close(() => {
        resolveFree(true);
      });
    });
  });
}

/** A free loopback port (for one listener). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolvePort(port);
      });
    });
  });
}

/** Three consecutive free ports (gateway n, trust n+1, serving n+2). */
export async function freePortTriple(): Promise<number> {
  for (;;) {
    const base = await freePort();
    if (base >= 65533) continue;
    if ((await portFree(base)) && (await portFree(base + 1)) && (await portFree(base + 2))) return base;
  }
}

/** Only what a user's shell would pass; TMPDIR lets a test see every temp file the platform makes. */
export function cliEnv(
  home: string,
  tmp: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, TMPDIR: tmp, ...extra };
}

/** Starts `node apps/cli/bin/tresor.js <args>`; its output is kept (and appended to `sink`, if given). */
export function startTresor(
  args: readonly string[],
  options: { readonly cwd: string; readonly env: Record<string, string>; readonly sink?: string[] },
): Running {
  const child = spawn(process.execPath, [TRESOR, ...args], { cwd: options.cwd, env: options.env });
  let output = '';
  const waiters: { text: string; resolve: () => void }[] = [];
  const onData = (chunk: Buffer): void => {
    const text = chunk.toString('utf8');
    output += text;
    options.sink?.push(text);
    for (const w of [...waiters]) {
      if (output.includes(w.text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exit = new Promise<Exit>((resolveExit) => {
    child.once('close', (code, signal) => {
      resolveExit({ code, signal });
    });
  });
  return {
    process: child,
    pid: child.pid ?? 0,
    exit,
    output: () => output,
    waitFor: (text) =>
      new Promise<void>((resolveWait, reject) => {
        if (output.includes(text)) {
          resolveWait();
          return;
        }
        waiters.push({ text, resolve: resolveWait });
        void exit.then((e) => {
          reject(
            new Error(
              `tresor ${args[0] ?? ''} exited (${String(e.code ?? e.signal)}) before "${text}":\n${output}`,
            ),
          );
        });
      }),
  };
}

/** `tresor up --dir <dir> --port <port>`, resolved once it printed its ready line. */
export async function startUp(
  dir: string,
  port: number,
  options: { readonly cwd: string; readonly env: Record<string, string>; readonly sink?: string[] },
): Promise<Running> {
  const up = startTresor(['up', '--dir', dir, '--port', String(port)], options);
  await up.waitFor('Tresor is ready: ');
  return up;
}

/** Runs a `tresor` command to its end. */
export async function runTresor(
  args: readonly string[],
  options: { readonly cwd: string; readonly env: Record<string, string> },
): Promise<Exit & { readonly output: string }> {
  const run = startTresor(args, options);
  const exit = await run.exit;
  return { ...exit, output: run.output() };
}

/** Stops a process started here (SIGINT, as Ctrl-C) and waits for it; nothing if it already exited. */
export async function stopProcess(
  running: Running | undefined,
  signal: NodeJS.Signals = 'SIGINT',
): Promise<void> {
  if (running === undefined) return;
  const proc = running.process;
  if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
  await running.exit;
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The direct children of `pid`, with their command lines, from /proc. */
export async function childProcesses(pid: number): Promise<{ pid: number; cmdline: string }[]> {
  const children: { pid: number; cmdline: string }[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    // comm (field 2) may contain spaces; the fields after its closing parenthesis are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[1]) !== pid) continue;
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '')).split('\0').join(' ');
    children.push({ pid: Number(entry), cmdline });
  }
  return children;
}

/** The pid of `tresor up`'s child running `tresor <name> serve`. */
export async function upChild(upPid: number, name: 'trust' | 'serving' | 'gateway'): Promise<number> {
  const found = (await childProcesses(upPid)).find((c) => c.cmdline.includes(` ${name} serve `));
  if (found === undefined) throw new Error(`tresor up (pid ${String(upPid)}) has no ${name} child`);
  return found.pid;
}

/** Polls `probe` until it is true; a hang guard (not a timing assertion) gives up after `guardMs`. */
export async function eventually(
  what: string,
  probe: () => Promise<boolean>,
  guardMs = 120_000,
  intervalMs = 250,
): Promise<number> {
  const deadline = Date.now() + guardMs;
  let polls = 0;
  for (;;) {
    polls++;
    if (await probe().catch(() => false)) return polls;
    if (Date.now() > deadline) throw new Error(`${what}: still not true after ${String(guardMs / 1000)} s`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Every file under `dir`, recursively ([] when it does not exist). */
export async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const nested = await Promise.all(
    entries.map((e) =>
      e.isDirectory() ? filesUnder(join(dir, e.name)) : Promise.resolve([join(dir, e.name)]),
    ),
  );
  return nested.flat();
}

/** True when `file` starts with the GGUF magic: a plaintext model. */
export async function isGguf(file: string): Promise<boolean> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (handle === undefined) return false;
  try {
    const head = Buffer.alloc(4);
    await handle.read(head, 0, 4, 0);
    return head.toString('latin1') === 'GGUF';
  } finally {
    await handle.close();
  }
}
