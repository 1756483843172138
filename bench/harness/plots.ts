/**
 * Plots of the end-to-end benchmark: Vega-Lite specifications built from the results (pure, so a
 * test can check them), rendered offline to SVG by vega's headless view (no browser, no canvas).
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import { CONFIGURATIONS, type EngineName, type RequestMode, type RunResult } from './results.js';

export interface PlotSpec {
  /** File name under bench/plots/, e.g. `latency-fast-single.svg`. */
  readonly file: string;
  readonly title: string;
  readonly spec: TopLevelSpec;
}

const ENGINE_TITLE: Record<EngineName, string> = {
  fast: 'fast deterministic engine',
  llama: 'llama.cpp, demo model',
};
const MODE_TITLE: Record<RequestMode, string> = { single: 'single-shot', stream: 'streaming' };

const configScale = { domain: [...CONFIGURATIONS] };

/** Latency percentiles per configuration and concurrency, one plot per engine and mode. */
export function latencyPlot(results: readonly RunResult[], engine: EngineName, mode: RequestMode): PlotSpec {
  const rows = results
    .filter((r) => r.engine === engine && r.mode === mode && r.errors === 0)
    .flatMap((r) =>
      (['p50', 'p90', 'p99'] as const).map((percentile) => ({
        config: r.config,
        concurrency: r.concurrency,
        percentile,
        ms: r.latencyMs[percentile],
      })),
    );
  const title = `Request latency, ${ENGINE_TITLE[engine]}, ${MODE_TITLE[mode]} (ms, log scale)`;
  return {
    file: `latency-${engine}-${mode}.svg`,
    title,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title,
      data: { values: rows },
      // Points, not bars: a bar needs a zero baseline, which a log scale does not have.
      mark: { type: 'point', filled: true, size: 90 },
      encoding: {
        column: { field: 'percentile', type: 'ordinal', title: null },
        x: { field: 'concurrency', type: 'ordinal', title: 'concurrency' },
        xOffset: { field: 'config', type: 'nominal', scale: configScale },
        y: { field: 'ms', type: 'quantitative', scale: { type: 'log' }, title: 'latency (ms)' },
        color: { field: 'config', type: 'nominal', scale: configScale, title: 'configuration' },
        shape: { field: 'config', type: 'nominal', scale: configScale, title: 'configuration' },
        tooltip: [{ field: 'config' }, { field: 'concurrency' }, { field: 'ms', format: '.2f' }],
      },
    },
  };
}

/** Requests per second per configuration and concurrency, one plot per engine and mode. */
export function throughputPlot(
  results: readonly RunResult[],
  engine: EngineName,
  mode: RequestMode,
): PlotSpec {
  const rows = results
    .filter((r) => r.engine === engine && r.mode === mode && r.errors === 0)
    .map((r) => ({ config: r.config, concurrency: r.concurrency, rps: r.requestsPerSecond }));
  const title = `Throughput, ${ENGINE_TITLE[engine]}, ${MODE_TITLE[mode]} (requests/s)`;
  return {
    file: `throughput-${engine}-${mode}.svg`,
    title,
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title,
      data: { values: rows },
      mark: { type: 'bar' },
      encoding: {
        x: { field: 'concurrency', type: 'ordinal', title: 'concurrency' },
        xOffset: { field: 'config', type: 'nominal', scale: configScale },
        y: { field: 'rps', type: 'quantitative', title: 'requests/s' },
        color: { field: 'config', type: 'nominal', scale: configScale, title: 'configuration' },
      },
    },
  };
}

/** Every plot the results allow: latency and throughput per engine and mode that was measured. */
export function allPlots(results: readonly RunResult[]): PlotSpec[] {
  const plots: PlotSpec[] = [];
  for (const engine of ['fast', 'llama'] as const) {
    for (const mode of ['single', 'stream'] as const) {
      if (!results.some((r) => r.engine === engine && r.mode === mode && r.errors === 0)) continue;
      plots.push(latencyPlot(results, engine, mode), throughputPlot(results, engine, mode));
    }
  }
  return plots;
}

/** Compiles a Vega-Lite spec and renders it to SVG without a browser. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const compiled = compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
