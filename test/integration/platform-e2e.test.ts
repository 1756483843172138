import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alive, childProcesses, filesUnder, freePort, freePortTriple, isGguf } from './up-support.js';

/**
 * The whole confidential path, end to end, as a user runs it: the real `tresor up` (built bin) in a
 * temporary directory, then the real `tresor verify`, `tresor chat` and `tresor proxy` with the
 * official `openai` client, then Ctrl-C. Nothing is mocked but the TEE hardware (sample TEE).
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TRESOR = join(ROOT, 'apps/cli/bin/tresor.js');
/** A marker that must never reach a file or a log: it travels only inside the encryption. */
const CANARY = `canary-${Math.random().toString(36).slice(2)}-do-not-log`;

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let work: string;
let stateDir: string;
let tempDir: string;
let up: ChildProcess;
let upOutput = '';
let upExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
let local: Record<string, string>;
const processOutputs: string[] = [];

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? work,
    TMPDIR: tempDir,
    ...extra,
  };
}

function tresor(args: readonly string[], extraEnv: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [TRESOR, ...args], { cwd: work, env: env(extraEnv) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('close', (code) => {
      processOutputs.push(stdout, stderr);
      resolveRun({ code, stdout, stderr });
    });
  });
}

interface RunningUp {
  readonly process: ChildProcess;
  readonly exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output(): string;
}

/** Runs `tresor up` and resolves once it printed the ready line; rejects with its output if it exits first. */
async function startUp(port: number): Promise<RunningUp> {
  const child = spawn(process.execPath, [TRESOR, 'up', '--dir', stateDir, '--port', String(port)], {
    cwd: work,
    env: env(),
  });
  let output = '';
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.once('close', (code, signal) => {
      resolveExit({ code, signal });
    });
  });
  await new Promise<void>((resolveReady, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.includes('Tresor is ready: ')) resolveReady();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exit.then(({ code }) => {
      reject(new Error(`tresor up exited (${String(code)}) before it was ready:\n${output}`));
    });
  });
  return { process: child, exit, output: () => output };
}

let port: number;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'tresor-e2e-'));
  stateDir = join(work, 'state');
  tempDir = join(work, 'tmp');
  await mkdir(tempDir, { mode: 0o700 });
  port = await freePortTriple();
  const first = await startUp(port);
  up = first.process;
  upExit = first.exit;
  upOutput = first.output();
  up.stdout?.on('data', (chunk: Buffer) => (upOutput += chunk.toString('utf8')));
  up.stderr?.on('data', (chunk: Buffer) => (upOutput += chunk.toString('utf8')));
  local = JSON.parse(await readFile(join(stateDir, 'local.json'), 'utf8')) as Record<string, string>;
}, 240_000);

afterAll(async () => {
  for (const running of [up, second?.process]) {
    if (running?.exitCode === null && running.signalCode === null) {
      running.kill('SIGINT');
      await new Promise((r) => running.once('close', r));
    }
  }
  await rm(work, { recursive: true, force: true });
});

let second: RunningUp | undefined;

