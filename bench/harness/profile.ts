/**
 * Reads the V8 CPU profiles (`--cpu-prof`) that gateway, serving, the tresor proxy and the load
 * generator (the client) write at exit and says where their CPU time went: self time per component of the tresor path (HPKE/OHTTP, TLS, HTTP
 * parsing, JSON, validation, logging, …) and the hottest functions.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly hitCount?: number;
}

export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly startTime: number;
  readonly endTime: number;
  readonly samples?: readonly number[];
  readonly timeDeltas?: readonly number[];
}

/** Components by the file a function lives in (first match wins) or by V8's pseudo-frames. */
const CATEGORIES: readonly (readonly [string, (url: string, fn: string) => boolean])[] = [
  ['idle', (_u, fn) => fn === '(idle)'],
  ['garbage collection', (_u, fn) => fn === '(garbage collector)'],
  ['V8 / native (program)', (_u, fn) => fn === '(program)'],
  ['policy (Cedar, wasm)', (u) => u.startsWith('wasm://') || u.includes('cedar')],
  ['HPKE / OHTTP / BHTTP (JavaScript)', (u) => /@hpke|packages\/crypto|@noble|ohttp|bhttp/i.test(u)],
  // WebCrypto: job set-up on the main thread (the work itself runs on the libuv pool, unsampled)
  // and the CryptoKey objects it creates (transferable objects); synchronous node:crypto calls
  // (their work sampled here) land here too.
  [
    'WebCrypto calls (job set-up, CryptoKey objects)',
    (u) => /node:(crypto|internal\/crypto)/.test(u) || u.includes('js_transferable'),
  ],
  ['TLS (node:tls)', (u) => /node:(_tls|tls|internal\/tls)/.test(u)],
  [
    'socket I/O (native writes, stream_base)',
    (u, fn) =>
      (u === '' &&
        /^(writev|writeString|writeBuffer|writeUtf8String|writeLatin1String|readStop|readStart)$/.test(fn)) ||
      /node:(net|internal\/stream_base_commons)/.test(u),
  ],
  ['HTTP (node http/https, undici)', (u) => /node:(_http|http|https|internal\/http)|undici|llhttp/.test(u)],
  ['openai client (load generator)', (u) => u.includes('node_modules/openai')],
  ['fastify / routing', (u) => /fastify|find-my-way|avvio|light-my-request/.test(u)],
  ['validation (zod)', (u) => u.includes('zod')],
  ['logging (pino)', (u) => /pino|sonic-boom/.test(u)],
  ['storage (sqlite, audit)', (u) => /better-sqlite3|packages\/storage/.test(u)],
  ['JWS / JWT (jose)', (u) => u.includes('jose')],
  ['attestation / sdk checks', (u) => /packages\/(attestation|sdk)/.test(u)],
  ['gateway code', (u) => u.includes('services/gateway')],
  ['serving code (incl. echo engine)', (u) => u.includes('services/serving')],
  ['module loading (start-up)', (u) => /node:internal\/(modules|deps\/cjs-module-lexer|bootstrap)/.test(u)],
  [
    'streams / buffers / events',
    (u) => /node:(stream|internal\/streams|buffer|events|internal\/webstreams)/.test(u),
  ],
  ['JSON / builtins', (u, fn) => u === '' && /parse|stringify/i.test(fn)],
  ['other node internals', (u) => u.startsWith('node:')],
  ['other', () => true],
];

export function categorize(url: string, functionName: string): string {
  for (const [name, test] of CATEGORIES) if (test(url, functionName)) return name;
  return 'other';
}

/** Self time in ms per node id, from samples and time deltas (falls back to hit counts). */
function selfTimes(profile: CpuProfile): Map<number, number> {
  const times = new Map<number, number>();
  if (profile.samples !== undefined && profile.timeDeltas !== undefined) {
    for (let i = 0; i < profile.samples.length; i += 1) {
      const id = profile.samples[i]!;
      // timeDeltas[i] is the time before sample i; attribute the gap after a sample to it.
      const delta = (profile.timeDeltas[i + 1] ?? 0) / 1000;
      times.set(id, (times.get(id) ?? 0) + delta);
    }
    return times;
  }
  const total = (profile.endTime - profile.startTime) / 1000;
  const hits = profile.nodes.reduce((sum, n) => sum + (n.hitCount ?? 0), 0);
  for (const n of profile.nodes) times.set(n.id, hits === 0 ? 0 : ((n.hitCount ?? 0) * total) / hits);
  return times;
}

