import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { InvalidArgumentError } from 'commander';
import { isTresorError, TresorError } from '@tresor/protocol';
import type { CommandModule } from '../program.js';
import { untilSignal } from '../signals.js';
import { DEFAULT_STATE_DIR } from '../platform/layout.js';
import { DEFAULT_GATEWAY_PORT, parsePortFlag, platformPorts, requireFreePorts } from '../platform/ports.js';
import { DEFAULT_MODEL_ID, runUp } from '../platform/platform.js';

interface UpFlags {
  readonly dir: string;
  readonly port: number;
  readonly model: string;
}

const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

function parseModelId(text: string): string {
  if (!MODEL_ID.test(text)) {
    throw new InvalidArgumentError('a model id: letters, digits and . _ - (at most 64), e.g. tresor-demo');
  }
  return text;
}

function portOption(text: string): number {
  try {
    return parsePortFlag(text);
  } catch (err) {
    throw new InvalidArgumentError(isTresorError(err) ? err.message : String(err));
  }
}

/** The lock file of a state directory a `tresor up` runs on (created exclusively, 0600). */
export const UP_LOCK_FILE = 'up.lock';

interface LockOwner {
  readonly pid: number;
  /** The owner's start time (/proc/<pid>/stat field 22), so a reused pid is not mistaken for it. */
  readonly start?: string;
}

/** A process's start time in clock ticks since boot (Linux), or undefined where /proc has none. */
async function processStart(pid: number): Promise<string | undefined> {
  const stat = await readFile(`/proc/${String(pid)}/stat`, 'utf8').catch(() => undefined);
  if (stat === undefined) return undefined;
  // comm (field 2) may contain spaces and parentheses; the fields after its last ')' are fixed.
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** True when the lock's owner still runs: same pid alive and, where /proc tells, the same start time. */
async function ownerAlive(owner: LockOwner): Promise<boolean> {
  if (!processAlive(owner.pid)) return false;
  if (owner.start === undefined) return true;
  const start = await processStart(owner.pid);
  return start === undefined || start === owner.start;
}

function parseOwner(text: string): LockOwner | undefined {
  try {
    const value = JSON.parse(text) as { pid?: unknown; start?: unknown };
    if (typeof value.pid !== 'number' || !Number.isSafeInteger(value.pid) || value.pid <= 0) return undefined;
    return typeof value.start === 'string' ? { pid: value.pid, start: value.start } : { pid: value.pid };
  } catch {
    return undefined;
  }
}

/**
 * Takes `<dir>/up.lock` for this process, so two `tresor up` never run on one state directory (they
 * would share keystores, databases and serving's work directory). A lock whose process is gone
 * (killed, machine restarted) is stale and taken over. Returns the release function, which removes
 * the file only while it is still this process's.
 *
 * @throws TresorError STATE_DIR_IN_USE when a live process holds the lock
 */
/**
 * Refuses, without creating anything, a state directory whose lock a live `tresor up` holds — so
 * that a second start names the first one (`STATE_DIR_IN_USE`) rather than its busy ports.
 *
 * @throws TresorError STATE_DIR_IN_USE
 */
export async function refuseLockedStateDir(dir: string): Promise<void> {
  const text = await readFile(join(dir, UP_LOCK_FILE), 'utf8').catch(() => undefined);
  if (text === undefined) return;
  const owner = parseOwner(text);
  if (owner !== undefined && (await ownerAlive(owner))) {
    throw new TresorError(
      'STATE_DIR_IN_USE',
      `tresor up (pid ${String(owner.pid)}) is already running on ${dir}; stop it or use another --dir`,
      { details: { pid: owner.pid } },
    );
  }
}

export async function lockStateDir(dir: string, pid: number = process.pid): Promise<() => Promise<void>> {
  await mkdir(dir, { recursive: true, mode: 0o700 }).catch((cause: unknown) => {
    throw new TresorError('OUTPUT_UNWRITABLE', `cannot create the state directory ${dir}`, { cause });
  });
  const file = join(dir, UP_LOCK_FILE);
  const start = await processStart(pid);
  const content = JSON.stringify(start === undefined ? { pid } : { pid, start });
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      try {
        await handle.writeFile(`${content}\n`);
      } finally {
        await handle.close();
      }
      return async () => {
        const now = await readFile(file, 'utf8').catch(() => undefined);
        if (now?.trim() === content) await unlink(file).catch(() => undefined);
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new TresorError('OUTPUT_UNWRITABLE', `cannot create the lock file ${file}`, { cause: err });
      }
    }
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text === undefined) continue; // released meanwhile: try again
    const owner = parseOwner(text);
    // An unreadable lock may be one being written this instant: only a lock naming a dead
    // process is taken over; a damaged one is refused rather than guessed at.
    if (owner === undefined) {
      throw new TresorError(
        'STATE_DIR_IN_USE',
        `the lock file ${file} is damaged; if no tresor up runs on ${dir}, delete it and start again`,
      );
    }
    if (await ownerAlive(owner)) {
      throw new TresorError(
        'STATE_DIR_IN_USE',
        `tresor up (pid ${String(owner.pid)}) is already running on ${dir}; stop it or use another --dir`,
        { details: { pid: owner.pid } },
      );
    }
    await unlink(file).catch(() => undefined); // stale: its process is gone
  }
  throw new TresorError(
    'STATE_DIR_IN_USE',
    `could not take the lock file ${file}; another tresor up is starting on ${dir}`,
  );
}

/** `tresor up`: the whole platform on this machine (what `npm start` runs). */
export const upCommands: CommandModule = (program, io) => {
  program
    .command('up')
    .description(
      'run the whole platform locally (trust, serving, gateway; sample TEE, demo model) until Ctrl-C',
    )
    .option(
      '--dir <dir>',
      'state directory (created 0700 on the first start, reused later)',
      DEFAULT_STATE_DIR,
    )
    .option(
      '--port <n>',
      `gateway port; trust takes n+1 and serving n+2 (default ${String(DEFAULT_GATEWAY_PORT)})`,
      portOption,
      DEFAULT_GATEWAY_PORT,
    )
    .option('--model <id>', 'id of the demo model', parseModelId, DEFAULT_MODEL_ID)
    .addHelpText(
      'after',
      '\nThe first start creates the state directory: keystore, keys, local CA, sealed demo model, tenant\n' +
        'and API key. It prints `Tresor is ready: <gateway-url>` and writes the same facts to\n' +
        '<dir>/local.json. Ctrl-C stops every process; if one dies, all stop and its last log lines\n' +
        'are printed (exit 1). One tresor up per state directory (<dir>/up.lock). The sample TEE protects nothing: local development only (docs/operations.md).',
    )
    .action(async (flags: UpFlags) => {
      // One `tresor up` per state directory, refused before anything is touched or listened on;
      // busy ports are refused before the lock creates the state directory.
      const stateDir = resolve(io.cwd, flags.dir);
      await refuseLockedStateDir(stateDir);
      await requireFreePorts(platformPorts(flags.port));
      const unlock = await lockStateDir(stateDir);
      // After the first Ctrl-C, further ones must not kill this process half-way through stopping
      // the others (it removes serving's decrypted models last): they only say it is under way.
      const again = (): void => {
        io.stderr.write('still stopping the platform processes…\n');
      };
      const stop = untilSignal().then((signal) => {
        process.on('SIGINT', again);
        process.on('SIGTERM', again);
        return signal;
      });
      try {
        await runUp(io, { dir: flags.dir, gatewayPort: flags.port, model: flags.model, stop });
      } finally {
        process.off('SIGINT', again);
        process.off('SIGTERM', again);
        await unlock();
      }
    });
};
