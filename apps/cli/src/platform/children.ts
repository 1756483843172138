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
 * - `--max-semi-space-size=2`: V8's young generation at 2 x 2 MiB instead of 2 x 16 MiB. A
 *   request's garbage dies young either way; the scavenges are more frequent and each is as cheap
 *   (CPU per request unchanged within noise), and the gateway's peak at concurrency 64 fell by
 *   about 12 MiB against 2 x 8 MiB.
 * - `--heap-growing-percent=10`: the next full collection once old space is 1.1x what survived the
 *   last one, instead of V8's own factor (up to 1.6x with the 1 GiB limit below, 4x without it).
 *   The services keep 30-50 MiB live, so a full collection stays cheap; together with the young
 *   generation above the gateway's peak fell from about 179 to 140-144 MiB, CPU per request
 *   unchanged within noise, and serving's time to ready the same (1.78x against 1.81x without
 *   any of these flags, bench/serving.ts).
 * - `--max-old-space-size=1024`: a ceiling 20x above what the services keep live.
 * A MALLOC_ARENA_MAX of the caller's own is passed on instead (childEnv).
 */
export const SERVICE_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: '2' };
export const SERVICE_NODE_FLAGS: readonly string[] = [
  '--max-semi-space-size=2',
  '--liftoff-only',
  '--heap-growing-percent=10',
  '--max-old-space-size=1024',
];

export type ServiceName = 'trust' | 'serving' | 'gateway';

/**
 * Fixed malloc thresholds for trust and the gateway: glibc's dynamic mmap threshold otherwise
 * rises to the size of the largest buffer freed (up to 32 MiB), after which buffers of that size
 * come from the heap and stay there; with allocations of 128 KiB or more always mapped (and
 * unmapped when freed) and the heap trimmed above 128 KiB free, the gateway's peak at
 * concurrency 64 fell by about 7 MiB, CPU per request unchanged within noise. Not serving: its
 * unseal relies on that very dynamic threshold to reuse freed AES-GCM output instead of
 * page-faulting it in again (packages/crypto/src/node/freed-heap-retention.ts).
 */
export const SERVICE_MALLOC_THRESHOLDS: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};

/** The variables {@link SERVICE_PROCESS_ENV} and, but for serving, {@link SERVICE_MALLOC_THRESHOLDS}. */
export function serviceProcessEnv(service: ServiceName): Readonly<Record<string, string>> {
  return service === 'serving'
    ? SERVICE_PROCESS_ENV
    : { ...SERVICE_PROCESS_ENV, ...SERVICE_MALLOC_THRESHOLDS };
}

/** `node <SERVICE_NODE_FLAGS> apps/cli/bin/tresor.js <service> serve --config <file>`. */
export function serviceChild(options: {
  readonly name: ServiceName;
  readonly config: string;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly ready: ReadinessProbe;
}): ChildSpec {
  return {
    name: options.name,
    command: process.execPath,
    args: [...SERVICE_NODE_FLAGS, TRESOR_BIN, options.name, 'serve', '--config', options.config],
    env: { ...serviceProcessEnv(options.name), ...options.env },
    cwd: options.cwd,
    ready: options.ready,
  };
}
