import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ComponentEvidence, TresorError } from '@tresor/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, describeEngineConformance } from '../conformance/engine-conformance.js';
import { metricValue, probeGet, readyzUntil, sealTestModel } from '../support/sealed-test-model.js';
import { SERVING_MEASUREMENT, startServingTrust, type ServingTrust } from '../support/serving-trust.js';
import {
  checkUpstreamCommand,
  DEMO_MODEL_ID,
  demoModelBytes,
  parseServingConfig,
  PrivateWorkDir,
  sendSealedRequest,
  type RunningServingService,
  type ServingConfigInput,
  startServingService,
  startUpstreamProcess,
  type SupervisedEngine,
  unsealModel,
} from '@tresor/serving';

const CHILD = fileURLToPath(new URL('../support/openai-upstream-child.ts', import.meta.url));
/** The upstream command: our llama engine behind a minimal OpenAI-compatible server, in place of vLLM. */
const childCommand = (address: '--port' | '--socket'): string[] => [
  process.execPath,
  '--import',
  'tsx',
  CHILD,
  '{model}',
  '{modelId}',
  address,
  address === '--port' ? '{port}' : '{socket}',
];
const KEY_PATH = 'models/key/upstream-demo';
const KEY_URI = `kbs:///${KEY_PATH}`;
// A seed no other test uses, so a file with this digest anywhere under tmp is our plaintext.
const SEED = 913;

let dir: string;
let rawKey: Uint8Array;
let sealedFile: string;
let plaintextSha256: string;
let plaintextBytes: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-upstream-process-'));
  const plaintext = demoModelBytes({ seed: SEED });
  plaintextBytes = plaintext.length;
  ({
    file: sealedFile,
    rawKey,
    sha256: plaintextSha256,
  } = await sealTestModel(dir, plaintext, KEY_URI, 'demo'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Every file under `root` (two levels deep) holding the demo model's plaintext. */
async function plaintextCopies(root: string, depth = 3): Promise<string[]> {
  const found: string[] = [];
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    const path = join(root, entry.name);
    if (entry.isDirectory() && depth > 0) found.push(...(await plaintextCopies(path, depth - 1)));
    else if (entry.isFile()) {
      const info = await stat(path).catch(() => undefined);
      if (info?.size !== plaintextBytes) continue;
      const bytes = await readFile(path).catch(() => undefined);
      if (bytes !== undefined && createHash('sha256').update(bytes).digest('hex') === plaintextSha256) {
        found.push(path);
      }
    }
  }
  return found;
}

/** A private work folder holding the decrypted demo model, as the replica's start-up leaves it. */
async function decrypted(): Promise<{
  work: PrivateWorkDir;
  model: { id: string; path: string; sha256: string };
}> {
  const work = await PrivateWorkDir.open(join(dir, `work-${randomBytes(4).toString('hex')}`));
  const unsealed = await unsealModel(
    { id: DEMO_MODEL_ID, file: sealedFile, key: KEY_URI },
    rawKey.slice(),
    work.path,
  );
  return { work, model: { id: unsealed.id, path: unsealed.path, sha256: unsealed.sha256 } };
}

/** Asserts that `run` throws CONFIG_INVALID (and nothing else). */
function configInvalid(run: () => unknown): void {
  expect(run).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }) as unknown);
}

describeEngineConformance(
  'openai-upstream started by the replica on a decrypted sealed model (Unix socket)',
  async () => {
    const { work, model } = await decrypted();
    const engine = await startUpstreamProcess({
      command: childCommand('--socket'),
      model,
      workDir: work.path,
    });
    return {
      engine,
      model: DEMO_MODEL_ID,
      dispose: async () => {
        // Closing stopped the child and removed its folder with the plaintext.
        expect(await readdir(work.path)).toEqual([]);
        await work.close();
      },
    };
  },
);

