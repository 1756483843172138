import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { connect } from '@tresor/sdk';
import { createNodeTransport } from '@tresor/sdk/node';
import { CLUSTER_MODEL, gatewayAdminCall, startGatewayCluster } from '../../support/gateway-cluster.js';
import {
  get,
  Markers,
  readLiveFiles,
  searchLeftovers,
  secretNeedles,
  sendCanaryPrompts,
  startCapture,
  stopCapture,
  type LiveFile,
  type SearchResult,
} from './search.js';

/**
 * Plaintext canaries (issue #13): run the platform (trust, a real serving replica, a real gateway,
 * in this process — canary-up.ts does the same against `tresor up`'s child processes), send prompts
 * carrying unique markers through the SDK (OHTTP to the attested gateway key), then search
 * everything the platform left behind for the markers, the API key and the model key: every log
 * line of the three services, every file in their state, key store and work directories, every
 * entry created in os.tmpdir() during the run, core dump locations, the metrics of every service,
 * and (with `capture`) a tcpdump capture of all loopback traffic. Each secret is searched in raw,
 * hex (both cases) and base64 / base64url forms.
 */

export interface CanaryReport {
  readonly hits: string[];
  /** Hits of the same search in the answers the client decrypted (must be > 0: the search works). */
  readonly controlHits: number;
  /** Files over 256 MiB not read (another process's, in the shared temp dir). */
  readonly skipped: string[];
  readonly searched: SearchResult['searched'] & { readonly requests: number };
  readonly summary: string;
}

function sink(lines: string[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString('utf8'));
      done();
    },
  });
}

/** The report's summary lines, shared by both canary runs. */
export function canarySummary(options: {
  readonly title: string;
  readonly result: SearchResult;
  readonly requests: string;
  readonly markers: number;
  readonly logs: string;
  readonly files: string;
  readonly metrics: string;
  readonly liveFiles: number;
  /** What the control searched, e.g. `the 9 answers the client decrypted`. */
  readonly control: string;
  readonly captured: boolean;
}): string {
  const { result } = options;
  const s = result.searched;
  return [
    options.title,
    `  ${options.requests} carrying ${String(options.markers)} markers; ${String(s.needles)} needles (markers, API key, its secret, model key; raw/hex/base64 forms)`,
    `  logs: ${String(s.logLines)} lines, ${String(s.logBytes)} bytes (${options.logs})`,
    `  files: ${String(s.files)} files, ${String(s.fileBytes)} bytes (${String(options.liveFiles)} of them read while the services ran: ${options.files}; then after stop, with ${String(s.tmpEntries)} new tmp entries, ${result.coreDirs.join(', ')} for core dumps: ${String(s.coreDumps)} found)`,
    `  metrics: ${String(s.metricsBytes)} bytes (${options.metrics})`,
    options.captured
      ? `  loopback capture: ${String(s.packets)} packets, ${String(s.captureBytes)} bytes (tcpdump -i lo)`
      : '  loopback capture: not taken (the integration suite takes one)',
    `  control: the same search finds ${String(result.controlHits)} marker encodings in ${options.control}`,
    ...(result.skipped.length === 0 ? [] : [`  not read (over 256 MiB): ${result.skipped.join(', ')}`]),
    `  hits: ${String(result.hits.length)}${result.hits.length === 0 ? '' : `\n    ${result.hits.join('\n    ')}`}`,
  ].join('\n');
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
  const markers = new Markers();
  let apiKey = '';
  let metrics = Buffer.alloc(0);
  let requests = 0;
  const answers: string[] = [];
  let liveFiles: LiveFile[] = [];
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
    requests = await sendCanaryPrompts({
      client,
      apiKey,
      model: CLUSTER_MODEL,
      markers,
      answers,
      rounds: options.requests ?? 3,
    });
    metrics = Buffer.concat([
      await get(`${gateway.url}/metrics`, cluster.gatewayCa),
      await get(`${cluster.trust.url}/metrics`, cluster.trust.caPem),
    ]);
    // The serving work dir (decrypted models pass through it) and the gateway state, while they run.
    liveFiles = await readLiveFiles([serving.workDir, cluster.dir]);
    await gateway.close();
    await serving.close();
  } finally {
    if (capture !== undefined) await stopCapture(capture);
  }

  const result = await searchLeftovers({
    needles: secretNeedles(markers.all, apiKey, cluster.modelKey),
    answers,
    logs: [{ where: 'logs', text: logLines.join('') }],
    dirs: [cluster.dir, cluster.trust.dir],
    skipDirs: [captureDir],
    tmpBefore,
    liveFiles,
    metrics,
    ...(capture === undefined ? {} : { captureFile }),
  });
  await cluster.close();
  await rm(captureDir, { recursive: true, force: true });

  const summary = canarySummary({
    title: 'Plaintext canaries',
    result,
    requests: `${String(requests)} requests through the SDK`,
    markers: markers.all.length,
    logs: 'trust, serving, gateway at info',
    files: 'state, keystores, audit logs, serving work dir',
    metrics: 'gateway, trust',
    liveFiles: liveFiles.length,
    control: `the ${String(answers.length)} answers the client decrypted`,
    captured: capture !== undefined,
  });
  return {
    hits: result.hits,
    controlHits: result.controlHits,
    skipped: result.skipped,
    searched: { ...result.searched, requests },
    summary,
  };
}
