import { isTresorError } from '@tresor/protocol';

/** One line for a person: the catalogue code and what to do, never a stack. */
export function describeError(err: unknown): string {
  if (isTresorError(err)) return `${err.code}: ${err.message}. ${err.action}`;
  if (err instanceof DOMException && err.name === 'AbortError') return 'Stopped.';
  if (err instanceof Error) return err.message;
  return 'Something failed.';
}
