import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { extractRatioLines, extractRatioRows } from '../../bench/harness/collect.js';
import { benchGatewayConfig, benchServingConfig } from '../../bench/harness/configurations.js';
import { renderNginxConfig } from '../../bench/harness/nginx.js';
import { allPlots, latencyPlot, renderSvg, throughputPlot } from '../../bench/harness/plots.js';
import { parseProcStat, parseProcStatus, readProcMemory, readProcStat } from '../../bench/harness/proc.js';
import { categorize, summarizeProfile, type CpuProfile } from '../../bench/harness/profile.js';
import {
  formatLatencyRatio,
  formatMs,
  formatRatio,
  formatThroughputRatio,
  headlines,
  reproduceCommand,
} from '../../bench/harness/ratios.js';
import { replaceSection, resultsTable, SECTION_BEGIN, SECTION_END } from '../../bench/harness/report.js';
import type { RunKey, RunResult } from '../../bench/harness/results.js';
import { requestCounts } from '../../bench/harness/plan.js';
import { median, percentile, summarize, throughput } from '../../bench/harness/stats.js';

const TEMPLATE = readFileSync(new URL('../../bench/harness/nginx.conf.template', import.meta.url), 'utf8');

function run(key: RunKey, fields: Partial<RunResult> = {}): RunResult {
  return {
    ...key,
    requests: 100,
    errors: 0,
    latencyMs: { count: 100, p50: 2, p90: 3, p99: 4, mean: 2.5, max: 5 },
    requestsPerSecond: 1000,
    completionTokens: 32,
    usage: [{ role: 'gateway', cpuMs: 50, peakRssMiB: 90 }],
    clientCpuMs: 10,
    ...fields,
  };
}

describe('percentiles and summaries', () => {
  it('takes the nearest rank, a value of the sample', () => {
    const values = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(percentile(values, 50)).toBe(50);
    expect(percentile(values, 90)).toBe(90);
    expect(percentile(values, 99)).toBe(99);
    expect(percentile(values, 100)).toBe(100);
    expect(percentile([7], 1)).toBe(7);
    expect(percentile([1, 2, 3, 4], 50)).toBe(2);
  });

  it('refuses an empty sample, p outside (0, 100] and non-finite latencies', () => {
    expect(() => percentile([], 50)).toThrow(RangeError);
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 100.5)).toThrow(RangeError);
    expect(() => percentile([1], Number.NaN)).toThrow(RangeError);
    expect(() => summarize([])).toThrow(RangeError);
    expect(() => summarize([1, Number.NaN])).toThrow(RangeError);
    expect(() => summarize([1, Number.POSITIVE_INFINITY])).toThrow(RangeError);
    expect(() => throughput(10, 0)).toThrow(RangeError);
    expect(() => median([])).toThrow(RangeError);
  });

  it('orders p50 ≤ p90 ≤ p99 ≤ max, each a member of the sample, whatever the order of the input', () => {
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 300 }),
        (values) => {
          const s = summarize(values);
          expect(s.count).toBe(values.length);
          expect(s.p50).toBeLessThanOrEqual(s.p90);
          expect(s.p90).toBeLessThanOrEqual(s.p99);
          expect(s.p99).toBeLessThanOrEqual(s.max);
          for (const p of [s.p50, s.p90, s.p99, s.max]) expect(values).toContain(p);
          expect(summarize([...values].reverse())).toEqual(s);
        },
      ),
    );
  });

  it('computes throughput and medians', () => {
    expect(throughput(500, 2000)).toBe(250);
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });
});

const STAT_TAIL =
  'S 4242 4300 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 11 0 100 1000000 2000 18446744073709551615';

