/**
 * `npm run fuzz -- [--minutes N] [--seed S] [--workers W] [--only <file>]`: a fuzz campaign over
 * every parser target of the security suite (test/security/fuzz-*.test.ts), with a random seed
 * printed for replay, spending about N minutes in total (default 10). It runs the same targets
 * and properties as the CI test, through vitest (so workspace sources resolve the same way), and
 * prints the runs per parser family at the end.
 *
 * `npm run fuzz -- --ci` runs the CI sizing (fixed seed) and prints the same totals: the figures
 * docs/security.md quotes.
 *
 * Replay a finding: the failure names its target, seed and run count; run
 *   FUZZ_SEED=<seed> FUZZ_RUNS=<runs> npx vitest run --project security test/security/fuzz-<family>.test.ts -t '<target>'
 * (the input sequence depends only on the seed and the target name, not on the time budget).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SerialisedStats } from '../test/security/fuzz/fuzz-suite.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '10' },
    seed: { type: 'string' },
    workers: { type: 'string' },
    only: { type: 'string' },
    ci: { type: 'boolean', default: false },
  },
});

const minutes = Number(values.minutes);
if (!(minutes > 0)) {
  console.error('USAGE_INVALID: --minutes must be a positive number');
  process.exit(2);
}
const seed = values.seed === undefined ? (Math.random() * 2 ** 31) | 0 : Number(values.seed);
if (!Number.isInteger(seed)) {
  console.error('USAGE_INVALID: --seed must be an integer');
  process.exit(2);
}
const workers = values.workers === undefined ? availableParallelism() : Number(values.workers);
const files =
  values.only === undefined
    ? ['test/security/fuzz-']
    : [`test/security/fuzz-${values.only.replace(/^fuzz-|\.test\.ts$/g, '')}.test.ts`];
const vitest = ['vitest', 'run', '--project', 'security', `--maxWorkers=${workers}`, ...files];

/** How many targets there are: each is one test, so `vitest list` counts them without running. */
function countTargets(): number {
  const listed = spawnSync('npx', ['vitest', 'list', '--project', 'security', ...files], {
    encoding: 'utf8',
  });
  if (listed.status !== 0) {
    process.stderr.write(listed.stderr);
    throw new Error('vitest list failed');
  }
  return listed.stdout.split('\n').filter((line) => line.includes('only catalogued refusals')).length;
}

const reportDir = mkdtempSync(join(tmpdir(), 'tresor-fuzz-'));
const env: NodeJS.ProcessEnv = { ...process.env, FUZZ_REPORT_DIR: reportDir };
if (values.ci) {
  delete env.FUZZ_SEED;
  console.log('fuzz: CI sizing, fixed seed');
} else {
  const targets = countTargets();
  const msPerTarget = Math.max(1000, Math.floor((minutes * 60_000 * workers) / targets));
  env.FUZZ_SEED = String(seed);
  env.FUZZ_MS_PER_TARGET = String(msPerTarget);
  console.log(
    `fuzz: seed ${seed}, ${targets} targets, ${(msPerTarget / 1000).toFixed(1)} s each on ${workers} worker(s), about ${minutes} min`,
  );
}

const started = Date.now();
const run = spawnSync('npx', vitest, { stdio: 'inherit', env });
const elapsed = (Date.now() - started) / 1000;

const stats: SerialisedStats[] = readdirSync(reportDir)
  .filter((f) => f.endsWith('.json'))
  .flatMap((f) => JSON.parse(readFileSync(join(reportDir, f), 'utf8')) as SerialisedStats[]);
rmSync(reportDir, { recursive: true, force: true });

const families = new Map<string, { targets: number; runs: number; findings: number }>();
for (const s of stats) {
  const f = families.get(s.family) ?? { targets: 0, runs: 0, findings: 0 };
  f.targets++;
  f.runs += s.runs;
  f.findings += s.findings.length;
  families.set(s.family, f);
}
console.log('\nruns per parser family');
for (const [family, f] of [...families.entries()].sort()) {
  console.log(
    `  ${family.padEnd(26)} ${String(f.targets).padStart(3)} parsers ${String(f.runs).padStart(10)} runs  ${f.findings} findings`,
  );
}
const total = stats.reduce((n, s) => n + s.runs, 0);
const findings = stats.flatMap((s) =>
  s.findings.map((x) => ({ target: s.name, seed: s.seed, runs: s.runs, ...x })),
);
console.log(
  `  total ${total} runs in ${elapsed.toFixed(0)} s, ${findings.length} findings; seed ${values.ci ? 'CI' : seed}`,
);
for (const f of findings) {
  console.log(
    `\nFINDING ${f.target} (${f.kind}) after ${f.runs} runs; replay with FUZZ_SEED=${values.ci ? '(unset)' : seed} FUZZ_RUNS=${f.runs}:\n${f.detail}`,
  );
}
process.exit(run.status === 0 && findings.length === 0 ? 0 : 1);