describe('upstream command template', () => {
  it('refuses templates without the model or with no or two addresses', () => {
    configInvalid(() => checkUpstreamCommand([]));
    configInvalid(() => checkUpstreamCommand(['', '{model}', '{port}']));
    configInvalid(() => checkUpstreamCommand(['vllm', 'serve', '--port', '{port}']));
    configInvalid(() => checkUpstreamCommand(['vllm', 'serve', '{model}']));
    configInvalid(() => checkUpstreamCommand(['vllm', '{model}', '{port}', '{socket}']));
  });

  it('accepts vLLM-style templates and names the address kind', () => {
    expect(checkUpstreamCommand(['vllm', 'serve', '{model}', '--port', '{port}'])).toBe('port');
    expect(checkUpstreamCommand(['vllm', 'serve', '{model}', '--uds', '{socket}'])).toBe('socket');
  });

  it('configuration takes exactly one of url, socketPath and command', () => {
    const base = {
      mode: 'local',
      trust: { url: 'https://127.0.0.1:1' },
      tee: { source: 'sample', signingKeyFile: 'k.jwk' },
    };
    const parse = (engine: Record<string, unknown>): unknown =>
      parseServingConfig({ ...base, engine: { kind: 'openai-upstream', ...engine } });
    expect(parse({ command: ['vllm', '{model}', '{port}'] })).toBeDefined();
    for (const engine of [
      { command: ['vllm', '{model}', '{port}'], url: 'http://127.0.0.1:8000' },
      {},
      { command: [] },
      { command: ['vllm', '{model}', '{port}'], keepModelFile: 'forever' },
      { command: ['vllm', '{model}', '{port}'], modelFileName: '../x.gguf' },
    ]) {
      configInvalid(() => parse(engine));
    }
  });
});

describe('supervised upstream process', () => {
  const refused = async (
    command: string[],
    readyTimeoutMs = 60_000,
  ): Promise<{ error: unknown; work: PrivateWorkDir }> => {
    const { work, model } = await decrypted();
    const error = await startUpstreamProcess({
      command,
      model,
      workDir: work.path,
      readyTimeoutMs,
      pollIntervalMs: 50,
    })
      .then(async (engine) => {
        await engine.close();
        return undefined;
      })
      .catch((e: unknown) => e);
    return { error, work };
  };

  it('a child that exits before it is ready: ENGINE_UNAVAILABLE, plaintext gone', async () => {
    const { error, work } = await refused([process.execPath, '-e', 'process.exit(3)', '{model}', '{port}']);
    expect(error).toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
    expect((error as Error).message).toContain('exit code 3');
    expect(await readdir(work.path)).toEqual([]);
    await work.close();
  });

  it('a child that never answers is stopped after the bound: ENGINE_UNAVAILABLE, plaintext gone', async () => {
    const { error, work } = await refused(
      [process.execPath, '-e', 'setInterval(() => {}, 1000)', '{model}', '{port}'],
      1_000,
    );
    expect(error).toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
    expect((error as Error).message).toContain('was not serving model');
    expect(await readdir(work.path)).toEqual([]);
    await work.close();
  });

  it('a command that does not exist: ENGINE_UNAVAILABLE, plaintext gone', async () => {
    const { error, work } = await refused([join(dir, 'no-such-vllm'), 'serve', '{model}', '{port}']);
    expect(error).toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
    expect((error as Error).message).toContain('could not be started');
    expect(await readdir(work.path)).toEqual([]);
    await work.close();
  });

  it('over TCP, until-ready: serves, keeps no plaintext once ready, and a killed child fails the engine', async () => {
    const { work, model } = await decrypted();
    const pidFile = join(dir, 'tcp-child.pid');
    const engine: SupervisedEngine = await startUpstreamProcess({
      command: childCommand('--port'),
      model,
      workDir: work.path,
      keepModelFile: 'until-ready',
      env: { TRESOR_TEST_PID_FILE: pidFile },
    });
    try {
      expect(await plaintextCopies(work.path)).toEqual([]);
      expect(await engine.listModels()).toEqual([
        expect.objectContaining({ id: DEMO_MODEL_ID, sha256: plaintextSha256 }),
      ]);
      const { events } = await collect(
        engine.complete({ model: DEMO_MODEL_ID, prompt: 'hello', maxTokens: 3, temperature: 0 }),
      );
      expect(events.at(-1)).toMatchObject({ type: 'done', finishReason: 'length' });

      const failed = new Promise<TresorError>((resolve) => {
        engine.onFailure(resolve);
      });
      process.kill(Number(await readFile(pidFile, 'utf8')), 'SIGKILL');
      expect(await failed).toMatchObject({ code: 'ENGINE_UNAVAILABLE' });
      expect(engine.failure()?.code).toBe('ENGINE_UNAVAILABLE');
      await expect(
        collect(engine.chat({ model: DEMO_MODEL_ID, messages: [{ role: 'user', content: 'hi' }] })),
      ).rejects.toMatchObject({
        code: 'ENGINE_UNAVAILABLE',
      });
      await expect(engine.countTokens(DEMO_MODEL_ID, 'hi')).rejects.toMatchObject({
        code: 'ENGINE_UNAVAILABLE',
      });
    } finally {
      await engine.close();
    }
    expect(await readdir(work.path)).toEqual([]);
    await work.close();
  });
});

