import type { CliIo } from '@tresor/cli';

/** A CliIo that records what a command prints, at a fixed clock. */
export function captureIo(
  env: Record<string, string> = {},
  now = new Date('2025-06-01T00:00:00Z'),
): CliIo & { out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    stdout: { write: (s: string) => (out += s) },
    stderr: { write: (s: string) => (err += s) },
    env,
    cwd: process.cwd(),
    now: () => now,
    out: () => out,
    err: () => err,
  };
}
