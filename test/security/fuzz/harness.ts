import fc from 'fast-check';
import { isErrorCode, isTresorError } from '@tresor/protocol';

/**
 * Property fuzzing of the parsers that take untrusted input (issue #13). One property for every
 * target: whatever the bytes, the parser either returns or throws a TresorError with a catalogue
 * code; it never throws anything else, never takes more than `HANG_MS` on one input, and never
 * grows the heap by more than `ALLOCATION_BOUND` for one (bounded) input.
 *
 * Targets are data, shared by the CI test (fixed seed, sized run counts) and `npm run fuzz` (random
 * seed, time budget), so a finding from a long campaign reproduces in the test with its seed.
 */

/** The parser families the issue names; each must reach 100,000 runs in CI across its targets. */
export type FuzzFamily =
  | 'attestation evidence'
  | 'certificates'
  | 'OHTTP and BHTTP'
  | 'sealed models'
  | 'JWE and JWS'
  | 'KBS messages'
  | 'policy and config files';

export interface FuzzTarget<T = Uint8Array> {
  readonly family: FuzzFamily;
  /** The parser entry point, as a reader would look it up (`parseTdxQuote`). */
  readonly name: string;
  /** Mutations of real vectors and random inputs, all of bounded size. */
  readonly input: fc.Arbitrary<T>;
  /** Feeds one input to the parser. Returning means accepted; throwing means refused. */
  readonly run: (input: T) => unknown;
  /** True when `run` returns a promise (the property then awaits each input). */
  readonly async?: boolean;
  /** Runs in CI, sized so the whole suite stays within about three minutes on two cores. */
  readonly ciRuns: number;
}

/** Erases the input type so targets of different input types fit in one list. */
export function target<T>(t: FuzzTarget<T>): FuzzTarget<unknown> {
  return t as unknown as FuzzTarget<unknown>;
}

/**
 * One input using more CPU time than this is a hang (not a speed assertion: the slowest real parse,
 * an 8-GPU NVIDIA evidence list of 99 KB, takes about 150 ms). CPU time, not wall time: on a shared
 * machine wall time of a legitimate parse grows with the load, CPU time does not.
 */
export const HANG_MS = 2_000;
/** Wall time after which one input is a stall even if it used no CPU (an await that never settles). */
export const STALL_MS = 30_000;
/** One bounded input growing heap plus array buffers by more than this is unbounded allocation. */
export const ALLOCATION_BOUND = 64 * 1024 * 1024;
/** Heap is measured on one input in this many (process.memoryUsage() is too slow for every input). */
const HEAP_SAMPLE_EVERY = 97;

export interface FuzzFinding {
  /** `counterexample`: fast-check's report of the (shrunk) failing input, with seed and path. */
  readonly kind: 'uncatalogued exception' | 'hang' | 'allocation' | 'counterexample';
  readonly detail: string;
}

export interface FuzzStats {
  readonly family: FuzzFamily;
  readonly name: string;
  readonly seed: number;
  runs: number;
  accepted: number;
  refused: number;
  /** Refusals by catalogue code. */
  readonly codes: Map<string, number>;
  /** CPU time of the most expensive input. */
  slowestMs: number;
  largestAllocation: number;
  heapSamples: number;
  /** Wall time of the whole target, generation and shrinking included. */
  elapsedMs: number;
  readonly findings: FuzzFinding[];
}

