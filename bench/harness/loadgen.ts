/**
 * The load generator of the end-to-end benchmark, run as its own process (so its CPU never counts
 * against the servers): the official `openai` client, with undici keep-alive for the plain
 * endpoints (direct, nginx, tresor proxy) and the @tresor/sdk fetch (attestation verified first,
 * every request OHTTP-encapsulated) for tresor.
 *
 *   tsx bench/harness/loadgen.ts '<LoadSpec JSON>'
 *
 * Protocol with the harness: runs the warm-up, prints `WARM`, waits for `GO` on stdin (the harness
 * snapshots the servers' CPU time and resets their peak RSS meanwhile), runs exactly `requests`
 * requests with `concurrency` in flight, prints `DONE <LoadReport JSON>`. Never prints a prompt or
 * an answer; errors are reported by status and code only.
 */
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { TresorError } from '@tresor/protocol';
import { connect } from '@tresor/sdk';
import { createNodeTransport } from '@tresor/sdk/node';

export interface LoadSpec {
  /** `openai`: plain OpenAI endpoint (http or https); `sdk`: a Tresor gateway through @tresor/sdk. */
  readonly client: 'openai' | 'sdk';
  /** For `openai` the API base (`…/v1`); for `sdk` the gateway URL. */
  readonly url: string;
  readonly apiKey: string;
  readonly model: string;
  readonly stream: boolean;
  readonly concurrency: number;
  readonly requests: number;
  readonly warmup: number;
  readonly maxTokens: number;
  readonly caFile?: string;
  readonly policyFile?: string;
}

export interface LoadReport {
  readonly latenciesMs: number[];
  readonly ttftMs: number[];
  /** Per request: mean gap between content events after the first, µs. */
  readonly tokenIntervalsUs: number[];
  readonly completionTokens: number[];
  readonly errors: number;
  readonly firstError?: string;
  readonly elapsedMs: number;
  readonly clientCpuMs: number;
}

const PROMPT =
  'Summarise the benefits of confidential computing for hosted language models in a few short sentences please';

/**
 * Longest a single request may take (the slowest seen: llama at concurrency 64, about 14 s): a
 * server that stops answering fails the run within two minutes instead of holding it for ten.
 */
const REQUEST_TIMEOUT_MS = 120_000;

async function makeClient(spec: LoadSpec): Promise<OpenAI> {
  const ca = spec.caFile === undefined ? undefined : await readFile(spec.caFile, 'utf8');
  if (spec.client === 'sdk') {
    if (spec.policyFile === undefined) throw new Error('the sdk client needs a policy file');
    const policy = JSON.parse(await readFile(spec.policyFile, 'utf8')) as unknown;
    const transport = createNodeTransport(ca === undefined ? {} : { ca });
    const tresor = await connect(spec.url, { policy, ...transport });
    return new OpenAI({
      baseURL: `${tresor.gatewayUrl}/v1`,
      apiKey: spec.apiKey,
      fetch: tresor.fetch,
      maxRetries: 0,
      timeout: REQUEST_TIMEOUT_MS,
    });
  }
  const agent = new Agent({
    connections: null,
    pipelining: 1,
    ...(ca === undefined ? {} : { connect: { ca } }),
  });
  const fetchWithAgent = (input: string | URL | Request, init?: RequestInit): Promise<Response> =>
    undiciFetch(input as never, { ...(init as object), dispatcher: agent }) as unknown as Promise<Response>;
  return new OpenAI({
    baseURL: spec.url,
    apiKey: spec.apiKey,
    fetch: fetchWithAgent,
    maxRetries: 0,
    timeout: REQUEST_TIMEOUT_MS,
  });
}

interface Sample {
  latencyMs: number;
  ttftMs?: number;
  tokenIntervalUs?: number;
  completionTokens: number;
}

async function oneRequest(client: OpenAI, spec: LoadSpec): Promise<Sample> {
  const messages = [{ role: 'user' as const, content: PROMPT }];
  const start = performance.now();
  if (!spec.stream) {
    const answer = await client.chat.completions.create({
      model: spec.model,
      messages,
      max_completion_tokens: spec.maxTokens,
    });
    return { latencyMs: performance.now() - start, completionTokens: answer.usage?.completion_tokens ?? 0 };
  }
  const stream = await client.chat.completions.create({
    model: spec.model,
    messages,
    max_completion_tokens: spec.maxTokens,
    stream: true,
    stream_options: { include_usage: true },
  });
  let first: number | undefined;
  let last = start;
  let events = 0;
  let tokens = 0;
  for await (const chunk of stream) {
    const content = chunk.choices[0]?.delta.content;
    if (content !== undefined && content !== null && content !== '') {
      const now = performance.now();
      first ??= now;
      last = now;
      events += 1;
    }
    if (chunk.usage) tokens = chunk.usage.completion_tokens;
  }
  const end = performance.now();
  const sample: Sample = { latencyMs: end - start, completionTokens: tokens || events };
  if (first !== undefined) sample.ttftMs = first - start;
  if (first !== undefined && events > 1) sample.tokenIntervalUs = ((last - first) * 1000) / (events - 1);
  return sample;
}

function describeError(err: unknown): string {
  if (err instanceof OpenAI.APIError) {
    // A connection error wraps what the fetch threw (for tresor: the sdk's TresorError).
    if (err.status === undefined && err.cause !== undefined) return `no answer: ${describeError(err.cause)}`;
    const code = typeof err.code === 'string' ? err.code : '';
    return `HTTP ${String(err.status ?? 'none')} ${code}`.trim();
  }
  if (err instanceof TresorError) return `${err.code}: ${err.message.slice(0, 300)}`;
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return `${err.name}${typeof code === 'string' ? ` ${code}` : ''}`;
  }
  return 'unknown error';
}

/** Runs `count` requests with `concurrency` in flight; collects samples when `into` is given. */
async function drive(
  client: OpenAI,
  spec: LoadSpec,
  count: number,
  into: { samples: Sample[]; errors: number; firstError?: string } | undefined,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next += 1;
      try {
        const sample = await oneRequest(client, spec);
        into?.samples.push(sample);
      } catch (err) {
        if (into !== undefined) {
          into.errors += 1;
          into.firstError ??= describeError(err);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(spec.concurrency, count) }, worker));
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as LoadSpec;
  const client = await makeClient(spec);
  await drive(client, spec, spec.warmup, undefined);
  process.stdout.write('WARM\n');
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) if (line.trim() === 'GO') break;
  const collected: { samples: Sample[]; errors: number; firstError?: string } = { samples: [], errors: 0 };
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  await drive(client, spec, spec.requests, collected);
  const elapsedMs = performance.now() - start;
  const cpu = process.cpuUsage(cpuBefore);
  const report: LoadReport = {
    latenciesMs: collected.samples.map((s) => s.latencyMs),
    ttftMs: collected.samples.flatMap((s) => (s.ttftMs === undefined ? [] : [s.ttftMs])),
    tokenIntervalsUs: collected.samples.flatMap((s) =>
      s.tokenIntervalUs === undefined ? [] : [s.tokenIntervalUs],
    ),
    completionTokens: collected.samples.map((s) => s.completionTokens),
    errors: collected.errors,
    ...(collected.firstError === undefined ? {} : { firstError: collected.firstError }),
    elapsedMs,
    clientCpuMs: (cpu.user + cpu.system) / 1000,
  };
  process.stdout.write(`DONE ${JSON.stringify(report)}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stderr.write(`loadgen failed: ${describeError(err)}: ${err instanceof Error ? err.message : ''}\n`);
  process.exit(1);
});
