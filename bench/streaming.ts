/**
 * Per-event cost of the sealed streaming path, in one process, against a plaintext baseline
 * measured in the same run (issue #14: ≤ 30 µs added per token event; issue #7: tokens/s through
 * the sealed path ≥ 0.98 × the engine directly).
 *
 *   npm run bench:streaming                    (tsc -b && tsx bench/streaming.ts)
 *   BENCH_EVENTS=2000 BENCH_RUNS=3 npx tsx bench/streaming.ts      (a quick look)
 *
 * The chain is the one serving, gateway and client build, with the streams API of
 * `@tresor/crypto` (chunked OHTTP, draft-ietf-ohai-chunked-ohttp-08):
 *
 *   replica: createResponseEncapsulator  — one sealed chunk per SSE event
 *   gateway: responseDecapsulator (opens the replica's chunks)
 *            → createResponseEncapsulator (re-seals each under the client's response context)
 *   client:  responseDecapsulator
 *
 * Variants, measured in turn inside every run so that all see the same background load:
 *   - plaintext: the same four transform positions as identity TransformStreams (the web-stream
 *     plumbing alone; the baseline),
 *   - WebCrypto: the browser-safe default backend (AES-GCM jobs on libuv's thread pool),
 *   - node:crypto: `nodeOhttpAead` from `@tresor/crypto/node` (synchronous AES-GCM, the backend
 *     serving and gateway use).
 * Two load shapes: one event at a time (write one, wait until the client read it: the streaming
 * pace of one generation) and pipelined (write every event, the client reads as they come).
 * Figures are medians over BENCH_RUNS runs; "added" = variant − plaintext.
 *
 * BENCH_ONLY=<part of a variant's name> keeps only the matching variants (and the baseline), for
 * `node --cpu-prof --import tsx bench/streaming.ts`.
 * BENCH_CRYPTO_BEFORE=<dir holding an older packages/crypto/src> adds that implementation's
 * WebCrypto path as a fourth variant (for before/after comparisons in one run).
 */
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { randomFillSync } from 'node:crypto';
import * as current from '@tresor/crypto';
import { nodeOhttpAead } from '@tresor/crypto/node';

const EVENTS = Number(process.env.BENCH_EVENTS ?? '10000');
const RUNS = Number(process.env.BENCH_RUNS ?? '5');
/** A chat-completion SSE event with its Binary HTTP content-chunk framing is about 200 bytes. */
const EVENT_BYTES = Number(process.env.BENCH_EVENT_BYTES ?? '200');

/** The part of the crypto API the chain uses (so an older copy of the package can stand in). */
type ChunkedApi = Pick<
  typeof current,
  | 'HpkeKeyPair'
  | 'createGatewayKey'
  | 'gatewayKeysById'
  | 'createChunkedOhttpClient'
  | 'acceptChunkedOhttpRequest'
>;

/** One streaming response, end to end: `send` resolves once the client has read the event. */
interface Chain {
  readonly write: (event: Uint8Array) => Promise<void>;
  /** Resolves once the client has read `bytes` bytes in all. */
  readonly readUntil: (bytes: number) => Promise<void>;
  readonly close: () => Promise<void>;
}

interface Variant {
  readonly name: string;
  readonly build: () => Promise<Chain>;
}

function streamOf(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

async function collect(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const part of stream as unknown as AsyncIterable<Uint8Array>) parts.push(part);
  return current.concatBytes(...parts);
}

/** Wires the four positions (seal, open, re-seal, open) into one chain with a client reader. */
function chainOf(
  replicaSeal: TransformStream<Uint8Array, Uint8Array>,
  gatewayOpen: TransformStream<Uint8Array, Uint8Array>,
  gatewaySeal: TransformStream<Uint8Array, Uint8Array>,
  clientOpen: TransformStream<Uint8Array, Uint8Array>,
): Chain {
  // The gateway reads what it opened and writes it to the client's sealer, event by event.
  void replicaSeal.readable.pipeThrough(gatewayOpen).pipeTo(gatewaySeal.writable);
  const reader = gatewaySeal.readable.pipeThrough(clientOpen).getReader();
  const writer = replicaSeal.writable.getWriter();
  let read = 0;
  return {
    write: (event) => writer.write(event),
    async readUntil(bytes) {
      while (read < bytes) {
        const { done, value } = await reader.read();
        if (done) throw new Error('the chain ended early');
        read += value.length;
      }
    },
    async close() {
      await writer.close();
      for (;;) if ((await reader.read()).done) return;
    },
  };
}

function plaintextVariant(): Variant {
  return {
    name: 'plaintext (identity transforms)',
    build: () =>
      Promise.resolve(
        chainOf(new TransformStream(), new TransformStream(), new TransformStream(), new TransformStream()),
      ),
  };
}

