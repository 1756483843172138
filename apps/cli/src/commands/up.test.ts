import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { run } from '../index.js';
import { captureIo } from '../../../../test/support/cli-io.js';
import { lockStateDir, UP_LOCK_FILE } from './up.js';

let root: string;
let n = 0;
const fresh = (): string => join(root, `state-${String(n++)}`);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tresor-up-lock-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

async function codeOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
    return 'taken';
  } catch (err) {
    if (isTresorError(err)) return err.code;
    throw err;
  }
}

/** The pid of a process that has exited (so no process runs under it, barring reuse). */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', ''], { stdio: 'ignore' });
  const pid = child.pid!;
  await new Promise((resolveExit) => child.once('close', resolveExit));
  return pid;
}

describe('tresor up: one process per state directory (up.lock)', () => {
  it('writes a 0600 lock naming this process and removes it on release', async () => {
    const dir = fresh();
    const release = await lockStateDir(dir);
    const file = join(dir, UP_LOCK_FILE);
    expect((JSON.parse(await readFile(file, 'utf8')) as { pid: number }).pid).toBe(process.pid);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await release();
    await expect(readFile(file)).rejects.toMatchObject({ code: 'ENOENT' });
    await (
      await lockStateDir(dir)
    )(); // free again
  });

  it('refuses a second lock while the holder runs, naming its pid', async () => {
    const dir = fresh();
    const release = await lockStateDir(dir);
    try {
      const err = await lockStateDir(dir).catch((e: unknown) => e);
      expect(isTresorError(err) && err.code).toBe('STATE_DIR_IN_USE');
      expect((err as Error).message).toContain(`pid ${String(process.pid)}`);
    } finally {
      await release();
    }
  });

  it('takes over a stale lock whose process is gone', async () => {
    const dir = fresh();
    const pid = await deadPid();
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, UP_LOCK_FILE), JSON.stringify({ pid }));
    const release = await lockStateDir(dir);
    expect((JSON.parse(await readFile(join(dir, UP_LOCK_FILE), 'utf8')) as { pid: number }).pid).toBe(
      process.pid,
    );
    await release();
  });

  it('takes over a lock whose pid now belongs to another process (start time differs)', async () => {
    const dir = fresh();
    await (
      await lockStateDir(dir)
    )();
    await writeFile(join(dir, UP_LOCK_FILE), JSON.stringify({ pid: process.pid, start: '1' }));
    const release = await lockStateDir(dir);
    await release();
  });

  it('refuses a damaged lock file instead of guessing, and says how to clear it', async () => {
    const dir = fresh();
    await (
      await lockStateDir(dir)
    )();
    for (const text of ['', '{', '{"pid":"12"}', '{"pid":-1}', '{"pid":1.5}', 'null']) {
      await writeFile(join(dir, UP_LOCK_FILE), text);
      const err = await lockStateDir(dir).catch((e: unknown) => e);
      expect(isTresorError(err) && err.code, text).toBe('STATE_DIR_IN_USE');
      expect((err as Error).message).toMatch(/damaged; .*delete it/);
    }
  });

  it('a release does not remove a lock another process took over meanwhile', async () => {
    const dir = fresh();
    const release = await lockStateDir(dir);
    const other = JSON.stringify({ pid: 1 });
    await writeFile(join(dir, UP_LOCK_FILE), other);
    await release();
    expect(await readFile(join(dir, UP_LOCK_FILE), 'utf8')).toBe(other);
  });

  it('tresor up on a locked state directory exits 1 with STATE_DIR_IN_USE before touching it', async () => {
    const dir = fresh();
    const release = await lockStateDir(dir);
    try {
      const io = captureIo({}, new Date());
      const code = await run(['up', '--dir', dir, '--port', '18480'], io);
      expect(code).toBe(1);
      expect(io.err()).toMatch(/STATE_DIR_IN_USE/);
      expect(io.err()).toContain(`pid ${String(process.pid)}`);
      // Nothing was set up: no platform record, no secrets.
      expect((await readdir(dir)).sort()).toEqual([UP_LOCK_FILE]);
    } finally {
      await release();
    }
  });

  it('an unwritable state directory is OUTPUT_UNWRITABLE, not a lock refusal', async () => {
    const dir = fresh();
    await writeFile(dir, 'a file, not a directory');
    expect(await codeOf(lockStateDir(join(dir, 'sub')))).toBe('OUTPUT_UNWRITABLE');
  });
});