describe('/proc parsing', () => {
  it('reads pid, comm, ppid and utime + stime, also when the command name has spaces and parentheses', () => {
    expect(parseProcStat(`4300 (node) ${STAT_TAIL}`)).toEqual({
      pid: 4300,
      comm: 'node',
      ppid: 4242,
      cpuTicks: 1801,
    });
    expect(parseProcStat(`77 (nginx: worker (x) ) ${STAT_TAIL}\n`)).toMatchObject({
      pid: 77,
      comm: 'nginx: worker (x) ',
      cpuTicks: 1801,
    });
  });

  it('parses any command name the kernel allows', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 15 }), fc.nat(), fc.nat(), (comm, utime, stime) => {
        const line = `12 (${comm}) S 1 12 12 0 -1 0 0 0 0 0 ${String(utime)} ${String(stime)} 0 0 20 0 1 0 5 0 0`;
        const stat = parseProcStat(line);
        expect(stat.comm).toBe(comm);
        expect(stat.cpuTicks).toBe(utime + stime);
        expect(stat.ppid).toBe(1);
      }),
    );
  });

  it('refuses lines that are not /proc/<pid>/stat', () => {
    expect(() => parseProcStat('')).toThrow(SyntaxError);
    expect(() => parseProcStat('12 node S 1')).toThrow(SyntaxError);
    expect(() => parseProcStat('(node) S 1 2 3')).toThrow(SyntaxError);
    expect(() => parseProcStat('12 (node) S 1 2 3')).toThrow(SyntaxError);
    expect(() => parseProcStat(`12 (node) S x ${STAT_TAIL}`)).toThrow(SyntaxError);
    expect(() => parseProcStat(`12 (node) S 1 1 1 0 -1 0 0 0 0 0 -5 3`)).toThrow(SyntaxError);
  });

  it('reads VmHWM and VmRSS, and refuses a status without them (kernel threads)', () => {
    const status = 'Name:\tnode\nVmPeak:\t 1000 kB\nVmHWM:\t   52100 kB\nVmRSS:\t   48000 kB\nThreads:\t7\n';
    expect(parseProcStatus(status)).toEqual({ peakRssKiB: 52100, rssKiB: 48000 });
    expect(() => parseProcStatus('Name:\tkthreadd\nThreads:\t1\n')).toThrow(SyntaxError);
    expect(() => parseProcStatus('VmHWM:\t 12 MB\nVmRSS:\t 1 kB\n')).toThrow(SyntaxError);
  });

  it.runIf(process.platform === 'linux')('reads this process from the real /proc', () => {
    const stat = readProcStat(process.pid);
    expect(stat.pid).toBe(process.pid);
    expect(stat.ppid).toBe(process.ppid);
    const memory = readProcMemory(process.pid);
    expect(memory.peakRssKiB).toBeGreaterThanOrEqual(memory.rssKiB);
    expect(memory.rssKiB).toBeGreaterThan(1024);
  });
});