function sealedVariant(name: string, api: ChunkedApi, options: { aead?: current.OhttpAeadBackend }): Variant {
  return {
    name,
    async build() {
      const gatewayKey = api.createGatewayKey(1, await api.HpkeKeyPair.generate());
      const replicaKey = api.createGatewayKey(7, await api.HpkeKeyPair.generate());
      const request = randomFillSync(new Uint8Array(512));
      // client → gateway
      const client = await api.createChunkedOhttpClient(gatewayKey.config, options);
      const toGateway = await collect(streamOf(request).pipeThrough(client.requestEncapsulator));
      const atGateway = await api.acceptChunkedOhttpRequest(
        api.gatewayKeysById([gatewayKey]),
        streamOf(toGateway),
        options,
      );
      await collect(atGateway.request);
      // gateway → replica
      const upstream = await api.createChunkedOhttpClient(replicaKey.config, options);
      const toReplica = await collect(streamOf(request).pipeThrough(upstream.requestEncapsulator));
      const atReplica = await api.acceptChunkedOhttpRequest(
        api.gatewayKeysById([replicaKey]),
        streamOf(toReplica),
        options,
      );
      await collect(atReplica.request);
      return chainOf(
        atReplica.createResponseEncapsulator(),
        upstream.responseDecapsulator,
        atGateway.createResponseEncapsulator(),
        client.responseDecapsulator,
      );
    },
  };
}

interface Measure {
  /** Wall-clock µs per event. */
  readonly micros: number;
  /** CPU µs per event, all threads (WebCrypto's jobs run on libuv's pool). */
  readonly cpuMicros: number;
}

async function measure(chain: Chain, events: readonly Uint8Array[], pipelined: boolean): Promise<Measure> {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  let total = 0;
  if (pipelined) {
    for (const event of events) total += event.length;
    const reading = chain.readUntil(total);
    for (const event of events) await chain.write(event);
    await reading;
  } else {
    for (const event of events) {
      total += event.length;
      await chain.write(event);
      await chain.readUntil(total);
    }
  }
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const used = process.cpuUsage(cpu);
  return {
    micros: (seconds * 1e6) / events.length,
    cpuMicros: (used.user + used.system) / events.length,
  };
}

const fmt = (value: number, digits = 1): string => value.toFixed(digits);
const median = (values: readonly number[]): number =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const load = (): string =>
  loadavg()
    .map((l) => fmt(l, 2))
    .join(' ');

async function main(): Promise<void> {
  const cpu = cpus();
  console.log(
    `# bench/streaming.ts\n\nmachine: ${String(cpu.length)} x ${cpu[0]?.model ?? 'unknown CPU'}, node ${process.version}; ` +
      `${String(EVENTS)} events of ${String(EVENT_BYTES)} bytes, ${String(RUNS)} runs; load average at start ${load()}`,
  );
  const variants: Variant[] = [
    plaintextVariant(),
    sealedVariant('sealed, WebCrypto backend (default)', current, {}),
    sealedVariant('sealed, node:crypto backend', current, { aead: nodeOhttpAead }),
  ];
  const before = process.env.BENCH_CRYPTO_BEFORE;
  if (before !== undefined) {
    const api = (await import(join(before, 'index.ts'))) as ChunkedApi;
    variants.push(sealedVariant('sealed, before (older copy, WebCrypto)', api, {}));
  }
  const only = process.env.BENCH_ONLY;
  if (only !== undefined) {
    // Keeps the baseline and the variants whose name contains BENCH_ONLY (for profiling one).
    variants.splice(1, variants.length, ...variants.slice(1).filter((v) => v.name.includes(only)));
  }
  const events = Array.from({ length: EVENTS }, () => randomFillSync(new Uint8Array(EVENT_BYTES)));
  const results = new Map<string, { serial: Measure[]; pipelined: Measure[] }>(
    variants.map((v) => [v.name, { serial: [], pipelined: [] }]),
  );
  // Warm-up: every variant once, a tenth of the events.
  for (const variant of variants) {
    const chain = await variant.build();
    await measure(chain, events.slice(0, Math.max(1, EVENTS / 10)), false);
    await chain.close();
  }
  for (let run = 0; run < RUNS; run++) {
    for (const variant of variants) {
      const slot = results.get(variant.name)!;
      for (const pipelined of [false, true]) {
        const chain = await variant.build();
        (pipelined ? slot.pipelined : slot.serial).push(await measure(chain, events, pipelined));
        await chain.close();
      }
    }
  }
  const summary = (name: string, pipelined: boolean): Measure => {
    const slot = results.get(name)!;
    const list = pipelined ? slot.pipelined : slot.serial;
    return { micros: median(list.map((m) => m.micros)), cpuMicros: median(list.map((m) => m.cpuMicros)) };
  };
  const baseline = variants[0]!.name;
  for (const pipelined of [false, true]) {
    const base = summary(baseline, pipelined);
    console.log(
      `\n## ${pipelined ? 'Pipelined (all events written, read as they come)' : 'One event at a time (write, wait until the client read it)'}\n`,
    );
    console.log(
      '| variant | µs per event | added µs per event | CPU µs per event | added CPU µs | events/s | vs plaintext |',
    );
    console.log('|---|---:|---:|---:|---:|---:|---:|');
    for (const variant of variants) {
      const m = summary(variant.name, pipelined);
      console.log(
        `| ${variant.name} | ${fmt(m.micros)} | ${fmt(m.micros - base.micros)} | ${fmt(m.cpuMicros)} | ` +
          `${fmt(m.cpuMicros - base.cpuMicros)} | ${fmt(1e6 / m.micros, 0)} | ${fmt(base.micros / m.micros, 2)}× |`,
      );
    }
  }
  console.log(`\nload average at end ${load()}`);
}

await main();
