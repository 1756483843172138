import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  alive,
  childProcesses,
  cliEnv,
  eventually,
  filesUnder,
  freePortTriple,
  isGguf,
  runTresor,
  startTresor,
  startUp,
  stopProcess,
  upChild,
  type Running,
} from './up-support.js';

/**
 * Fault injection on `tresor up` itself (issue #13): each of its children (trust, serving, gateway)
 * is killed with SIGKILL in turn, one `tresor up` run per child, on the same state directory.
 *
 * Expectations: `tresor up` stops everything cleanly and says why — CHILD_PROCESS_FAILED, the dead
 * child's name, "signal SIGKILL" and its last log lines — exits 1, and leaves no process (the two
 * other children are gone), no lock and no plaintext model (serving's work directory is wiped even
 * though serving may have been the one killed); the next `tresor up` on the same state directory is
 * ready and answers a chat. A second `tresor up` on a state directory in use is refused with
 * STATE_DIR_IN_USE and leaves the first one running. When `tresor up` itself is killed with SIGKILL
 * its children stop by themselves (they watch their parent, TRESOR_PARENT_PID) and wipe serving's
 * work directory; the next `tresor up` takes over the stale lock.
 */

const CHILDREN = ['trust', 'serving', 'gateway'] as const;

let work: string;
let stateDir: string;
let tmp: string;
let port: number;
let env: Record<string, string>;
const started: Running[] = [];

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tresor-up-faults-'));
  stateDir = join(work, 'state');
  tmp = join(work, 'tmp');
  await mkdir(tmp, { mode: 0o700 });
  port = await freePortTriple();
  env = cliEnv(work, tmp);
});

afterAll(async () => {
  for (const up of started) await stopProcess(up);
  await rm(work, { recursive: true, force: true });
});

describe('tresor up: a child killed with SIGKILL', () => {
  for (const name of CHILDREN) {
    it(`kill -9 of ${name}: CHILD_PROCESS_FAILED with its last log lines, exit 1, nothing left behind`, async () => {
      const up = await startUp(stateDir, port, { cwd: work, env });
      started.push(up);
      const children = await childProcesses(up.pid);
      expect(children).toHaveLength(3);
      expect(existsSync(join(stateDir, 'up.lock'))).toBe(true);
      const victim = await upChild(up.pid, name);
      process.kill(victim, 'SIGKILL');
      const exit = await up.exit;
      const output = up.output();
      expect(exit.code).toBe(1);
      expect(output).toContain(`${name} stopped unexpectedly (signal SIGKILL); its last log lines`);
      expect(output).toMatch(/CHILD_PROCESS_FAILED/);
      expect(output).toContain(join(stateDir, 'logs', `${name}.log`));
      // The last log lines are printed (each prefixed "  | "): the child did log before it died.
      expect(output).toMatch(/\n {2}\| \S/);
      for (const child of children) expect(alive(child.pid), child.cmdline).toBe(false);
      expect(existsSync(join(stateDir, 'up.lock'))).toBe(false);
      const files = [...(await filesUnder(stateDir)), ...(await filesUnder(tmp))];
      for (const file of files) expect(await isGguf(file), file).toBe(false);
      // Serving's private work directory (under TMPDIR) is gone, not just emptied.
      expect((await readdir(tmp)).filter((e) => e.startsWith('tresor-serving-work-'))).toEqual([]);
    });
  }

  it('kill -9 of tresor up itself: its children stop by themselves, nothing left but the stale lock', async () => {
    const up = await startUp(stateDir, port, { cwd: work, env });
    started.push(up);
    const children = await childProcesses(up.pid);
    expect(children).toHaveLength(3);
    up.process.kill('SIGKILL');
    expect((await up.exit).signal).toBe('SIGKILL');
    // Each child notices its parent is gone (TRESOR_PARENT_PID) and closes as on SIGTERM.
    await eventually('the orphaned children stop', () =>
      Promise.resolve(children.every((child) => !alive(child.pid))),
    );
    // Serving closed normally, so it emptied its work directory (the folder itself is `tresor up`'s
    // to remove, and the next one reuses it); the lock is stale (its pid is dead), which the next
    // `tresor up` takes over (below).
    const files = [...(await filesUnder(stateDir)), ...(await filesUnder(tmp))];
    for (const file of files) expect(await isGguf(file), file).toBe(false);
    const workDirs = (await readdir(tmp)).filter((e) => e.startsWith('tresor-serving-work-'));
    for (const dir of workDirs) expect(await readdir(join(tmp, dir)), dir).toEqual([]);
  });

  it('the next tresor up on the same state is ready and answers; a second one on it is refused', async () => {
    const up = await startUp(stateDir, port, { cwd: work, env });
    started.push(up);
    expect(up.output()).not.toMatch(/created |sealed the demo model|created an API key/);
    const local = JSON.parse(await readFile(join(stateDir, 'local.json'), 'utf8')) as Record<string, string>;
    const chat = await runTresor(
      [
        'chat',
        local.gatewayUrl!,
        '--model',
        local.model!,
        '--policy',
        local.policyFile!,
        '--ca',
        local.caCertFile!,
        'one two three',
      ],
      { cwd: work, env: { ...env, TRESOR_API_KEY: local.apiKey! } },
    );
    expect(chat.code, chat.output).toBe(0);
    expect(chat.output.trim().length).toBeGreaterThan(0);

    // Same state directory, other ports: the lock refuses it before any port or file is touched.
    const other = startTresor(['up', '--dir', stateDir, '--port', String(port + 10)], { cwd: work, env });
    const refused = await other.exit;
    expect(refused.code).toBe(1);
    expect(other.output()).toMatch(/STATE_DIR_IN_USE/);
    expect(other.output()).toContain(`pid ${String(up.pid)}`);
    expect(up.process.exitCode).toBeNull();
    expect(await childProcesses(up.pid)).toHaveLength(3);

    up.process.kill('SIGINT');
    expect((await up.exit).code).toBe(0);
    expect(existsSync(join(stateDir, 'up.lock'))).toBe(false);
  });
});
