/**
 * Collects the ratio columns of the component benchmarks' markdown tables into one table, for
 * `npm run bench`. A benchmark prints tables whose headers name their ratios ("ratio to
 * baseline", "vs openssl", "× nginx"); every such cell becomes one row: bench, case, measure, value.
 */

export interface RatioRow {
  readonly bench: string;
  /** The first cell of the row (the case). */
  readonly label: string;
  /** The header of the ratio column. */
  readonly measure: string;
  readonly value: string;
}

const RATIO_HEADER = /ratio|\bvs\.?\b|×/i;

function cells(line: string): string[] {
  return line
    .trim()
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((c) => c.trim());
}

const isRule = (line: string): boolean => /^\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$/.test(line.trim());

/** Every ratio cell of every markdown table in `output`. */
export function extractRatioRows(bench: string, output: string): RatioRow[] {
  const rows: RatioRow[] = [];
  const lines = output.split('\n');
  for (let i = 0; i + 1 < lines.length; i += 1) {
    const header = lines[i]!;
    if (!header.trim().startsWith('|') || !isRule(lines[i + 1]!)) continue;
    const names = cells(header);
    const ratioColumns = names.flatMap((name, index) =>
      index > 0 && RATIO_HEADER.test(name) ? [index] : [],
    );
    let j = i + 2;
    for (; j < lines.length && lines[j]!.trim().startsWith('|'); j += 1) {
      const row = cells(lines[j]!);
      for (const index of ratioColumns) {
        const value = row[index];
        if (value === undefined || value === '' || value === '-') continue;
        rows.push({ bench, label: row[0] ?? '', measure: names[index]!, value });
      }
    }
    i = j - 1;
  }
  return rows;
}

/** Lines of output that state a ratio outside a table (`ratio sealed / direct: 1.1x`, `… = 0.62 × nginx`). */
export function extractRatioLines(bench: string, output: string): RatioRow[] {
  return output
    .split('\n')
    .map((line) => line.trim())
    .filter(
      (line) =>
        line.length > 0 &&
        line.length < 300 &&
        !line.startsWith('|') &&
        !line.startsWith('#') &&
        (/\bratio\b/i.test(line) || /=\s*\d+(\.\d+)?\s*(x|×)/.test(line)),
    )
    .map((line) => ({ bench, label: line, measure: '', value: '' }));
}

export function ratioTable(rows: readonly RatioRow[]): string {
  return [
    '| bench | case | measure | value |',
    '|---|---|---|---|',
    ...rows.map((r) => `| ${r.bench} | ${r.label} | ${r.measure} | ${r.value} |`),
  ].join('\n');
}
