import { TresorError, isTresorError } from '@tresor/protocol';
import type { CliIo } from './io.js';

/**
 * Prints a failure as `error CODE: message` and `fix: action` on stderr and returns the exit code
 * of the contract (1 refused / verification failed, 2 usage or unreadable input). Never prints a
 * stack trace: an unexpected error becomes INTERNAL_ERROR, with the stack only under TRESOR_DEBUG=1.
 */
export function reportError(err: unknown, io: CliIo): 1 | 2 {
  const e = isTresorError(err)
    ? err
    : new TresorError(
        'INTERNAL_ERROR',
        `unexpected error: ${err instanceof Error ? err.message : String(err)}`,
      );
  io.stderr.write(`error ${e.code}: ${e.message}\nfix: ${e.action}\n`);
  if (io.env.TRESOR_DEBUG === '1' && err instanceof Error && err.stack !== undefined) {
    io.stderr.write(`${err.stack}\n`);
  }
  return e.exit;
}