export interface ProfileSummary {
  readonly process: string;
  /** Busy time (everything but idle), ms. */
  readonly busyMs: number;
  readonly categories: readonly { readonly name: string; readonly ms: number; readonly share: number }[];
  readonly functions: readonly { readonly name: string; readonly ms: number; readonly share: number }[];
}

export function summarizeProfile(process: string, profile: CpuProfile, topFunctions = 12): ProfileSummary {
  const times = selfTimes(profile);
  const byCategory = new Map<string, number>();
  const byFunction = new Map<string, number>();
  for (const node of profile.nodes) {
    const ms = times.get(node.id) ?? 0;
    if (ms === 0) continue;
    const { functionName, url } = node.callFrame;
    const category = categorize(url, functionName);
    byCategory.set(category, (byCategory.get(category) ?? 0) + ms);
    if (category === 'idle') continue;
    const short = url.replace(/^.*\/(node_modules|packages|services)\//, '$1/');
    const name = `${functionName || '(anonymous)'} ${short}:${String(node.callFrame.lineNumber + 1)}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
  }
  const busyMs = [...byCategory].filter(([n]) => n !== 'idle').reduce((sum, [, ms]) => sum + ms, 0);
  const share = (ms: number): number => (busyMs === 0 ? 0 : ms / busyMs);
  return {
    process,
    busyMs,
    categories: [...byCategory]
      .filter(([n]) => n !== 'idle')
      .sort((a, b) => b[1] - a[1])
      .map(([name, ms]) => ({ name, ms, share: share(ms) })),
    functions: [...byFunction]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topFunctions)
      .map(([name, ms]) => ({ name, ms, share: share(ms) })),
  };
}

/**
 * Which process wrote a profile: its file name (`gateway.cpuprofile`, `proxy.cpuprofile`,
 * `loadgen-<engine>-<config>-<mode>-c<n>.cpuprofile`), else the service whose sources appear in it.
 */
export function profileProcess(profile: CpuProfile, file = ''): string {
  const named = /^(gateway|serving|proxy|loadgen-[\w.-]+)\.cpuprofile$/.exec(file);
  if (named !== null) return named[1]!;
  const urls = profile.nodes.map((n) => n.callFrame.url);
  if (urls.some((u) => u.includes('services/gateway'))) return 'gateway';
  if (urls.some((u) => u.includes('services/serving'))) return 'serving';
  return 'unknown';
}

export function renderProfileSummary(summary: ProfileSummary): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)} %`;
  return [
    `${summary.process}: ${summary.busyMs.toFixed(0)} ms busy`,
    ...summary.categories.map(
      (c) => `  ${c.name.padEnd(50)} ${pct(c.share).padStart(7)}  ${c.ms.toFixed(0)} ms`,
    ),
    '  hottest functions (self time):',
    ...summary.functions.map((f) => `    ${pct(f.share).padStart(7)}  ${f.name}`),
  ].join('\n');
}

/** Summaries of every profile under `dir` (recursively one level: dir/<engine>/*.cpuprofile). */
export async function summarizeProfiles(dir: string): Promise<string> {
  const out: string[] = [];
  let engines: string[];
  try {
    engines = await readdir(dir);
  } catch {
    return '(no profiles were written)';
  }
  for (const engine of engines.sort()) {
    for (const file of (await readdir(join(dir, engine))).filter((f) => f.endsWith('.cpuprofile')).sort()) {
      const profile = JSON.parse(await readFile(join(dir, engine, file), 'utf8')) as CpuProfile;
      out.push(
        `[${engine}] ${renderProfileSummary(summarizeProfile(profileProcess(profile, file), profile))}`,
      );
    }
  }
  return out.length === 0 ? '(no profiles were written)' : out.join('\n\n');
}
