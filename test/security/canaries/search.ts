import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, readdir, readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TresorClient } from '@tresor/sdk';

/**
 * The parts of the plaintext-canary runs (issue #13) that do not depend on how the platform runs:
 * the needles (every encoding of each secret), the prompts that carry the markers, the search of
 * everything left behind (logs, files, temp entries, core dumps, metrics, a loopback capture) and
 * the loopback capture itself. Used by canary-run.ts (in-process platform) and canary-up.ts
 * (`tresor up`'s child processes).
 */

const MAX_FILE_BYTES = 256 * 1024 * 1024;

export interface Needle {
  readonly name: string;
  readonly bytes: Buffer;
}

/** Every encoding of `secret` worth searching for: raw, hex, base64 and base64url at each alignment. */
export function needlesOf(name: string, secret: Uint8Array): Needle[] {
  const raw = Buffer.from(secret);
  const out = [
    { name: `${name} (raw)`, bytes: raw },
    { name: `${name} (hex)`, bytes: Buffer.from(raw.toString('hex')) },
    { name: `${name} (HEX)`, bytes: Buffer.from(raw.toString('hex').toUpperCase()) },
  ];
  for (let shift = 0; shift < 3; shift++) {
    const part = raw.subarray(shift);
    // Only the characters fully determined by `part`, whatever precedes or follows it.
    const usable = Math.floor(part.length / 3) * 4;
    for (const encoding of ['base64', 'base64url'] as const) {
      const text = part.toString(encoding).slice(0, usable);
      if (text.length >= 16) out.push({ name: `${name} (${encoding}+${shift})`, bytes: Buffer.from(text) });
    }
  }
  return out;
}

/**
 * An API key `tr_<id>_<secret>` split at its first two underscores: the secret (base64url) may
 * itself contain `_`, so splitting at every underscore would cut it short (even to nothing, and an
 * empty needle is found everywhere).
 */
export function splitApiKey(apiKey: string): { keyId: string; secret: string } {
  const match = /^tr_([a-z0-9]+)_(.{16,})$/.exec(apiKey);
  if (match === null) throw new Error('canary setup: not an API key of the form tr_<id>_<secret>');
  return { keyId: match[1]!, secret: match[2]! };
}

/** The needles of one run: each marker, the API key, its secret (text and bytes), the model key. */
export function secretNeedles(markers: readonly string[], apiKey: string, modelKey: Uint8Array): Needle[] {
  if (modelKey.length !== 32) throw new Error('canary setup: no 32-byte model key');
  return [
    ...markers.flatMap((m, i) => needlesOf(`marker ${String(i)}`, Buffer.from(m))),
    ...apiKeyNeedles(apiKey),
    ...needlesOf('model key', modelKey),
  ];
}

/** The API key, its secret part as text and as the bytes it encodes. */
export function apiKeyNeedles(apiKey: string): Needle[] {
  const { secret } = splitApiKey(apiKey);
  return [
    ...needlesOf('API key', Buffer.from(apiKey)),
    ...needlesOf('API key secret', Buffer.from(secret)),
    ...needlesOf('API key secret bytes', Buffer.from(secret, 'base64url')),
  ];
}

/** Hands out fresh markers and remembers them. */
export class Markers {
  readonly all: string[] = [];
  next(): string {
    const m = `CANARY${randomBytes(12).toString('hex')}`;
    this.all.push(m);
    return m;
  }
}

/**
 * The canary prompts through an attested SDK client: per round a chat completion (system, user and
 * `user` field each with a marker), a streamed one, a completion and an embedding; then one request
 * the platform refuses. Every answer is kept in `answers`, every request body in `sent`. With the
 * echo engine (`echo`, default) every answer must be a 200 carrying a marker (the control search
 * must find them there); a real model (llama.cpp under `tresor up`) answers in its own words, so
 * then only the chat completions must be 200 and the control searches what was sent.
 */
