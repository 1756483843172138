import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { FastifyPluginAsync } from 'fastify';
import { TresorError } from '@tresor/protocol';

/**
 * The web console's static files (apps/console/dist), served from memory with a strict CSP.
 *
 * The page hash covers index.html and every file under assets/: SHA-256 over the lines
 * `<sha256 hex>  <path>\n`, sorted by path — what `find index.html assets -type f | LC_ALL=C sort |
 * xargs sha256sum | sha256sum` prints in the build directory, and what the page itself recomputes
 * for its footer (apps/console/src/page-hash.ts). It goes into the reference values, so a client can
 * tell the console it runs is the one that was released.
 */
export const CONSOLE_PREFIX = '/console';
export const CONSOLE_MANIFEST_FILE = 'console-manifest.json';
export const CONSOLE_CONFIG_FILE = 'console-config.json';

/**
 * Nothing but the page's own files: scripts and styles from 'self' only (no inline code), requests
 * only to its own origin (the gateway), no framing, no forms posting elsewhere, no plugins.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "object-src 'none'",
].join('; ');

const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

const TYPES: Readonly<Record<string, string>> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json',
  svg: 'image/svg+xml',
  png: 'image/png',
  woff2: 'font/woff2',
  ico: 'image/x-icon',
  txt: 'text/plain; charset=utf-8',
};
const PAGE_PATH = /^(index\.html|assets\/[A-Za-z0-9._/-]+)$/;
/** Vite names hashed assets `<name>-<8+ base64url hash>.<ext>`: safe to cache for ever. */
const HASHED_ASSET = /^assets\/.+-[A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;
const MAX_FILES = 500;
const MAX_BYTES = 32 * 1024 * 1024;

export interface ConsoleFile {
  readonly body: Buffer;
  readonly type: string;
  readonly sha256: string;
  readonly cacheControl: string;
}

export interface ConsoleBuild {
  /** Relative path (`index.html`, `assets/…`, the manifest) -> file. */
  readonly files: ReadonlyMap<string, ConsoleFile>;
  /** The page hash (see the module comment), to put in the reference values. */
  readonly pageHash: string;
}

const sha256 = (bytes: Buffer | string): string => createHash('sha256').update(bytes).digest('hex');

/** The page hash of `path -> sha256` digests. */
export function consolePageHash(digests: Readonly<Record<string, string>>): string {
  const paths = Object.keys(digests).sort();
  return sha256(paths.map((p) => `${digests[p] ?? ''}  ${p}\n`).join(''));
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const nested = await Promise.all(
    entries.map((e) =>
      e.isDirectory() ? listFiles(join(dir, e.name)) : Promise.resolve(e.isFile() ? [join(dir, e.name)] : []),
    ),
  );
  return nested.flat();
}

/**
 * Reads a console build into memory and computes its page hash. Refuses (CONFIG_INVALID, naming
 * the file) a directory that is not a console build, and a build whose manifest disagrees with its
 * files — a half-copied or edited build must not be served under a hash nobody released.
 */
export async function loadConsoleBuild(dir: string): Promise<ConsoleBuild> {
  const bad = (why: string, cause?: unknown): TresorError =>
    new TresorError(
      'CONFIG_INVALID',
      `the console build in ${dir} ${why}; run \`npm run build -w apps/console\``,
      cause === undefined ? {} : { cause },
    );
  let paths: string[];
  try {
    paths = await listFiles(dir);
  } catch (cause) {
    throw bad('cannot be read', cause);
  }
  if (paths.length > MAX_FILES) throw bad(`has more than ${MAX_FILES} files`);
  const files = new Map<string, ConsoleFile>();
  const digests: Record<string, string> = {};
  let total = 0;
  for (const file of paths) {
    const path = relative(dir, file).split(sep).join('/');
    if (!PAGE_PATH.test(path) && path !== CONSOLE_MANIFEST_FILE) continue;
    const body = await readFile(file);
    total += body.length;
    if (total > MAX_BYTES) throw bad(`is larger than ${MAX_BYTES} bytes`);
    const ext = path.slice(path.lastIndexOf('.') + 1);
    const digest = sha256(body);
    files.set(path, {
      body,
      type: TYPES[ext] ?? 'application/octet-stream',
      sha256: digest,
      cacheControl: HASHED_ASSET.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache',
    });
    if (path !== CONSOLE_MANIFEST_FILE) digests[path] = digest;
  }
  if (!files.has('index.html')) throw bad('has no index.html');
  const pageHash = consolePageHash(digests);
  const manifest = files.get(CONSOLE_MANIFEST_FILE);
  if (manifest === undefined) throw bad(`has no ${CONSOLE_MANIFEST_FILE}`);
  let listed: unknown;
  try {
    listed = JSON.parse(manifest.body.toString('utf8'));
  } catch (cause) {
    throw bad(`has a ${CONSOLE_MANIFEST_FILE} that is not JSON`, cause);
  }
  const m = listed as { pageHash?: unknown; files?: Record<string, unknown> };
  if (m.pageHash !== pageHash)
    throw bad(`does not match its ${CONSOLE_MANIFEST_FILE} (page hash ${pageHash})`);
  for (const [path, digest] of Object.entries(digests)) {
    if (m.files?.[path] !== digest)
      throw bad(`has ${path}, which its manifest does not list with that digest`);
  }
  return { files, pageHash };
}

export interface ConsoleResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer | string;
}

