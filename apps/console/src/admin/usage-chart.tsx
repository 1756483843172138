import { useEffect, useRef } from 'preact/hooks';
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  Title,
  Tooltip,
  type ChartDataset,
} from 'chart.js';
import type { UsageAggregate } from './usage-aggregation.js';

Chart.register(
  BarController,
  BarElement,
  CategoryScale,
  Legend,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  Title,
  Tooltip,
);

// Colour-blind-safe palette (Okabe–Ito), dark enough against white.
const COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000'];

export type UsageMetric = 'requests' | 'tokens' | 'errors' | 'latency';

function label(start: number, bucketMs: number): string {
  const iso = new Date(start).toISOString();
  return bucketMs >= 86_400_000 ? iso.slice(0, 10) : `${iso.slice(5, 10)} ${iso.slice(11, 16)}`;
}

type Dataset = ChartDataset<'bar' | 'line', (number | null)[]>;

function datasets(agg: UsageAggregate, metric: UsageMetric): Dataset[] {
  return agg.series.flatMap((s, i): Dataset[] => {
    const colour = COLOURS[i % COLOURS.length]!;
    if (metric === 'latency') {
      return (['p50', 'p95', 'p99'] as const).map((p, j) => ({
        type: 'line' as const,
        label: `${s.name} ${p}`,
        data: s.buckets.map((b) => b[p]),
        borderColor: colour,
        backgroundColor: colour,
        borderDash: j === 0 ? [] : j === 1 ? [6, 3] : [2, 2],
        pointStyle: (['circle', 'rect', 'triangle'] as const)[j],
        spanGaps: true,
      }));
    }
    return [
      {
        type: 'bar' as const,
        label: s.name,
        data: s.buckets.map((b) =>
          metric === 'requests'
            ? b.requests
            : metric === 'errors'
              ? b.errors
              : b.promptTokens + b.completionTokens,
        ),
        backgroundColor: colour,
      },
    ];
  });
}

const TITLES: Readonly<Record<UsageMetric, string>> = {
  requests: 'Requests',
  tokens: 'Tokens (prompt + completion)',
  errors: 'Errors (status ≥ 400)',
  latency: 'Latency percentiles (ms)',
};

/** One chart.js chart of a usage aggregate; the data is also given as a table for screen readers. */
export function UsageChart({ aggregate, metric }: { aggregate: UsageAggregate; metric: UsageMetric }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (canvas.current === null) return;
    const chart = new Chart(canvas.current, {
      type: metric === 'latency' ? 'line' : 'bar',
      data: {
        labels: aggregate.starts.map((s) => label(s, aggregate.bucketMs)),
        datasets: datasets(aggregate, metric),
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          title: { display: true, text: TITLES[metric] },
          legend: { position: 'bottom', labels: { usePointStyle: metric === 'latency' } },
        },
        scales: {
          x: { stacked: metric !== 'latency' },
          y: { stacked: metric !== 'latency', beginAtZero: true, ticks: { precision: 0 } },
        },
      },
    });
    return () => {
      chart.destroy();
    };
  }, [aggregate, metric]);
  const total = (n: { requests: number; tokens: number; errors: number }): number =>
    metric === 'requests' ? n.requests : metric === 'errors' ? n.errors : n.tokens;
  return (
    <figure class="usage-chart" data-metric={metric}>
      <div class="chart-box">
        <canvas
          ref={canvas}
          role="img"
          aria-label={`${TITLES[metric]} per ${aggregate.bucketMs / 60_000} min`}
        />
      </div>
      {metric === 'latency' ? null : (
        <figcaption>
          {TITLES[metric]}, total:{' '}
          {aggregate.series.map((s) => `${s.name} ${total(s.totals)}`).join(', ') || 'none'}
        </figcaption>
      )}
    </figure>
  );
}
