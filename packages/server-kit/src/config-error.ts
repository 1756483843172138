import type { z } from 'zod';
import { TresorError } from '@tresor/protocol';

/**
 * The CONFIG_INVALID error for the first problem zod found, naming the field by its path (an
 * unknown member at the member itself), so an operator can fix exactly that line. Shared by every
 * service's configuration schema so they all report problems the same way.
 */
export function configInvalid(what: string, error: z.ZodError): TresorError {
  const issue = error.issues[0];
  const unknown = issue?.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
  const segments = [...(issue?.path ?? []), ...(unknown === undefined ? [] : [unknown])].map(String);
  const path = segments.length === 0 ? '(top level)' : segments.join('.');
  const why = unknown === undefined ? (issue?.message ?? 'invalid') : 'not a known setting (misspelt?)';
  return new TresorError('CONFIG_INVALID', `${what} field ${path}: ${why}`, {
    details: { path, issues: error.issues.length },
  });
}

/** Freezes a parsed configuration and everything inside it, so no code path can change it after start-up. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const member of Object.values(value)) deepFreeze(member);
  }
  return value;
}
