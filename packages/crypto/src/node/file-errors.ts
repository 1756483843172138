import { TresorError } from '@tresor/protocol';

/** The errno of a failed fs call, if any. */
export function errnoCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null || !('code' in err)) return undefined;
  return typeof err.code === 'string' ? err.code : undefined;
}

const READ_REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'it does not exist',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  ELOOP: 'too many symbolic links',
  ENOTDIR: 'a parent is not a directory',
};

/** INPUT_UNREADABLE naming the path and the reason, for any failure to open or read an input. */
export function inputUnreadable(path: string, cause: unknown): TresorError {
  const reason =
    READ_REASONS[errnoCode(cause) ?? ''] ?? (cause instanceof Error ? cause.message : String(cause));
  return new TresorError('INPUT_UNREADABLE', `cannot read ${path}: ${reason}`, { cause });
}

/** OUTPUT_UNWRITABLE naming the path and the reason, for any failure to create or write an output. */
export function outputUnwritable(path: string, cause: unknown): TresorError {
  const code = errnoCode(cause);
  const reason =
    code === 'ENOSPC'
      ? 'no space left on the device'
      : code === 'ENOENT'
        ? 'the directory does not exist'
        : (READ_REASONS[code ?? ''] ?? (cause instanceof Error ? cause.message : String(cause)));
  return new TresorError('OUTPUT_UNWRITABLE', `cannot write ${path}: ${reason}`, { cause });
}