describe('ratio formatting and headlines', () => {
  it('formats latency ratios with the absolute difference', () => {
    expect(formatLatencyRatio(2.6, 2)).toBe('1.30x + 0.60 ms');
    expect(formatLatencyRatio(1.9, 2)).toBe('0.95x - 0.10 ms');
    expect(formatLatencyRatio(2, 2)).toBe('1.00x + 0.000 ms');
    expect(formatThroughputRatio(620, 1000, 'nginx')).toBe('0.62 × nginx');
    expect(formatRatio(0.05)).toBe('0.050');
    expect(formatMs(1234.4)).toBe('1234');
    expect(formatMs(12.34)).toBe('12.3');
  });

  it('refuses ratios against nothing', () => {
    expect(() => formatLatencyRatio(1, 0)).toThrow(RangeError);
    expect(() => formatLatencyRatio(-1, 1)).toThrow(RangeError);
    expect(() => formatThroughputRatio(1, 0, 'nginx')).toThrow(RangeError);
    expect(() => formatThroughputRatio(Number.NaN, 1, 'nginx')).toThrow(RangeError);
  });

  it('judges the targets of issue #14 and names the command that measures each', () => {
    const single1 = { engine: 'fast', mode: 'single', concurrency: 1 } as const;
    const results = [
      run({ ...single1, config: 'direct' }),
      run(
        { ...single1, config: 'tresor' },
        { latencyMs: { count: 100, p50: 2.5, p90: 4, p99: 8, mean: 3, max: 9 } },
      ),
      run({ engine: 'fast', mode: 'single', concurrency: 64, config: 'nginx' }, { requestsPerSecond: 1000 }),
      run({ engine: 'fast', mode: 'single', concurrency: 64, config: 'tresor' }, { requestsPerSecond: 620 }),
    ];
    const byId = new Map(headlines(results).map((h) => [h.id, h]));
    expect(byId.get('latency-tresor-p50')).toMatchObject({ verdict: 'met' });
    expect(byId.get('latency-tresor-p50')?.text).toContain('= 1.25x + 0.50 ms');
    expect(byId.get('latency-tresor-p99')).toMatchObject({ verdict: 'missed' });
    expect(byId.get('throughput-tresor')).toMatchObject({ verdict: 'met' });
    expect(byId.get('throughput-tresor')?.text).toContain('0.62 × nginx');
    expect(byId.get('gateway-rss')).toMatchObject({ verdict: 'met' });
    expect(byId.get('ttft-llama')).toMatchObject({ verdict: 'not measured' });
    expect(byId.get('token-event')).toMatchObject({ verdict: 'not measured' });
    expect(byId.get('latency-tresor-p50')?.command).toBe(
      'npx tsc -b && npx tsx bench/e2e.ts --engines fast --configs direct,tresor --modes single --concurrency 1',
    );
  });

  it('never judges a run that had errors, and misses targets it should miss', () => {
    const results = [
      run({ engine: 'fast', mode: 'single', concurrency: 64, config: 'nginx' }),
      run({ engine: 'fast', mode: 'single', concurrency: 64, config: 'tresor' }, { requestsPerSecond: 400 }),
      run({ engine: 'fast', mode: 'single', concurrency: 1, config: 'direct' }, { errors: 3 }),
      run({ engine: 'fast', mode: 'single', concurrency: 1, config: 'tresor' }),
      run(
        { engine: 'fast', mode: 'stream', concurrency: 64, config: 'tresor' },
        {
          usage: [{ role: 'gateway', cpuMs: 1, peakRssMiB: 200 }],
        },
      ),
    ];
    const byId = new Map(headlines(results).map((h) => [h.id, h]));
    expect(byId.get('throughput-tresor')?.verdict).toBe('missed');
    expect(byId.get('latency-tresor-p50')?.verdict).toBe('not measured');
    expect(byId.get('gateway-rss')?.verdict).toBe('missed');
    expect(headlines([]).every((h) => h.verdict === 'not measured')).toBe(true);
  });

  it('builds reproduce commands from the selection', () => {
    expect(
      reproduceCommand({ engines: ['llama'], configs: ['direct'], modes: ['stream'], concurrency: [1, 8] }),
    ).toBe(
      'npx tsc -b && npx tsx bench/e2e.ts --engines llama --configs direct --modes stream --concurrency 1,8',
    );
  });
});

