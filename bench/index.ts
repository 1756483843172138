/**
 * `npm run bench`: every benchmark from one entry point — the component micro-benchmarks that
 * exist (bench/{crypto,attestation,trust,keystore,serving,gateway,streaming}.ts) and the end-to-end harness
 * (bench/e2e.ts) — each in its own process, one after the other, then one table of every ratio
 * they printed.
 *
 *   npm run bench                                   everything (long: tens of minutes on 2 cores)
 *   npm run bench -- --only e2e,crypto              a subset
 *   npm run bench -- --quick                        e2e in --quick mode, components with their
 *                                                   small settings (BENCH_RUNS=1, BENCH_SECONDS=1,
 *                                                   BENCH_MODEL_MIB=64, BENCH_TOKENS=200)
 *   npm run bench -- --write-results                e2e also rewrites its RESULTS.md section + plots
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { extractRatioLines, extractRatioRows, ratioTable, type RatioRow } from './harness/collect.js';
import { REPO_ROOT } from './harness/configurations.js';

const COMPONENTS = ['crypto', 'attestation', 'trust', 'keystore', 'serving', 'gateway', 'streaming'] as const;
const QUICK_ENV = { BENCH_RUNS: '1', BENCH_SECONDS: '1', BENCH_MODEL_MIB: '64', BENCH_TOKENS: '200' };

/** Runs one bench script, echoing its output as it comes, and gives back what it printed. */
function runBench(
  script: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'bench', script), ...args], {
      cwd: REPO_ROOT,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
      process.stdout.write(chunk);
    });
    child.once('exit', (code) => {
      resolve({ code: code ?? 1, out });
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      quick: { type: 'boolean', default: false },
      'write-results': { type: 'boolean', default: false },
    },
  });
  const selected = values.only?.split(',').map((s) => s.trim()) ?? [...COMPONENTS, 'e2e'];
  for (const name of selected) {
    if (![...COMPONENTS, 'e2e'].includes(name)) {
      throw new Error(`--only ${name}: expected some of ${[...COMPONENTS, 'e2e'].join(',')}`);
    }
  }
  const env = values.quick ? { ...process.env, ...QUICK_ENV } : process.env;
  const rows: RatioRow[] = [];
  const failed: string[] = [];
  for (const name of selected) {
    const script = `${name}.ts`;
    if (!existsSync(join(REPO_ROOT, 'bench', script))) {
      console.log(`\n# bench/${script}: not there yet, skipped`);
      continue;
    }
    console.log(`\n# bench/${script}\n`);
    const args =
      name === 'e2e'
        ? [...(values.quick ? ['--quick'] : []), ...(values['write-results'] ? ['--write-results'] : [])]
        : [];
    const { code, out } = await runBench(script, args, env);
    if (code !== 0) failed.push(`${name} (exit ${String(code)})`);
    rows.push(...extractRatioRows(name, out), ...extractRatioLines(name, out));
  }
  console.log('\n# Every ratio, one table\n');
  console.log(ratioTable(rows));
  if (failed.length > 0) {
    console.log(`\nfailed: ${failed.join(', ')}`);
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(2);
});