/**
 * The answer for a GET of `path` (relative to the console's root, no leading slash; '' is the
 * page), framework-free so the gateway (fastify) and `tresor console` (node:http) serve the same
 * bytes and headers. `config` is served as console-config.json when given (`tresor console` only).
 */
export function consoleResponse(build: ConsoleBuild, path: string, config?: unknown): ConsoleResponse {
  const name = path === '' ? 'index.html' : path;
  if (name === CONSOLE_CONFIG_FILE && config !== undefined) {
    return {
      status: 200,
      headers: { ...SECURITY_HEADERS, 'content-type': TYPES.json!, 'cache-control': 'no-store' },
      body: JSON.stringify(config),
    };
  }
  const file = build.files.get(name);
  if (file === undefined) {
    const error = new TresorError('ROUTE_NOT_FOUND', `the console has no file ${name.slice(0, 200)}`);
    return {
      status: 404,
      headers: { ...SECURITY_HEADERS, 'content-type': TYPES.json!, 'cache-control': 'no-store' },
      body: JSON.stringify(error.toJSON()),
    };
  }
  return {
    status: 200,
    headers: {
      ...SECURITY_HEADERS,
      'content-type': file.type,
      'cache-control': file.cacheControl,
      etag: `"${file.sha256}"`,
    },
    body: file.body,
  };
}

export interface ConsolePluginOptions {
  readonly build: ConsoleBuild;
}

/**
 * Serves the console at the prefix it is registered with (`/console`): `/console` redirects to
 * `/console/`, which is the page. Register with
 * `app.register(consolePlugin, { prefix: CONSOLE_PREFIX, build: await loadConsoleBuild(dir) })`.
 */
export const consolePlugin: FastifyPluginAsync<ConsolePluginOptions> = (scope, options) => {
  const send = (path: string, etag: string | undefined) => {
    const answer = consoleResponse(options.build, path);
    const notModified = answer.status === 200 && etag !== undefined && etag === answer.headers.etag;
    return { answer, notModified };
  };
  scope.get('', (request, reply) => reply.redirect(`${request.url.split('?')[0] ?? CONSOLE_PREFIX}/`, 308));
  scope.get('/*', (request, reply) => {
    const path = (request.params as { '*'?: string })['*'] ?? '';
    const { answer, notModified } = send(path, request.headers['if-none-match']);
    void reply.headers(answer.headers);
    if (notModified) return reply.code(304).send();
    return reply.code(answer.status).send(answer.body);
  });
  return Promise.resolve();
};
