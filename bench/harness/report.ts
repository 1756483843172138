/**
 * The end-to-end section of bench/RESULTS.md: headline ratios against the targets, the full table,
 * links to the plots. Only the text between the section markers is ever replaced, so the other
 * benchmarks' sections stay as their owners wrote them.
 */
import { formatMs, type Headline } from './ratios.js';
import { serverCpuMsPerRequest, type RunResult } from './results.js';

export const SECTION_BEGIN = '<!-- e2e:begin (written by bench/e2e.ts; edit the harness, not this text) -->';
export const SECTION_END = '<!-- e2e:end -->';

/** Replaces the marked section of `markdown`, or inserts it at the top when there is none yet. */
export function replaceSection(markdown: string, section: string): string {
  const block = `${SECTION_BEGIN}\n${section.trim()}\n${SECTION_END}`;
  const begin = markdown.indexOf(SECTION_BEGIN);
  const end = markdown.indexOf(SECTION_END);
  if (begin === -1 && end === -1) return `${block}\n\n${markdown}`;
  if (begin === -1 || end === -1 || end < begin) {
    throw new Error('bench/RESULTS.md has a broken end-to-end section (one marker without the other)');
  }
  return markdown.slice(0, begin) + block + markdown.slice(end + SECTION_END.length);
}

export function headlineLines(list: readonly Headline[]): string[] {
  return list.flatMap((h) => [`${h.text} — target ${h.target}: ${h.verdict}`, `    reproduce: ${h.command}`]);
}

function rss(r: RunResult): string {
  return r.usage.map((u) => `${u.role} ${u.peakRssMiB.toFixed(0)}`).join(', ');
}

function cpu(r: RunResult): string {
  return r.usage
    .map((u) => `${u.role} ${(r.requests === 0 ? 0 : u.cpuMs / r.requests).toFixed(2)}`)
    .join(', ');
}

/** One markdown row per run. */
export function resultsTable(results: readonly RunResult[]): string {
  const header =
    '| engine | configuration | mode | conc. | requests | errors | p50 ms | p90 ms | p99 ms | req/s | TTFT p50 ms | per token µs (p50) | server CPU ms/req (total; per process) | peak RSS MiB per process | client CPU ms/req |';
  const rule = '|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|---|--:|';
  const rows = results.map((r) =>
    [
      r.engine,
      r.config,
      r.mode,
      String(r.concurrency),
      String(r.requests),
      r.errors === 0 ? '0' : `${String(r.errors)} (${r.firstError ?? '?'})`,
      formatMs(r.latencyMs.p50),
      formatMs(r.latencyMs.p90),
      formatMs(r.latencyMs.p99),
      r.requestsPerSecond.toFixed(0),
      r.ttftMs === undefined ? '' : formatMs(r.ttftMs.p50),
      r.tokenIntervalUs === undefined ? '' : r.tokenIntervalUs.p50.toFixed(1),
      `${serverCpuMsPerRequest(r).toFixed(2)}; ${cpu(r)}`,
      rss(r),
      (r.requests === 0 ? 0 : r.clientCpuMs / r.requests).toFixed(2),
    ].join(' | '),
  );
  return [header, rule, ...rows.map((row) => `| ${row} |`)].join('\n');
}

export interface SectionInput {
  readonly command: string;
  readonly when: string;
  readonly machine: string;
  readonly load: string;
  readonly headlines: readonly Headline[];
  readonly results: readonly RunResult[];
  readonly plots: readonly { readonly file: string; readonly title: string }[];
  readonly notes: string;
}

export function renderSection(input: SectionInput): string {
  return [
    '## End to end: direct, nginx, tresor, tresor via proxy',
    '',
    `Command: \`${input.command}\` (\`npm run bench\` runs it with the component benchmarks).`,
    `Run of ${input.when} on ${input.machine}; load average ${input.load}.`,
    '',
    '### Headlines (targets of issue #14)',
    '',
    '| headline | target | verdict | reproduce |',
    '|---|---|---|---|',
    ...input.headlines.map((h) => `| ${h.text} | ${h.target} | ${h.verdict} | \`${h.command}\` |`),
    '',
    '### Every run',
    '',
    resultsTable(input.results),
    '',
    '### Plots',
    '',
    ...input.plots.map((p) => `- [${p.title}](plots/${p.file})`),
    '',
    input.notes.trim(),
  ].join('\n');
}
