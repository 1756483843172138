import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { TresorError } from '@tresor/protocol';

export interface OutputFile {
  readonly name: string;
  readonly content: string;
}

export interface WriteOutputOptions {
  /** Replace a non-empty output directory. */
  readonly force: boolean;
}

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

async function directoryState(path: string): Promise<'missing' | 'empty' | 'non-empty'> {
  let info;
  try {
    info = await stat(path);
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === 'ENOENT') return 'missing';
    throw new TresorError('OUTPUT_UNWRITABLE', `cannot inspect ${path}`, { cause });
  }
  if (!info.isDirectory()) {
    throw new TresorError('USAGE_INVALID', `--out ${path} exists and is not a directory`);
  }
  return (await readdir(path)).length === 0 ? 'empty' : 'non-empty';
}

/**
 * Writes the files into `outDir` all at once or not at all: they go into a fresh sibling directory
 * first, which then takes the place of `outDir` by rename (atomic on one file system), so a reader
 * never sees half a deployment and a failure leaves the previous contents in place.
 *
 * @returns the paths written.
 * @throws TresorError USAGE_INVALID (non-empty without force, not a directory), OUTPUT_UNWRITABLE.
 */
export async function writeOutputDirectory(
  outDir: string,
  files: readonly OutputFile[],
  options: WriteOutputOptions,
): Promise<string[]> {
  const target = resolve(outDir);
  for (const file of files) {
    if (!SAFE_NAME.test(file.name))
      throw new RangeError(`unsafe output file name ${JSON.stringify(file.name)}`);
  }
  const state = await directoryState(target);
  if (state === 'non-empty' && !options.force) {
    throw new TresorError(
      'USAGE_INVALID',
      `--out ${target} is not empty; choose an empty directory or pass --force to replace its contents`,
    );
  }
  const parent = dirname(target);
  const suffix = randomBytes(6).toString('hex');
  const staging = join(parent, `.${basename(target)}.tmp-${suffix}`);
  const previous = join(parent, `.${basename(target)}.old-${suffix}`);
  try {
    await mkdir(parent, { recursive: true });
    await mkdir(staging, { mode: 0o755 });
    for (const file of files) {
      await writeFile(join(staging, file.name), file.content, { mode: 0o644, flag: 'wx' });
    }
    if (state !== 'missing') await rename(target, previous);
    try {
      await rename(staging, target);
    } catch (cause) {
      if (state !== 'missing') await rename(previous, target);
      throw cause;
    }
  } catch (cause) {
    await rm(staging, { recursive: true, force: true });
    if (cause instanceof TresorError) throw cause;
    throw new TresorError(
      'OUTPUT_UNWRITABLE',
      `cannot write ${target}: ${(cause as NodeJS.ErrnoException).code ?? String(cause)}`,
      { cause },
    );
  }
  if (state !== 'missing') await rm(previous, { recursive: true, force: true });
  return files.map((file) => join(target, file.name));
}
