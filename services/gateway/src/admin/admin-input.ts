import type { z } from 'zod';
import { TresorError } from '@tresor/protocol';

/** Parses an admin operation's `request` member; INPUT_MALFORMED naming the first problem. */
export function parseAdminInput<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const at = issue === undefined || issue.path.length === 0 ? '' : ` at ${issue.path.join('.')}`;
    throw new TresorError('INPUT_MALFORMED', `${what}${at}: ${issue?.message ?? 'wrong shape'}`);
  }
  return parsed.data;
}