describe('nginx configuration', () => {
  const input = {
    prefix: '/tmp/bench/nginx',
    port: 18443,
    upstreamPort: 3456,
    certFile: '/tmp/bench/nginx/cert.pem',
    keyFile: '/tmp/bench/nginx/key.pem',
    workers: 2,
  };

  it('fills every placeholder: TLS 1.3 only, private prefix, keep-alive upstream', () => {
    const conf = renderNginxConfig(TEMPLATE, input);
    expect(conf).not.toMatch(/\$\{/);
    expect(conf).toContain('ssl_protocols TLSv1.3;');
    expect(conf).toContain('listen 127.0.0.1:18443 ssl;');
    expect(conf).toContain('server 127.0.0.1:3456;');
    expect(conf).toContain('pid /tmp/bench/nginx/nginx.pid;');
    expect(conf).toContain('worker_processes 2;');
    expect(conf).not.toContain('/etc/nginx');
    expect(conf).not.toContain('/var/log');
  });

  it('refuses values that would change the configuration, and unknown placeholders', () => {
    expect(() => renderNginxConfig(TEMPLATE, { ...input, prefix: '/tmp/a b' })).toThrow(RangeError);
    expect(() => renderNginxConfig(TEMPLATE, { ...input, certFile: '/tmp/x;include /etc/passwd' })).toThrow(
      RangeError,
    );
    expect(() => renderNginxConfig(TEMPLATE, { ...input, keyFile: '/tmp/{x}' })).toThrow(RangeError);
    expect(() => renderNginxConfig(TEMPLATE, { ...input, port: 0 })).toThrow(RangeError);
    expect(() => renderNginxConfig(TEMPLATE, { ...input, upstreamPort: 70000 })).toThrow(RangeError);
    expect(() => renderNginxConfig(TEMPLATE, { ...input, workers: 0 })).toThrow(RangeError);
    expect(() => renderNginxConfig('listen ${NOPE};', input)).toThrow(RangeError);
  });
});

describe('plots', () => {
  const results = [
    run({ engine: 'fast', mode: 'single', concurrency: 1, config: 'direct' }),
    run({ engine: 'fast', mode: 'single', concurrency: 8, config: 'tresor' }),
    run({ engine: 'fast', mode: 'single', concurrency: 64, config: 'nginx' }, { errors: 5 }),
    run({ engine: 'llama', mode: 'stream', concurrency: 1, config: 'direct' }),
  ];

  it('builds one latency row per percentile and one throughput row per run, leaving out failed runs', () => {
    const latency = latencyPlot(results, 'fast', 'single');
    expect(latency.file).toBe('latency-fast-single.svg');
    const data = latency.spec.data as { values: { config: string; percentile: string }[] };
    expect(data.values).toHaveLength(6);
    expect(data.values.some((v) => v.config === 'nginx')).toBe(false);
    const rps = throughputPlot(results, 'fast', 'single').spec.data as { values: unknown[] };
    expect(rps.values).toHaveLength(2);
    expect(allPlots(results).map((p) => p.file)).toEqual([
      'latency-fast-single.svg',
      'throughput-fast-single.svg',
      'latency-llama-stream.svg',
      'throughput-llama-stream.svg',
    ]);
    expect(allPlots([])).toEqual([]);
  });

  it('renders a spec to SVG offline', async () => {
    const svg = await renderSvg(throughputPlot(results, 'fast', 'single').spec);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('requests/s');
  });
});

describe('RESULTS.md section and collected ratios', () => {
  it('inserts the section once, then replaces only it', () => {
    const first = replaceSection('## Crypto\n\nkeep me\n', 'A');
    expect(first.startsWith(SECTION_BEGIN)).toBe(true);
    expect(first).toContain('keep me');
    const second = replaceSection(`intro\n${first}`, 'B');
    expect(second).toContain(`${SECTION_BEGIN}\nB\n${SECTION_END}`);
    expect(second).not.toContain('\nA\n');
    expect(second.startsWith('intro\n')).toBe(true);
    expect(second).toContain('keep me');
  });

  it('refuses a section with one marker only', () => {
    expect(() => replaceSection(`x ${SECTION_BEGIN} y`, 'B')).toThrow(/broken/);
    expect(() => replaceSection(`x ${SECTION_END} y`, 'B')).toThrow(/broken/);
    expect(() => replaceSection(`${SECTION_END} ${SECTION_BEGIN}`, 'B')).toThrow(/broken/);
  });

  it('renders a table row per run with errors named', () => {
    const table = resultsTable([
      run(
        { engine: 'fast', mode: 'single', concurrency: 1, config: 'direct' },
        { errors: 2, firstError: 'HTTP 429' },
      ),
    ]);
    expect(table.split('\n')).toHaveLength(3);
    expect(table).toContain('2 (HTTP 429)');
  });

  it('collects ratio columns of markdown tables and ratio lines, nothing else', () => {
    const out = [
      '| backend | unwraps/s | ratio to baseline |',
      '|---|---|---|',
      '| file | 51254 | 0.89x |',
      '| kyok | 467 | - |',
      '',
      '| measure | value |',
      '|---|---|',
      '| round trips/s | 313 |',
      'ratio sealed / direct: 1.10x (target <= 1.2x)',
      'plain line',
      '# Keystore unwraps per second (2 × AMD EPYC, load 11.40)',
      'tresor req/s = 0.62 × nginx',
    ].join('\n');
    expect(extractRatioRows('keystore', out)).toEqual([
      { bench: 'keystore', label: 'file', measure: 'ratio to baseline', value: '0.89x' },
    ]);
    expect(extractRatioLines('serving', out).map((r) => r.label)).toEqual([
      'ratio sealed / direct: 1.10x (target <= 1.2x)',
      'tresor req/s = 0.62 × nginx',
    ]);
    expect(extractRatioRows('x', '| a | b |\n| c | d |')).toEqual([]);
  });
});

describe('tresor stack configuration for a run', () => {
  const serving = { mode: 'local', engine: { kind: 'llama', threads: 2 }, models: [{ id: 'tresor-demo' }] };

  it('swaps the engine and opens serving’s queue, keeping everything else', () => {
    const fast = benchServingConfig(serving, 'fast');
    expect(fast.engine).toEqual({ kind: 'echo', responseTokens: 32 });
    expect(fast.models).toEqual(serving.models);
    expect(fast.mode).toBe('local');
    expect(benchServingConfig(serving, 'llama').engine).toEqual({ kind: 'llama', threads: 2 });
    expect(
      (benchServingConfig(serving, 'llama').concurrency as { maxConcurrent: number }).maxConcurrent,
    ).toBe(4);
  });

  it('raises the gateway quotas far above a run, keeping its other limits', () => {
    const gateway = benchGatewayConfig({
      mode: 'local',
      limits: { ohttpBodyBytes: 4096, requestsPerMinutePerKey: 600 },
    });
    const limits = gateway.limits as Record<string, number>;
    expect(limits.ohttpBodyBytes).toBe(4096);
    expect(limits.requestsPerMinutePerKey).toBeGreaterThan(1_000_000);
    expect(limits.tokensPerDayPerTenant).toBeGreaterThan(1e9);
    expect(gateway.mode).toBe('local');
  });

  it('bounds every run', () => {
    for (const engine of ['fast', 'llama'] as const) {
      for (const quick of [true, false]) {
        for (const c of [1, 8, 64]) {
          const counts = requestCounts(engine, c, quick);
          expect(counts.requests).toBeGreaterThanOrEqual(engine === 'fast' ? c : Math.min(c, 8));
          expect(counts.requests).toBeLessThanOrEqual(5000);
          expect(counts.warmup).toBeGreaterThan(0);
        }
      }
    }
  });
});

describe('CPU profile summary', () => {
  it('sorts self time into the components of the tresor path', () => {
    expect(categorize('file:///r/node_modules/@hpke/core/esm/x.js', 'seal')).toBe(
      'HPKE / OHTTP / BHTTP (JavaScript)',
    );
    expect(categorize('node:_tls_wrap', 'onread')).toBe('TLS (node:tls)');
    expect(categorize('node:internal/crypto/util', '')).toBe(
      'WebCrypto calls (job set-up, CryptoKey objects)',
    );
    expect(categorize('wasm://wasm/01079692', 'f')).toBe('policy (Cedar, wasm)');
    expect(categorize('', 'writev')).toBe('socket I/O (native writes, stream_base)');
    expect(categorize('', '(garbage collector)')).toBe('garbage collection');
    expect(categorize('file:///r/services/gateway/dist/api/inner-api.js', 'handle')).toBe('gateway code');
    expect(categorize('file:///r/x.js', 'f')).toBe('other');
    const profile: CpuProfile = {
      startTime: 0,
      endTime: 4000,
      nodes: [
        { id: 1, callFrame: { functionName: '(idle)', url: '', lineNumber: -1 } },
        {
          id: 2,
          callFrame: { functionName: 'open', url: 'file:///r/node_modules/@hpke/core/a.js', lineNumber: 9 },
        },
        {
          id: 3,
          callFrame: { functionName: 'handle', url: 'file:///r/services/gateway/dist/a.js', lineNumber: 0 },
        },
      ],
      samples: [1, 2, 2, 3, 1],
      timeDeltas: [0, 1000, 1000, 1000, 1000],
    };
    const summary = summarizeProfile('gateway', profile);
    expect(summary.busyMs).toBe(3);
    expect(summary.categories[0]).toMatchObject({ name: 'HPKE / OHTTP / BHTTP (JavaScript)', ms: 2 });
    expect(summary.functions[0]?.name).toContain('open');
    expect(summary.categories.some((c) => c.name === 'idle')).toBe(false);
  });
});
