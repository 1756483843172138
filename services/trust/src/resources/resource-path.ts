import { TresorError } from '@tresor/protocol';

/**
 * A KBS resource path `<repository>/<type>/<tag>` (the client's `kbs:///<repository>/<type>/<tag>`).
 * Segments are 1 to 128 characters of letters, digits, ".", "_" and "-", and never "." or "..",
 * so a path can name a file under the resource directory without escaping it.
 */
export interface ResourcePath {
  readonly repository: string;
  readonly type: string;
  readonly tag: string;
  /** `repository/type/tag`. */
  readonly text: string;
}

const SEGMENT = /^[A-Za-z0-9._-]{1,128}$/;

function segment(value: unknown, name: string): string {
  if (typeof value !== 'string' || !SEGMENT.test(value) || value === '.' || value === '..') {
    throw new TresorError(
      'RESOURCE_PATH_INVALID',
      `resource ${name} must be 1 to 128 letters, digits, ".", "_" or "-" (and not "." or "..")`,
    );
  }
  return value;
}

/** @throws TresorError RESOURCE_PATH_INVALID */
export function resourcePath(repository: unknown, type: unknown, tag: unknown): ResourcePath {
  const r = segment(repository, 'repository');
  const t = segment(type, 'type');
  const g = segment(tag, 'tag');
  return { repository: r, type: t, tag: g, text: `${r}/${t}/${g}` };
}

/** Parses `repository/type/tag`. @throws TresorError RESOURCE_PATH_INVALID */
export function parseResourcePath(text: string): ResourcePath {
  const parts = text.split('/');
  if (parts.length !== 3) {
    throw new TresorError('RESOURCE_PATH_INVALID', 'a resource path is <repository>/<type>/<tag>');
  }
  return resourcePath(parts[0], parts[1], parts[2]);
}