describe('tresor up: the whole platform locally', () => {
  it('prints the ready line with the gateway URL and writes exactly the six facts to local.json', () => {
    // The web console's link is a seventh fact when apps/console/dist is built (npm start builds it).
    if (local.consoleUrl !== undefined)
      expect(local.consoleUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+\/console\/#policy=/);
    expect(
      Object.keys(local)
        .filter((k) => k !== 'consoleUrl')
        .sort(),
    ).toEqual(['apiKey', 'caCertFile', 'gatewayUrl', 'model', 'policyFile', 'trustUrl']);
    expect(upOutput).toContain(`Tresor is ready: ${local.gatewayUrl!}`);
    expect(local.gatewayUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(local.apiKey).toMatch(/^tr_/);
    expect(upOutput).toContain('tresor chat');
    expect(upOutput).toContain('tresor proxy');
  });

  it('tresor verify passes under the local policy and says INSECURE for the sample TEE', async () => {
    const run = await tresor([
      'verify',
      local.gatewayUrl!,
      '--policy',
      local.policyFile!,
      '--ca',
      local.caCertFile!,
    ]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.stdout.split('\n')[0]).toMatch(/INSECURE/);
  });

  it('tresor verify fails under a production policy', async () => {
    const production = join(stateDir, 'tresor-policy.production.json');
    const run = await tresor([
      'verify',
      local.gatewayUrl!,
      '--policy',
      production,
      '--ca',
      local.caCertFile!,
    ]);
    expect(run.code).toBe(1);
    expect(run.stdout + run.stderr).toMatch(/SAMPLE_TEE_NOT_ALLOWED|fail/i);
  });

  it('tresor chat streams a non-empty answer', async () => {
    const run = await tresor(
      [
        'chat',
        local.gatewayUrl!,
        '--model',
        local.model!,
        '--policy',
        local.policyFile!,
        '--ca',
        local.caCertFile!,
        `Say hello. ${CANARY}`,
      ],
      { TRESOR_API_KEY: local.apiKey! },
    );
    expect(run.code).toBe(0);
    expect(run.stdout.trim().length).toBeGreaterThan(0);
  });

  it('tresor chat is refused with a wrong API key', async () => {
    const run = await tresor(
      [
        'chat',
        local.gatewayUrl!,
        '--model',
        local.model!,
        '--policy',
        local.policyFile!,
        '--ca',
        local.caCertFile!,
        'hi',
      ],
      { TRESOR_API_KEY: `tr_${'x'.repeat(40)}` },
    );
    expect(run.code).not.toBe(0);
    expect(run.stderr).toMatch(/API_KEY_INVALID/);
  });

  it('the official openai client gets a chat completion and the model list through tresor proxy', async () => {
    const port = await freePort();
    const proxy = spawn(
      process.execPath,
      [
        TRESOR,
        'proxy',
        '--upstream',
        local.gatewayUrl!,
        '--policy',
        local.policyFile!,
        '--ca',
        local.caCertFile!,
        '--listen',
        `127.0.0.1:${String(port)}`,
      ],
      { cwd: work, env: env() },
    );
    let proxyOutput = '';
    const exited = new Promise<void>((resolveExit) => {
      proxy.once('close', () => {
        resolveExit();
      });
    });
    try {
      await new Promise<void>((resolveListening, reject) => {
        const onData = (chunk: Buffer): void => {
          proxyOutput += chunk.toString('utf8');
          if (proxyOutput.includes(`127.0.0.1:${String(port)}`)) resolveListening();
        };
        proxy.stdout.on('data', onData);
        proxy.stderr.on('data', onData);
        void exited.then(() => {
          reject(new Error(`tresor proxy exited:\n${proxyOutput}`));
        });
      });
      const client = new OpenAI({
        baseURL: `http://127.0.0.1:${String(port)}/v1`,
        apiKey: local.apiKey!,
        maxRetries: 0,
      });
      const models = await client.models.list();
      expect(models.data.map((m) => m.id)).toContain(local.model);
      const completion = await client.chat.completions.create({
        model: local.model!,
        messages: [{ role: 'user', content: `Tell me something. ${CANARY}` }],
        max_completion_tokens: 16,
      });
      expect(completion.choices[0]?.message.content?.length ?? 0).toBeGreaterThan(0);
      const stream = await client.chat.completions.create({
        model: local.model!,
        messages: [{ role: 'user', content: `Stream please. ${CANARY}` }],
        max_completion_tokens: 16,
        stream: true,
      });
      let streamed = '';
      for await (const chunk of stream) streamed += chunk.choices[0]?.delta.content ?? '';
      expect(streamed.length).toBeGreaterThan(0);
    } finally {
      proxy.kill('SIGINT');
      await exited;
      processOutputs.push(proxyOutput);
    }
  });

  it('the canary prompt is in no file under the state directory or temp directory, nor in any process log', async () => {
    const files = [...(await filesUnder(stateDir)), ...(await filesUnder(tempDir))];
    expect(files.some((f) => f.endsWith('.log'))).toBe(true);
    for (const file of files) {
      const bytes = await readFile(file).catch(() => Buffer.alloc(0));
      expect(bytes.includes(CANARY), file).toBe(false);
    }
    for (const output of [upOutput, ...processOutputs]) expect(output).not.toContain(CANARY);
  });

  it('after SIGINT no process is left and no plaintext model file remains', async () => {
    const children = (await childProcesses(up.pid!)).map((c) => c.pid);
    expect(children.length).toBe(3);
    up.kill('SIGINT');
    const exit = await upExit;
    expect(exit.code).toBe(0);
    expect(upOutput).toMatch(/Stopped on SIGINT/);
    for (const pid of children) expect(alive(pid), `process ${String(pid)}`).toBe(false);
    const files = [...(await filesUnder(stateDir)), ...(await filesUnder(tempDir))];
    expect(files.filter((f) => f.endsWith('.tresor') && f.includes('/models/'))).toEqual([
      join(stateDir, 'serving', 'models', `${local.model!}.tresor`),
    ]);
    for (const file of files) expect(await isGguf(file), file).toBe(false);
    for (const output of [upOutput, ...processOutputs]) expect(output).not.toContain(CANARY);
  });

  it('a second start reuses the state: no new keys, model or API key, and stops cleanly again', async () => {
    second = await startUp(port);
    const output = second.output();
    expect(output).not.toMatch(/created |issued the |sealed the demo model|created an API key/);
    const again = JSON.parse(await readFile(join(stateDir, 'local.json'), 'utf8')) as Record<string, string>;
    expect(again).toEqual(local);
    second.process.kill('SIGINT');
    expect((await second.exit).code).toBe(0);
  });
});