describe('a replica serving a sealed model through a started upstream', () => {
  let trust: ServingTrust;
  beforeAll(async () => {
    trust = await startServingTrust({ resources: { [KEY_PATH]: rawKey } });
  });
  afterAll(async () => {
    await trust.close();
  });

  const config = (
    file: string,
    workDir: string,
    pidFile: string,
    engine: Record<string, unknown> = {},
  ): ServingConfigInput => ({
    mode: 'local',
    listen: { host: '127.0.0.1', port: 0 },
    trust: { url: trust.url, caFile: trust.caFile },
    tee: { source: 'sample', signingKeyFile: trust.sampleKeyFile, measurement: SERVING_MEASUREMENT },
    models: [{ id: DEMO_MODEL_ID, file, key: KEY_URI }],
    engine: {
      kind: 'openai-upstream',
      command: childCommand('--socket'),
      env: { TRESOR_TEST_PID_FILE: pidFile },
      ...engine,
    },
    workDir,
    logLevel: 'silent',
    shutdownGraceMs: 0,
  });

  async function readyz(url: string): Promise<{ status: number; code: unknown }> {
    const { status, text } = await probeGet(`${url}/readyz`);
    return { status, code: (JSON.parse(text) as { code?: unknown }).code };
  }

  it('restarts a SIGKILLed child in place: ENGINE_UNAVAILABLE with Retry-After during the outage, served again after', async () => {
    const workDir = join(dir, 'replica-restart');
    const pidFile = join(dir, 'restart-child.pid');
    // The command waits for a gate file before starting the server: the test holds the restarted
    // child back to observe the outage without racing it, then lets it start.
    const gate = join(dir, 'restart-gate');
    await writeFile(gate, '');
    const serving = await startServingService(
      config(sealedFile, workDir, pidFile, {
        command: [
          '/bin/sh',
          '-c',
          'while [ ! -e "$0" ]; do sleep 0.05; done; exec "$@"',
          gate,
          ...childCommand('--socket'),
        ],
        restart: { initialDelayMs: 100, healthIntervalSeconds: 0 },
      }),
    );
    try {
      await serving.ready;
      const gateway = await trust.meshClient('gateway');
      const attested = await probeGet(`${serving.url}/attestation?nonce=${'ab'.repeat(32)}`);
      const evidence = JSON.parse(attested.text) as ComponentEvidence;
      const chat = (): ReturnType<typeof sendSealedRequest> =>
        sendSealedRequest({
          url: serving.url,
          keyConfig: evidence.runtimeData.hpkeKeyConfig,
          method: 'POST',
          path: '/v1/completions',
          body: { model: DEMO_MODEL_ID, prompt: 'hello', max_tokens: 3, temperature: 0 },
          tls: { ca: trust.meshCa.caCertificatePem, cert: gateway.cert, key: gateway.key },
          serverSpiffeId: 'spiffe://tresor.local/serving/_',
        });
      expect((await chat()).status).toBe(200);
      expect(await metricValue(serving.url, 'serving_engine_restarts_total')).toBe(0);

      const firstPid = Number(await readFile(pidFile, 'utf8'));
      await rm(gate);
      process.kill(firstPid, 'SIGKILL');
      const outage = await readyzUntil(serving.url, (status) => status !== 200);
      expect(outage).toMatchObject({ status: 502, code: 'ENGINE_UNAVAILABLE' });
      expect(Number(outage.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(serving.step()).toBe('restarting');
      const refused = await chat();
      expect(refused.outerStatus).toBe(502);
      expect(Number(refused.outerHeaders['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(JSON.parse(new TextDecoder().decode(refused.body))).toMatchObject({
        error: { code: 'ENGINE_UNAVAILABLE' },
      });
      expect(await metricValue(serving.url, 'serving_engine_exits_total')).toBe(1);
      // The dead child's folder is gone; at most the fresh decryption for the held-back child remains.
      expect((await plaintextCopies(workDir)).length).toBeLessThanOrEqual(1);

      await writeFile(gate, '');
      expect(await readyzUntil(serving.url, (status) => status === 200)).toMatchObject({ status: 200 });
      expect(serving.step()).toBe('ready');
      expect(Number(await readFile(pidFile, 'utf8'))).not.toBe(firstPid);
      const served = await chat();
      expect(served.status).toBe(200);
      expect(JSON.parse(new TextDecoder().decode(served.body))).toMatchObject({
        choices: [expect.objectContaining({ finish_reason: 'length' })],
      });
      expect(await metricValue(serving.url, 'serving_engine_restarts_total')).toBe(1);
      expect((await plaintextCopies(workDir)).length).toBe(1);
    } finally {
      await serving.close();
    }
    expect(existsSync(workDir) ? await readdir(workDir) : []).toEqual([]);
    expect(await plaintextCopies(tmpdir())).toEqual([]);
  });

  it('with maxRapidRestarts 0, a dead child leaves the replica not-ready (ENGINE_UNAVAILABLE) for good', async () => {
    const workDir = join(dir, 'replica-work');
    const pidFile = join(dir, 'replica-child.pid');
    const serving: RunningServingService = await startServingService(
      config(sealedFile, workDir, pidFile, { restart: { maxRapidRestarts: 0 } }),
    );
    try {
      await serving.ready;
      expect((await readyz(serving.url)).status).toBe(200);
      // The plaintext lives only in the child's private folder inside the work folder.
      expect((await plaintextCopies(workDir)).length).toBe(1);
      process.kill(Number(await readFile(pidFile, 'utf8')), 'SIGKILL');
      const answer = await readyzUntil(serving.url, (status) => status !== 200);
      expect(answer).toMatchObject({ status: 502, code: 'ENGINE_UNAVAILABLE' });
      expect(serving.step()).toBe('failed');
      expect(await metricValue(serving.url, 'serving_engine_restarts_total')).toBe(0);
    } finally {
      await serving.close();
    }
    expect(existsSync(workDir) ? await readdir(workDir) : []).toEqual([]);
    expect(await plaintextCopies(tmpdir())).toEqual([]);
  });

  it('never starts the child for a tampered sealed model, and leaves no plaintext', async () => {
    const bytes = new Uint8Array(await readFile(sealedFile));
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] ?? 0) ^ 0x01;
    const tampered = join(dir, 'tampered.tresor');
    await writeFile(tampered, bytes);
    const workDir = join(dir, 'replica-tampered');
    await mkdir(workDir, { recursive: true });
    const pidFile = join(dir, 'tampered-child.pid');
    const serving = await startServingService(config(tampered, workDir, pidFile));
    try {
      await expect(serving.ready).rejects.toMatchObject({ code: 'SEALED_MODEL_TAMPERED' });
      expect(await readyz(serving.url)).toMatchObject({ code: 'SEALED_MODEL_TAMPERED' });
      expect(existsSync(pidFile)).toBe(false);
      expect(await readdir(workDir)).toEqual([]);
    } finally {
      await serving.close();
    }
    expect(await plaintextCopies(tmpdir())).toEqual([]);
  });
});
