import { fileURLToPath } from 'node:url';
import type { ChildSpec, ReadinessProbe } from './supervisor.js';

/** The `tresor` bin of this checkout (apps/cli/bin/tresor.js), from src/ (tests) and dist/ alike. */
export const TRESOR_BIN = fileURLToPath(new URL('../../bin/tresor.js', import.meta.url));

/**
 * Variables a platform process inherits from the caller. Nothing else of the caller's environment
 * is passed on: a child gets no credentials it does not need (the keystore passphrase goes to
 * trust only, through `extra`).
 */
const INHERITED = [
  'PATH',
  'HOME',
  'TMPDIR',
  'LANG',
  'TZ',
  'NODE_OPTIONS',
  'MALLOC_ARENA_MAX',
  'TRESOR_DEBUG',
  'SYSTEMROOT',
];

export function childEnv(
  from: Readonly<Record<string, string | undefined>>,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED) {
    const value = from[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

/**
 * Memory settings of every long-running service process (trust, serving, gateway), wherever it is
 * launched: by `tresor up` here, in the images (deploy/docker/*.Dockerfile and
 * scripts/build-images.ts set the same), by the benchmark harness. Measured on the gateway under
 * the concurrency-64 benchmark (bench/harness/notes.md, "Gateway memory"):
 * - MALLOC_ARENA_MAX=2: glibc otherwise gives each thread that allocates (libuv's pool runs the
 *   WebCrypto jobs, V8's helper threads compile and collect) an arena of its own; about 25 MiB less.
 * - `--liftoff-only`: Cedar's WebAssembly (trust, gateway) stays on V8's baseline compiler instead
 *   of tiering up to TurboFan, whose compilations of the 4 MiB module cost about 45 MiB. Cedar runs
 *   on policy and decision cache misses only; a miss takes about 0.2 ms instead of 0.1 ms.
 * - `--max-semi-space-size=8`: V8's young generation at 2 x 8 MiB instead of 2 x 16 MiB; about
 *   10 MiB less for more (cheap) scavenges.
 * - `--max-old-space-size=1024`: on a host with lots of memory V8 lets old space grow to about 4x
 *   what survived the last full collection before it collects again (its heap growing factor
 *   shrinks with the heap limit: about 1.6x at 1 GiB). The services keep 30-50 MiB live, so 1 GiB
 *   leaves them 20x headroom; the gateway's peak at concurrency 64 fell 168 / 203 -> 154-158 /
 *   177-179 MiB (single / stream), CPU per request unchanged within noise.
 * A MALLOC_ARENA_MAX of the caller's own is passed on instead (childEnv).
 */
export const SERVICE_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
export const SERVICE_NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=8',
  '--liftoff-only',
  '--max-old-space-size=1024',
];

/** `node <SERVICE_NODE_FLAGS> apps/cli/bin/tresor.js <service> serve --config <file>`. */
export function serviceChild(options: {
  readonly name: string;
  readonly config: string;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly ready: ReadinessProbe;
}): ChildSpec {
  return {
    name: options.name,
    command: process.execPath,
    args: [...SERVICE_NODE_FLAGS, TRESOR_BIN, options.name, 'serve', '--config', options.config],
    env: { ...SERVICE_PROCESS_ENV, ...options.env },
    cwd: options.cwd,
    ready: options.ready,
  };
}
