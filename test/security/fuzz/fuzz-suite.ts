import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CI_SEED, formatStats, fuzz, targetSeed, type FuzzStats, type FuzzTarget } from './harness.js';

/**
 * Declares one vitest test per target. Two modes, chosen by environment (set by `npm run fuzz`):
 *
 * - CI (default): the fixed seed `CI_SEED` (or `FUZZ_SEED`), `ciRuns` per target times `FUZZ_SCALE`
 *   (or exactly `FUZZ_RUNS`, to replay a finding).
 * - Campaign: `FUZZ_MS_PER_TARGET` set; runs without a run limit until that time is spent, seeded
 *   with `FUZZ_SEED` (the script picks it at random and prints it for replay).
 *
 * With `FUZZ_REPORT_DIR` set, each file writes its stats as JSON there for the script's totals.
 */

interface Mode {
  readonly seed: number;
  readonly scale: number;
  readonly msPerTarget: number | undefined;
  /** Exact runs per target (replaying a finding), overriding the sizing. */
  readonly runs: number | undefined;
}

function mode(): Mode {
  const env = process.env;
  const seed = env.FUZZ_SEED === undefined || env.FUZZ_SEED === '' ? CI_SEED : Number(env.FUZZ_SEED);
  const scale = env.FUZZ_SCALE === undefined || env.FUZZ_SCALE === '' ? 1 : Number(env.FUZZ_SCALE);
  const ms = env.FUZZ_MS_PER_TARGET;
  const runs = env.FUZZ_RUNS;
  if (!Number.isInteger(seed) || !(scale > 0))
    throw new Error('FUZZ_SEED must be an integer, FUZZ_SCALE > 0');
  return {
    seed,
    scale,
    msPerTarget: ms === undefined || ms === '' ? undefined : Number(ms),
    runs: runs === undefined || runs === '' ? undefined : Number(runs),
  };
}

export interface SerialisedStats {
  readonly family: string;
  readonly name: string;
  readonly seed: number;
  readonly runs: number;
  readonly accepted: number;
  readonly refused: number;
  readonly codes: Record<string, number>;
  readonly slowestMs: number;
  readonly largestAllocation: number;
  readonly heapSamples: number;
  readonly findings: readonly { kind: string; detail: string }[];
}

export function fuzzSuite(title: string, targets: () => readonly FuzzTarget<unknown>[]): void {
  const { seed, scale, msPerTarget, runs } = mode();
  const all: FuzzStats[] = [];
  describe(title, () => {
    for (const t of targets()) {
      const numRuns =
        runs ?? (msPerTarget === undefined ? Math.max(1, Math.round(t.ciRuns * scale)) : 2 ** 31 - 1);
      // Generous: a slow shared machine must not turn a clean run into a timeout.
      const timeout = msPerTarget === undefined ? 600_000 : msPerTarget + 120_000;
      it(
        `${t.name}: only catalogued refusals, no hang, bounded allocation`,
        async () => {
          const stats = await fuzz(t, {
            seed: targetSeed(seed, t.name),
            numRuns,
            ...(msPerTarget === undefined ? {} : { timeLimitMs: msPerTarget }),
          });
          all.push(stats);
          expect(stats.findings.map((f) => `${f.kind}: ${f.detail}`)).toEqual([]);
          // A target whose every input is refused at the first byte tests nothing deeper.
          if (stats.runs >= 500) expect(stats.refused).toBeGreaterThan(0);
        },
        timeout,
      );
    }
    afterAll(() => {
      console.log(`\n${title} (seed ${seed})\n${formatStats(all)}`);
      const dir = process.env.FUZZ_REPORT_DIR;
      if (dir !== undefined && dir !== '') {
        mkdirSync(dir, { recursive: true });
        const out: SerialisedStats[] = all.map((s) => ({ ...s, codes: Object.fromEntries(s.codes) }));
        writeFileSync(join(dir, `${title.replace(/[^a-z0-9]+/gi, '-')}.json`), JSON.stringify(out, null, 2));
      }
    });
  });
}