export async function sendCanaryPrompts(options: {
  readonly client: TresorClient;
  readonly apiKey: string;
  readonly model: string;
  readonly markers: Markers;
  readonly answers: string[];
  readonly sent?: string[];
  readonly rounds: number;
  readonly echo?: boolean;
}): Promise<number> {
  const { client, apiKey, model, markers, answers } = options;
  const echo = options.echo ?? true;
  // A real model would otherwise write until its context is full.
  const limit = echo ? {} : { max_tokens: 8 };
  let requests = 0;
  const send = async (path: string, body: unknown): Promise<{ status: number; text: string }> => {
    const json = JSON.stringify(body);
    options.sent?.push(json);
    const response = await client.fetch(`${client.gatewayUrl}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: json,
    });
    const text = await response.text();
    requests++;
    return { status: response.status, text };
  };
  const post = async (path: string, body: unknown, required: boolean): Promise<void> => {
    const { status, text } = await send(path, body);
    answers.push(text);
    if (!required) return;
    // Error answers are catalogue JSON (code and message, never content): safe to show.
    if (status !== 200)
      throw new Error(`canary request ${path} answered ${String(status)}: ${text.slice(0, 300)}`);
    // The answer (the echo engine repeats the prompt) must have reached the client in the clear.
    if (echo && !markers.all.some((m) => text.includes(m)))
      throw new Error(`canary answer of ${path} lost its marker`);
  };
  for (let i = 0; i < options.rounds; i++) {
    await post(
      '/v1/chat/completions',
      {
        model,
        messages: [
          { role: 'system', content: `system ${markers.next()}` },
          { role: 'user', content: `hello ${markers.next()} world` },
        ],
        user: markers.next(),
        ...limit,
      },
      true,
    );
    await post(
      '/v1/chat/completions',
      {
        model,
        messages: [{ role: 'user', content: `stream ${markers.next()} please` }],
        stream: true,
        ...limit,
      },
      true,
    );
    await post('/v1/completions', { model, prompt: `complete ${markers.next()}`, max_tokens: 4 }, echo);
    await send('/v1/embeddings', { model, input: `embed ${markers.next()}` });
  }
  // A refused request too: its error path must not log the body either.
  await send('/v1/chat/completions', {
    model,
    messages: [{ role: 'user', content: markers.next() }],
    max_tokens: -1,
  });
  return requests;
}

/** A file read while the platform ran (decrypted models pass through serving's work directory). */
export interface LiveFile {
  readonly path: string;
  readonly bytes: Buffer;
}

/** Reads every file under `dirs` now. */
export async function readLiveFiles(dirs: readonly string[]): Promise<LiveFile[]> {
  const files: string[] = [];
  const seen = new Set<string>();
  for (const d of dirs) await walk(d, files, seen);
  const live: LiveFile[] = [];
  for (const f of files) {
    const bytes = await readFile(f).catch(() => undefined);
    if (bytes !== undefined) live.push({ path: f, bytes });
  }
  return live;
}

export interface SearchInput {
  readonly needles: readonly Needle[];
  /** Where a needle may legitimately appear (e.g. the API key in local.json): skipped there. */
  readonly allowed?: (where: string, needle: Needle) => boolean;
  /** The decrypted answers: the control. */
  readonly answers: readonly string[];
  readonly logs: readonly { readonly where: string; readonly text: string }[];
  /** The platform's directories, walked after it stopped. */
  readonly dirs: readonly string[];
  /** Left out of the walk (the capture's own directory). */
  readonly skipDirs: readonly string[];
  /** os.tmpdir() entries before the run: every other entry is searched. */
  readonly tmpBefore: ReadonlySet<string>;
  readonly liveFiles: readonly LiveFile[];
  readonly metrics: Buffer;
  readonly captureFile?: string;
}

export interface SearchResult {
  readonly hits: string[];
  readonly controlHits: number;
  readonly skipped: string[];
  readonly coreDirs: string[];
  readonly searched: {
    readonly logLines: number;
    readonly logBytes: number;
    readonly files: number;
    readonly fileBytes: number;
    readonly tmpEntries: number;
    readonly coreDumps: number;
    readonly metricsBytes: number;
    readonly packets: number;
    readonly captureBytes: number;
    readonly needles: number;
  };
}

/** Searches everything the platform left behind for every needle. Zero hits is the pass condition. */
export async function searchLeftovers(input: SearchInput): Promise<SearchResult> {
  // A short needle would be found by chance (an empty one everywhere): that is a broken run.
  const short = input.needles.filter((n) => n.bytes.length < 8);
  if (short.length > 0)
    throw new Error(`canary setup: needles too short: ${short.map((n) => n.name).join(', ')}`);
  const hits: string[] = [];
  const search = (where: string, bytes: Buffer): void => {
    for (const n of input.needles) {
      if (input.allowed?.(where, n) === true) continue;
      if (bytes.includes(n.bytes)) hits.push(`${n.name} in ${where}`);
    }
  };

  // Control: the same search finds the markers in the answers the client decrypted.
  search('client answers', Buffer.from(input.answers.join('')));
  const controlHits = hits.splice(0).length;

  let logLines = 0;
  let logBytes = 0;
  for (const log of input.logs) {
    search(log.where, Buffer.from(log.text));
    logLines += log.text.split('\n').filter((l) => l !== '').length;
    logBytes += Buffer.byteLength(log.text);
  }

  // Files: the platform's own directories, and whatever appeared in the temp dir during the run.
  const files: string[] = [];
  const seen = new Set<string>(input.skipDirs);
  for (const d of input.dirs) await walk(d, files, seen);
  const tmpNew = (await readdir(tmpdir())).filter((e) => !input.tmpBefore.has(e));
  for (const e of tmpNew) await walk(join(tmpdir(), e), files, seen);
  // Core dumps: core_pattern is relative ("core") here, so a dump would land in the working directory.
  const coreDirs = [process.cwd(), '/var/lib/systemd/coredump', '/var/crash'].filter((d) => existsSync(d));
  let coreDumps = 0;
  for (const d of coreDirs) {
    for (const e of await readdir(d).catch(() => [] as string[])) {
      if (/^core(\.|$)/.test(e) || d !== process.cwd()) {
        coreDumps++;
        await walk(join(d, e), files, seen);
      }
    }
  }
  let fileBytes = 0;
  const skipped: string[] = [];
  for (const f of files) {
    const size = (await lstat(f).catch(() => undefined))?.size ?? 0;
    if (size > MAX_FILE_BYTES) {
      skipped.push(f);
      continue;
    }
    const bytes = await readFile(f).catch(() => undefined);
    if (bytes === undefined) continue;
    fileBytes += bytes.length;
    search(f, bytes);
  }
  for (const f of input.liveFiles) search(`${f.path} (while running)`, f.bytes);
  const liveBytes = input.liveFiles.reduce((n, f) => n + f.bytes.length, 0);
  search('metrics', input.metrics);
  let packets = 0;
  let captureBytes = 0;
  if (input.captureFile !== undefined) {
    const pcap = await readFile(input.captureFile);
    captureBytes = pcap.length;
    packets = pcapPackets(pcap);
    search('loopback capture', pcap);
  }
  return {
    hits,
    controlHits,
    skipped,
    coreDirs,
    searched: {
      logLines,
      logBytes,
      files: files.length + input.liveFiles.length,
      fileBytes: fileBytes + liveBytes,
      tmpEntries: tmpNew.length,
      coreDumps,
      metricsBytes: input.metrics.length,
      packets,
      captureBytes,
      needles: input.needles.length,
    },
  };
}

export async function walk(path: string, files: string[], seen: Set<string>): Promise<void> {
  if (seen.has(path)) return;
  seen.add(path);
  let info;
  try {
    info = await lstat(path);
  } catch {
    return; // gone meanwhile (another process's temp file)
  }
  if (info.isDirectory()) {
    let entries: string[] = [];
    try {
      entries = await readdir(path);
    } catch {
      return;
    }
    for (const e of entries) await walk(join(path, e), files, seen);
  } else if (info.isFile()) {
    files.push(path);
  }
}

export function pcapPackets(bytes: Buffer): number {
  if (bytes.length < 24) return 0;
  const magic = bytes.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  let offset = 24;
  let packets = 0;
  while (offset + 16 <= bytes.length) {
    const included = le ? bytes.readUInt32LE(offset + 8) : bytes.readUInt32BE(offset + 8);
    offset += 16 + included;
    packets++;
  }
  return packets;
}

/** tcpdump of all loopback traffic into `file`; `filter` (a pcap expression) narrows it. */
export async function startCapture(file: string, filter?: string): Promise<ChildProcess> {
  // -U: write each packet as it arrives; -s 0: whole packets; -n: no name lookups.
  const args = ['-i', 'lo', '-U', '-s', '0', '-n', '-w', file, ...(filter === undefined ? [] : [filter])];
  const child = spawn('tcpdump', args, {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString('utf8');
      if (err.includes('listening on')) resolve();
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      reject(new Error(`tcpdump exited ${String(code)}: ${err.trim()}`));
    });
  });
  return child;
}

export async function stopCapture(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  await exited;
}

export function get(url: string, ca: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, agent: false, minVersion: 'TLSv1.3' }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (p: Buffer) => parts.push(p));
      res.on('end', () => {
        resolve(Buffer.concat(parts));
      });
    });
    req.on('error', reject);
    req.end();
  });
}
