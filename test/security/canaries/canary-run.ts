import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect } from '@tresor/sdk';
import { createNodeTransport } from '@tresor/sdk/node';
import { CLUSTER_MODEL, gatewayAdminCall, startGatewayCluster } from '../../support/gateway-cluster.js';

/**
 * Plaintext canaries (issue #13): run the platform (trust, a real serving replica, a real gateway,
 * in this process — `tresor up` is not used), send prompts carrying unique markers through the SDK
 * (OHTTP to the attested gateway key), then search everything the platform left behind for the
 * markers, the API key and the model key: every log line of the three services, every file in their
 * state, key store and work directories, every entry created in os.tmpdir() during the run, core
 * dump locations, the metrics of every service, and (with `capture`) a tcpdump capture of all
 * loopback traffic. Each secret is searched in raw, hex (both cases) and base64 / base64url forms.
 */

const MAX_FILE_BYTES = 256 * 1024 * 1024;

export interface CanaryReport {
  readonly hits: string[];
  /** Hits of the same search in the answers the client decrypted (must be > 0: the search works). */
  readonly controlHits: number;
  /** Files over 256 MiB not read (another process's, in the shared temp dir). */
  readonly skipped: string[];
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
    readonly requests: number;
  };
  readonly summary: string;
}

/** Every encoding of `secret` worth searching for: raw, hex, base64 and base64url at each alignment. */
export function needlesOf(name: string, secret: Uint8Array): { name: string; bytes: Buffer }[] {
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

async function walk(path: string, files: string[], seen: Set<string>): Promise<void> {
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

function pcapPackets(bytes: Buffer): number {
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

async function startCapture(file: string): Promise<ChildProcess> {
  // -U: write each packet as it arrives; -s 0: whole packets; -n: no name lookups.
  const child = spawn('tcpdump', ['-i', 'lo', '-U', '-s', '0', '-n', '-w', file], {
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

async function stopCapture(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGINT');
  await exited;
}

function get(url: string, ca: string): Promise<Buffer> {
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

function sink(lines: string[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
}

export async function runCanaries(options: {
  readonly capture: boolean;
  readonly requests?: number;
}): Promise<CanaryReport> {
  const tmpBefore = new Set(await readdir(tmpdir()));
  const captureDir = await mkdtemp(join(tmpdir(), 'tresor-canary-capture-'));
  const captureFile = join(captureDir, 'lo.pcap');
  const capture = options.capture ? await startCapture(captureFile) : undefined;
  const logLines: string[] = [];
  const cluster = await startGatewayCluster({ trustLogDestination: sink(logLines) });
  const markers: string[] = [];
  const marker = (): string => {
    const m = `CANARY${randomBytes(12).toString('hex')}`;
    markers.push(m);
    return m;
  };
  let apiKey = '';
  let metrics = Buffer.alloc(0);
  let requests = 0;
  const answers: string[] = [];
  const liveFiles: { path: string; bytes: Buffer }[] = [];
  try {
    const serving = await cluster.startServing({ logDestination: sink(logLines), logLevel: 'info' });
    const gateway = await cluster.startGateway({
      replicaUrls: [serving.url],
      logDestination: sink(logLines),
      logLevel: 'info',
    });
    const admin = async (operation: string, body: unknown): Promise<Record<string, unknown>> => {
      const answer = await gatewayAdminCall(gateway.url, cluster.gatewayCa, cluster.admin, operation, body);
      if (answer.status !== 200) throw new Error(`canary setup: ${operation} answered ${answer.status}`);
      return answer.json;
    };
    await admin('tenants/create', { id: 'acme' });
    await admin('policies/set', {
      tenant: 'acme',
      policy: 'permit(principal in Gateway::Tenant::"acme", action, resource);',
    });
    apiKey = (await admin('api-keys/create', { tenant: 'acme' })).key as string;
    const documentKeys = (
      JSON.parse(
        (await get(`${cluster.trust.url}/trust/v0/document-keys`, cluster.trust.caPem)).toString('utf8'),
      ) as {
        keys: Record<string, unknown>[];
      }
    ).keys;
    const client = await connect(gateway.url, {
      policy: {
        version: 1,
        trustServiceKeys: documentKeys.map((jwk) => ({ jwk })),
        trustSignedReferenceValues: true,
        allowSampleTee: true,
        sampleVerifyKeys: [cluster.trust.sampleKey.verifyKey.hex],
      },
      ...createNodeTransport({ ca: cluster.gatewayCa }),
    });
    const post = async (path: string, body: unknown): Promise<void> => {
      const response = await client.fetch(`${client.gatewayUrl}${path}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await response.text();
      answers.push(text);
      requests++;
      if (response.status !== 200) throw new Error(`canary request ${path} answered ${response.status}`);
      // The answer (the echo engine repeats the prompt) must have reached the client in the clear.
      if (!markers.some((m) => text.includes(m))) throw new Error(`canary answer of ${path} lost its marker`);
    };
    const rounds = options.requests ?? 3;
    for (let i = 0; i < rounds; i++) {
      await post('/v1/chat/completions', {
        model: CLUSTER_MODEL,
        messages: [
          { role: 'system', content: `system ${marker()}` },
          { role: 'user', content: `hello ${marker()} world` },
        ],
        user: marker(),
      });
      await post('/v1/chat/completions', {
        model: CLUSTER_MODEL,
        messages: [{ role: 'user', content: `stream ${marker()} please` }],
        stream: true,
      });
      await post('/v1/completions', { model: CLUSTER_MODEL, prompt: `complete ${marker()}`, max_tokens: 4 });
      const e = marker();
      const response = await client.fetch(`${client.gatewayUrl}/v1/embeddings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: CLUSTER_MODEL, input: `embed ${e}` }),
      });
      await response.text();
      requests++;
    }
    // A refused request too: its error path must not log the body either.
    const refused = await client.fetch(`${client.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: CLUSTER_MODEL,
        messages: [{ role: 'user', content: marker() }],
        max_tokens: -1,
      }),
    });
    await refused.text();
    requests++;
    metrics = Buffer.concat([
      await get(`${gateway.url}/metrics`, cluster.gatewayCa),
      await get(`${cluster.trust.url}/metrics`, cluster.trust.caPem),
    ]);
    // The serving work dir (decrypted models pass through it) and the gateway state, while they run.
    const running: string[] = [];
    const runningSeen = new Set<string>();
    await walk(serving.workDir, running, runningSeen);
    await walk(cluster.dir, running, runningSeen);
    for (const f of running) {
      const bytes = await readFile(f).catch(() => undefined);
      if (bytes !== undefined) liveFiles.push({ path: f, bytes });
    }
    await gateway.close();
    await serving.close();
  } finally {
    if (capture !== undefined) await stopCapture(capture);
  }

  const [, keyId, secret] = apiKey.split('_');
  const needles = [
    ...markers.flatMap((m, i) => needlesOf(`marker ${i}`, Buffer.from(m))),
    ...needlesOf('API key', Buffer.from(apiKey)),
    ...needlesOf('API key secret', Buffer.from(secret ?? '')),
    ...needlesOf('API key secret bytes', Buffer.from(secret ?? '', 'base64url')),
    ...needlesOf('model key', cluster.modelKey),
  ];
  if (keyId === undefined || secret === undefined) throw new Error('canary setup: no API key');
  const hits: string[] = [];
  const search = (where: string, bytes: Buffer): void => {
    for (const n of needles) if (bytes.includes(n.bytes)) hits.push(`${n.name} in ${where}`);
  };

  // Control: the same search finds the markers in the answers the client decrypted.
  const before = hits.length;
  search('client answers', Buffer.from(answers.join('')));
  const controlHits = hits.splice(before).length;

  const logText = logLines.join('');
  search('logs', Buffer.from(logText));

  // Files: the platform's own directories, and whatever appeared in the temp dir during the run.
  const files: string[] = [];
  const seen = new Set<string>([captureDir]);
  await walk(cluster.dir, files, seen);
  await walk(cluster.trust.dir, files, seen);
  const tmpNew = (await readdir(tmpdir())).filter((e) => !tmpBefore.has(e));
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
  for (const f of liveFiles) search(`${f.path} (while running)`, f.bytes);
  const liveBytes = liveFiles.reduce((n, f) => n + f.bytes.length, 0);
  search('metrics', metrics);
  let packets = 0;
  let captureBytes = 0;
  if (capture !== undefined) {
    const pcap = await readFile(captureFile);
    captureBytes = pcap.length;
    packets = pcapPackets(pcap);
    search('loopback capture', pcap);
  }
  await cluster.close();
  await rm(captureDir, { recursive: true, force: true });

  const searched = {
    logLines: logLines.length,
    logBytes: Buffer.byteLength(logText),
    files: files.length + liveFiles.length,
    fileBytes: fileBytes + liveBytes,
    tmpEntries: tmpNew.length,
    coreDumps,
    metricsBytes: metrics.length,
    packets,
    captureBytes,
    needles: needles.length,
    requests,
  };
  const summary = [
    'Plaintext canaries',
    `  ${requests} requests through the SDK carrying ${markers.length} markers; ${needles.length} needles (markers, API key, its secret, model key; raw/hex/base64 forms)`,
    `  logs: ${searched.logLines} lines, ${searched.logBytes} bytes (trust, serving, gateway at info)`,
    `  files: ${searched.files} files, ${searched.fileBytes} bytes (${liveFiles.length} of them read while the services ran: state, keystores, audit logs, serving work dir; then after stop, with ${searched.tmpEntries} new tmp entries, ${coreDirs.join(', ')} for core dumps: ${coreDumps} found)`,
    `  metrics: ${searched.metricsBytes} bytes (gateway, trust)`,
    capture === undefined
      ? '  loopback capture: not taken (test/integration/security-canaries.test.ts takes one)'
      : `  loopback capture: ${packets} packets, ${captureBytes} bytes (tcpdump -i lo)`,
    `  control: the same search finds ${controlHits} marker encodings in the ${answers.length} answers the client decrypted`,
    ...(skipped.length === 0 ? [] : [`  not read (over 256 MiB): ${skipped.join(', ')}`]),
    `  hits: ${hits.length}${hits.length === 0 ? '' : `\n    ${hits.join('\n    ')}`}`,
  ].join('\n');
  return { hits, controlHits, skipped, searched, summary };
}
