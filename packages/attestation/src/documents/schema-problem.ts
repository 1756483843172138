import type { z } from 'zod';

/**
 * One line naming the first problem zod found, with its JSON path, so the person who wrote the
 * input can fix exactly that member. An unknown member is named itself (a typo in a strict
 * object must never silently drop a rule).
 */
export function schemaProblem(error: z.ZodError): string {
  const issue = error.issues[0];
  if (issue === undefined) return 'the value has the wrong shape';
  const unknown = issue.code === 'unrecognized_keys' ? issue.keys[0] : undefined;
  const segments = [...issue.path, ...(unknown === undefined ? [] : [unknown])].map(String);
  const where = segments.length === 0 ? '(top level)' : segments.join('.');
  return `${where}: ${unknown === undefined ? issue.message : 'unknown member (misspelt?)'}`;
}
