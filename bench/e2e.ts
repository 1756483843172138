/**
 * End-to-end benchmark (issue #14): direct, nginx, tresor and tresor via proxy, single-shot and
 * streaming, at several concurrencies, with the fast deterministic engine and with llama.cpp on
 * the demo model — every baseline measured in the same run, on the same machine.
 *
 *   npx tsc -b && npx tsx bench/e2e.ts                 full matrix (about 15-25 min on 2 cores)
 *   npx tsx bench/e2e.ts --quick                       small counts: a smoke test of every path
 *   npx tsx bench/e2e.ts --engines fast --configs direct,tresor --modes single --concurrency 1
 *   npx tsx bench/e2e.ts --write-results               also rewrite the end-to-end section of
 *                                                      bench/RESULTS.md and the SVGs in bench/plots/
 *                                                      (--results-file / --plots-dir write elsewhere)
 *   npx tsx bench/e2e.ts --cpu-prof --engines fast --configs tresor
 *                                                      V8 CPU profiles of gateway and serving
 *
 * Needs nginx from Debian (`apt-get install -y nginx-light`) for the nginx configuration; without
 * it that configuration is skipped with a note. Runs `tresor up` once to set up the tresor stack
 * (state in $TMPDIR/tresor-bench-e2e/state, reused). Prints the headline ratios, each with the
 * command that measures it again, and writes the raw results to <run folder>/results.json.
 */
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { format, resolveConfig } from 'prettier';
import { nginxInstalled } from './harness/nginx.js';
import { allPlots, renderSvg } from './harness/plots.js';
import { headlines } from './harness/ratios.js';
import { headlineLines, renderSection, replaceSection } from './harness/report.js';
import { summarizeProfiles } from './harness/profile.js';
import {
  CONFIGURATIONS,
  ENGINES,
  MODES,
  type ConfigurationName,
  type EngineName,
  type RequestMode,
} from './harness/results.js';
import { runHarness } from './harness/run.js';
import { stopAllOnSignal } from './harness/children.js';
import { REPO_ROOT } from './harness/configurations.js';

function list<T extends string>(text: string | undefined, allowed: readonly T[], flag: string): T[] {
  if (text === undefined) return [...allowed];
  const items = text.split(',').map((s) => s.trim());
  for (const item of items) {
    if (!(allowed as readonly string[]).includes(item)) {
      throw new Error(`--${flag} ${item}: expected some of ${allowed.join(',')}`);
    }
  }
  return items as T[];
}

async function main(): Promise<void> {
  stopAllOnSignal();
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      engines: { type: 'string' },
      configs: { type: 'string' },
      modes: { type: 'string' },
      concurrency: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      'write-results': { type: 'boolean', default: false },
      'state-dir': { type: 'string' },
      'results-file': { type: 'string' },
      'plots-dir': { type: 'string' },
    },
  });
  const engines = list<EngineName>(values.engines, ENGINES, 'engines');
  let configs = list<ConfigurationName>(values.configs, CONFIGURATIONS, 'configs');
  const modes = list<RequestMode>(values.modes, MODES, 'modes');
  const concurrency = (values.concurrency ?? '1,8,64').split(',').map((s) => {
    const n = Number(s);
    if (!Number.isSafeInteger(n) || n < 1 || n > 1024) throw new Error(`--concurrency ${s}: 1 to 1024`);
    return n;
  });
  if (configs.includes('nginx') && !nginxInstalled()) {
    console.log(
      'nginx is not installed (apt-get install -y nginx-light): the nginx configuration is skipped',
    );
    configs = configs.filter((c) => c !== 'nginx');
  }
  const command = `npx tsx bench/e2e.ts ${process.argv.slice(2).join(' ')}`.trim();
  const runDir = await mkdtemp(join(tmpdir(), 'tresor-bench-e2e-run-'));
  const stateDir = values['state-dir'] ?? join(tmpdir(), 'tresor-bench-e2e', 'state');
  await mkdir(join(stateDir, '..'), { recursive: true });
  const loadBefore = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  console.log(`run folder ${runDir}; load average ${loadBefore} on ${String(cpus().length)} cores`);

  const results = await runHarness({
    selection: { engines, configs, modes, concurrency, quick: values.quick },
    runDir,
    stateDir,
    cpuProfile: values['cpu-prof'],
    log: (line) => {
      console.log(line);
    },
  });
  const loadAfter = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  await writeFile(join(runDir, 'results.json'), JSON.stringify(results, null, 2));

  const list2 = headlines(results);
  console.log('\nHeadlines (targets of issue #14):');
  for (const line of headlineLines(list2)) console.log(line);
  console.log(`\nraw results: ${join(runDir, 'results.json')}; logs: ${join(runDir, 'logs')}`);

  if (values['cpu-prof']) {
    console.log('\nCPU profiles (self time by component, gateway and serving):');
    console.log(await summarizeProfiles(join(runDir, 'profiles')));
  }

  if (values['write-results']) {
    const plots = allPlots(results);
    const plotsDir = values['plots-dir'] ?? join(REPO_ROOT, 'bench', 'plots');
    await mkdir(plotsDir, { recursive: true });
    for (const plot of plots) {
      await writeFile(join(plotsDir, plot.file), await renderSvg(plot.spec));
    }
    const notes = await readFile(join(REPO_ROOT, 'bench', 'harness', 'notes.md'), 'utf8');
    const resultsFile = values['results-file'] ?? join(REPO_ROOT, 'bench', 'RESULTS.md');
    const section = renderSection({
      command,
      when: new Date().toISOString().slice(0, 16).replace('T', ' ') + ' UTC',
      machine: `${String(cpus().length)} cores (${cpus()[0]?.model ?? 'unknown CPU'}), Node ${process.version}`,
      load: `${loadBefore} before, ${loadAfter} after`,
      headlines: list2,
      results,
      plots,
      notes,
    });
    // Formatted as `npm run lint` checks it (prettier --check .).
    const markdown = replaceSection(await readFile(resultsFile, 'utf8'), section);
    const prettierOptions = (await resolveConfig(resultsFile)) ?? {};
    await writeFile(resultsFile, await format(markdown, { ...prettierOptions, filepath: resultsFile }));
    console.log(
      `wrote the end-to-end section of ${resultsFile} and ${String(plots.length)} plots in ${plotsDir}`,
    );
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