function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.constructor.name}: ${err.message}\n${err.stack ?? ''}`;
  return `non-Error thrown: ${String(err)}`;
}

function memory(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

interface Probe {
  readonly sample: boolean;
  readonly before: number;
  readonly start: number;
  readonly cpu: NodeJS.CpuUsage;
}

function startProbe(stats: FuzzStats): Probe {
  const sample = stats.runs % HEAP_SAMPLE_EVERY === 0;
  return { sample, before: sample ? memory() : 0, start: performance.now(), cpu: process.cpuUsage() };
}

function classify(err: unknown, stats: FuzzStats): FuzzFinding | null {
  if (err === undefined) {
    stats.accepted++;
    return null;
  }
  if (isTresorError(err) && isErrorCode(err.code)) {
    stats.refused++;
    stats.codes.set(err.code, (stats.codes.get(err.code) ?? 0) + 1);
    return null;
  }
  return { kind: 'uncatalogued exception', detail: describeError(err) };
}

function finishProbe(probe: Probe, stats: FuzzStats, finding: FuzzFinding | null): FuzzFinding | null {
  const elapsed = performance.now() - probe.start;
  const used = process.cpuUsage(probe.cpu);
  const cpuMs = (used.user + used.system) / 1000;
  stats.runs++;
  stats.slowestMs = Math.max(stats.slowestMs, cpuMs);
  if (cpuMs > HANG_MS || elapsed > STALL_MS) {
    finding ??= {
      kind: 'hang',
      detail: `one input took ${cpuMs.toFixed(0)} ms of CPU, ${elapsed.toFixed(0)} ms of wall time`,
    };
  }
  if (probe.sample) {
    const grown = memory() - probe.before;
    stats.heapSamples++;
    stats.largestAllocation = Math.max(stats.largestAllocation, grown);
    if (grown > ALLOCATION_BOUND)
      finding ??= { kind: 'allocation', detail: `one input grew the heap by ${grown} bytes` };
  }
  return finding;
}

/** A thrown non-Error placeholder meaning "returned normally". */
const NO_ERROR = undefined;

function runSync<T>(t: FuzzTarget<T>, input: T, stats: FuzzStats): FuzzFinding | null {
  const probe = startProbe(stats);
  let thrown: unknown = NO_ERROR;
  try {
    if (t.run(input) instanceof Promise)
      throw new Error(`${t.name} returns a promise: mark the target async`);
  } catch (err) {
    thrown = err ?? new Error('undefined was thrown');
  }
  return finishProbe(probe, stats, classify(thrown, stats));
}

async function runAsync<T>(t: FuzzTarget<T>, input: T, stats: FuzzStats): Promise<FuzzFinding | null> {
  const probe = startProbe(stats);
  let thrown: unknown = NO_ERROR;
  try {
    await t.run(input);
  } catch (err) {
    thrown = err ?? new Error('undefined was thrown');
  }
  return finishProbe(probe, stats, classify(thrown, stats));
}

export interface FuzzRunOptions {
  readonly seed: number;
  /** Stop after this many runs... */
  readonly numRuns: number;
  /** ...or after this long, whichever comes first. */
  readonly timeLimitMs?: number;
}

/**
 * Fuzzes one target. fast-check shrinks a failing input to a small one and reports it with the
 * seed and path to replay; the stats record every run for the summary.
 */
export async function fuzz<T>(t: FuzzTarget<T>, options: FuzzRunOptions): Promise<FuzzStats> {
  const stats: FuzzStats = {
    family: t.family,
    name: t.name,
    seed: options.seed,
    runs: 0,
    accepted: 0,
    refused: 0,
    codes: new Map(),
    slowestMs: 0,
    largestAllocation: 0,
    heapSamples: 0,
    elapsedMs: 0,
    findings: [],
  };
  const began = performance.now();
  const record = (finding: FuzzFinding | null): void => {
    if (finding === null) return;
    if (stats.findings.length < 5) stats.findings.push(finding);
    throw new Error(`${t.name}: ${finding.kind}: ${finding.detail}`);
  };
  const property =
    t.async === true
      ? fc.asyncProperty(t.input, async (input) => {
          record(await runAsync(t, input, stats));
        })
      : fc.property(t.input, (input) => {
          record(runSync(t, input, stats));
        });
  const result = await fc.check(property as fc.IAsyncProperty<[T]>, {
    seed: options.seed,
    numRuns: options.numRuns,
    ...(options.timeLimitMs === undefined ? {} : { interruptAfterTimeLimit: options.timeLimitMs }),
    // fast-check's own per-run timeout: an async parse that never settles fails instead of hanging.
    timeout: STALL_MS,
    markInterruptAsFailure: false,
  });
  stats.elapsedMs = performance.now() - began;
  if (result.failed) {
    stats.findings.push({
      kind: 'counterexample',
      detail: fc.defaultReportMessage(result) ?? 'property failed',
    });
  }
  return stats;
}

/** A stable per-target seed from the base seed and the target's name (FNV-1a). */
export function targetSeed(base: number, name: string): number {
  let h = 0x811c9dc5 ^ base;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h | 0;
}

/** The fixed CI seed; `FUZZ_SEED` overrides it to replay a campaign's seed. */
export const CI_SEED = 0x7e5013;

export function formatStats(all: readonly FuzzStats[]): string {
  const rows = all.map((s) => {
    const codes = [...s.codes.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([c, n]) => `${c}×${n}`)
      .join(' ');
    return `${s.family.padEnd(24)} ${s.name.padEnd(34)} ${String(s.runs).padStart(8)} ${String(s.accepted).padStart(7)} ${String(s.refused).padStart(8)} ${s.slowestMs.toFixed(1).padStart(8)} ${(s.largestAllocation / 1048576).toFixed(1).padStart(7)} ${String(Math.round((s.runs * 1000) / Math.max(1, s.elapsedMs))).padStart(6)}  ${String(s.findings.length).padStart(3)}  ${codes}`;
  });
  const header = `${'family'.padEnd(24)} ${'parser'.padEnd(34)} ${'runs'.padStart(8)} ${'accept'.padStart(7)} ${'refused'.padStart(8)} ${'max cpu'.padStart(8)} ${'max MiB'.padStart(7)} ${'runs/s'.padStart(6)}  bad  top codes`;
  return [header, ...rows].join('\n');
}
