/**
 * `openai-upstream` with sealed models: the replica starts the OpenAI-compatible server (vLLM in
 * production) itself, as a supervised child process, on the model it just decrypted into its
 * private work folder. The child gets its own folder inside the work folder (0700) holding the
 * plaintext under a name the server recognises (vLLM detects GGUF by the `.gguf` suffix); the
 * folder is removed when the child exits, when the engine closes, and on any start-up failure.
 *
 * Until the child answers `GET /v1/models` naming the model, nothing is ready (bounded wait,
 * ENGINE_UNAVAILABLE when it exits first or never answers). A child that dies later turns the
 * engine into a failed one: every call answers ENGINE_UNAVAILABLE, the listeners registered with
 * `onFailure` hear it once (the replica then reports not-ready), and nothing is served without it.
 *
 * The child's output is kept only until it is ready (the last lines, for the start-up error):
 * servers such as vLLM may log request contents, so nothing it prints afterwards is kept or logged.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, rename, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { isTresorError, TresorError } from '@tresor/protocol';
import type {
  ChatRequest,
  CompletionRequest,
  EmbeddingRequest,
  Engine,
  EngineModel,
} from '../engine/engine.js';
import { createOpenAiUpstreamEngine, type OpenAiUpstreamEngineOptions } from './openai-upstream-engine.js';

/** A decrypted model for the child (the path is inside the replica's private work folder). */
export interface UpstreamModelFile {
  readonly id: string;
  readonly path: string;
  readonly sha256: string;
}

export interface UpstreamProcessOptions {
  /**
   * argv of the server, with placeholders: `{model}` (the plaintext file, required), `{modelId}`,
   * and the address — `{port}` (a free loopback port, the engine connects to 127.0.0.1) or
   * `{socket}` (a Unix socket in the child's private folder). E.g.
   * `["vllm","serve","{model}","--served-model-name","{modelId}","--host","127.0.0.1","--port","{port}"]`.
   */
  readonly command: readonly string[];
  /** The one model the child serves. */
  readonly model: UpstreamModelFile;
  /** The private work folder the model was decrypted into; the child's folder is made inside it. */
  readonly workDir: string;
  /** File name of the plaintext in the child's folder; default `model.gguf`. */
  readonly modelFileName?: string;
  /**
   * `while-running` (default): the plaintext stays until the child exits or the engine closes.
   * `until-ready`: it is removed once the child answers (a server that loaded every weight into
   * its own memory, as vLLM does, needs the file no longer).
   */
  readonly keepModelFile?: 'while-running' | 'until-ready';
  /** Bound on the wait for the child to answer; default 600 s (vLLM loads large models slowly). */
  readonly readyTimeoutMs?: number;
  /** Between readiness probes; default 250 ms. */
  readonly pollIntervalMs?: number;
  /** After SIGTERM, SIGKILL follows after this long; default 10 s. */
  readonly stopGraceMs?: number;
  /** Added to the inherited environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Options of the HTTP engine in front of the child (apiKey, token counting). */
  readonly engine?: Omit<OpenAiUpstreamEngineOptions, 'baseUrl' | 'socketPath'>;
  /** The child's start-up output, line by line (never called once it is ready). */
  readonly onStartupOutput?: (line: string) => void;
}

/** An engine whose serving process can fail after start-up. */
export interface SupervisedEngine extends Engine {
  /** The reason it stopped serving, once it has. */
  failure(): TresorError | undefined;
  /** Called once when it fails after start-up (at once when it already has). */
  onFailure(listener: (error: TresorError) => void): void;
}

export function isSupervisedEngine(engine: Engine): engine is SupervisedEngine {
  return (
    typeof (engine as Partial<SupervisedEngine>).onFailure === 'function' &&
    typeof (engine as Partial<SupervisedEngine>).failure === 'function'
  );
}

const LAST_LINES = 20;
const PLACEHOLDER = /\{(model|modelId|port|socket)\}/g;

/** Checks a command template; CONFIG_INVALID names what is wrong. */
export function checkUpstreamCommand(command: readonly string[]): 'port' | 'socket' {
  if (command.length === 0 || command[0] === '') {
    throw new TresorError('CONFIG_INVALID', 'engine.command is empty; name the upstream server to start');
  }
  const text = command.join('\u0000');
  if (!text.includes('{model}')) {
    throw new TresorError(
      'CONFIG_INVALID',
      'engine.command must pass {model} (the decrypted model file) to the upstream server',
    );
  }
  const port = text.includes('{port}');
  const socket = text.includes('{socket}');
  if (port === socket) {
    throw new TresorError(
      'CONFIG_INVALID',
      'engine.command must name exactly one address for the upstream server: {port} or {socket}',
    );
  }
  return port ? 'port' : 'socket';
}

/** A free TCP port on 127.0.0.1 (the kernel picks it; the child binds it right after). */
async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  if (address === null || typeof address === 'string') {
    throw new TresorError('ENGINE_UNAVAILABLE', 'no free loopback port for the upstream server');
  }
  return address.port;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
}

/**
 * Starts the upstream server on the decrypted model and resolves once it serves that model.
 * On any failure the child is stopped and its folder (with the plaintext) removed before this
 * rejects with ENGINE_UNAVAILABLE (CONFIG_INVALID for a bad template).
 */
export async function startUpstreamProcess(options: UpstreamProcessOptions): Promise<SupervisedEngine> {
  const addressKind = checkUpstreamCommand(options.command);
  const readyTimeoutMs = options.readyTimeoutMs ?? 600_000;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const stopGraceMs = options.stopGraceMs ?? 10_000;
  const { model } = options;

  const childDir = join(options.workDir, `upstream-${randomBytes(6).toString('hex')}`);
  await mkdir(childDir, { mode: 0o700 });
  const modelPath = join(childDir, options.modelFileName ?? 'model.gguf');
  const removeChildDir = (): Promise<void> =>
    rm(childDir, { recursive: true, force: true }).catch(() => undefined);
  try {
    // A rename, not a copy: one plaintext, now owned by this child's folder (the caller's unlink
    // of the old name then finds nothing).
    await rename(model.path, modelPath);
  } catch (cause) {
    await removeChildDir();
    throw new TresorError('MODEL_LOAD_FAILED', `model ${model.id}: the decrypted file could not be moved`, {
      cause,
    });
  }

  const port = addressKind === 'port' ? await freeLoopbackPort() : undefined;
  const socketPath = addressKind === 'socket' ? join(childDir, 'upstream.sock') : undefined;
  const values: Record<string, string> = {
    model: modelPath,
    modelId: model.id,
    port: String(port ?? ''),
    socket: socketPath ?? '',
  };
  const argv = options.command.map((part) => part.replace(PLACEHOLDER, (_m, name: string) => values[name]!));

  const http = createOpenAiUpstreamEngine({
    ...options.engine,
    ...(socketPath === undefined ? { baseUrl: `http://127.0.0.1:${String(port)}` } : { socketPath }),
  });

  const lastLines: string[] = [];
  let starting = true;
  let failure: TresorError | undefined;
  let closed = false;
  const listeners: ((error: TresorError) => void)[] = [];

  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
    // Its own process group, so stopping it also stops the workers it forks (vLLM does).
    detached: true,
  });
  const record = (chunk: Buffer): void => {
    if (!starting) return; // Drained and dropped: after start-up it may print request contents.
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim() === '') continue;
      lastLines.push(line);
      if (lastLines.length > LAST_LINES) lastLines.shift();
      options.onStartupOutput?.(line);
    }
  };
  child.stdout?.on('data', record);
  child.stderr?.on('data', record);

  const killGroup = (signal: NodeJS.Signals): void => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal);
    } catch {
      child.kill(signal);
    }
  };
  // Should this process die without closing the engine, the child must not serve on without it.
  const killOnExit = (): void => {
    killGroup('SIGKILL');
  };
  process.once('exit', killOnExit);

  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; spawnError?: Error }>(
    (resolve) => {
      child.once('error', (spawnError) => {
        if (child.pid === undefined) resolve({ code: null, signal: null, spawnError });
      });
      child.once('exit', (code, signal) => {
        resolve({ code, signal });
      });
    },
  );
  void exited.then(async ({ code, signal }) => {
    process.off('exit', killOnExit);
    // The child is gone: so is its plaintext.
    await removeChildDir();
    if (starting || closed) return;
    failure = new TresorError(
      'ENGINE_UNAVAILABLE',
      `the upstream server of model ${model.id} exited (${describeExit(code, signal)}); this replica serves nothing until it is restarted`,
    );
    for (const listener of listeners.splice(0)) listener(failure);
  });

  const stop = async (): Promise<void> => {
    killGroup('SIGTERM');
    const timer = setTimeout(() => {
      killGroup('SIGKILL');
    }, stopGraceMs);
    try {
      await exited;
    } finally {
      clearTimeout(timer);
    }
    await removeChildDir();
  };

  const started = Date.now();
  const probing = new AbortController();
  try {
    const outcome = await Promise.race([
      exited.then((exit) => ({ kind: 'exited' as const, exit })),
      waitServing(http, model.id, readyTimeoutMs, pollIntervalMs, probing.signal).then((reason) => ({
        kind: 'probed' as const,
        reason,
      })),
    ]);
    if (outcome.kind === 'exited') {
      const { code, signal, spawnError } = outcome.exit;
      throw new TresorError(
        'ENGINE_UNAVAILABLE',
        spawnError === undefined
          ? `the upstream server (${argv[0]!}) exited before it was ready (${describeExit(code, signal)})`
          : `the upstream server (${argv[0]!}) could not be started: ${spawnError.message}`,
        { cause: new Error(lastLines.join('\n')) },
      );
    }
    if (outcome.reason !== undefined) {
      throw new TresorError(
        'ENGINE_UNAVAILABLE',
        `the upstream server (${argv[0]!}) was not serving model ${model.id} within ${String(Math.round((Date.now() - started) / 1000))} s (${outcome.reason}); it was stopped`,
        { cause: new Error(lastLines.join('\n')) },
      );
    }
  } catch (err) {
    probing.abort();
    starting = false;
    closed = true;
    await http.close();
    await stop();
    throw err;
  }
  starting = false;
  lastLines.length = 0;
  if (options.keepModelFile === 'until-ready') await rm(modelPath, { force: true });

  const check = (): void => {
    if (failure !== undefined) throw failure;
  };
  const guard = <T>(run: () => Promise<T>): Promise<T> => {
    if (failure !== undefined) return Promise.reject(failure);
    return run().catch((err: unknown) => {
      // A request cut off by the child's death reports the death, not the broken connection.
      throw failure ?? err;
    });
  };
  return {
    kind: 'openai-upstream',
    failure: () => failure,
    onFailure(listener) {
      if (failure !== undefined) listener(failure);
      else listeners.push(listener);
    },
    listModels: () =>
      guard(async () =>
        (await http.listModels()).map((m): EngineModel =>
          m.id === model.id ? { ...m, sha256: model.sha256 } : m,
        ),
      ),
    async *chat(request: ChatRequest) {
      check();
      yield* http.chat(request);
    },
    async *complete(request: CompletionRequest) {
      check();
      yield* http.complete(request);
    },
    embed: (request: EmbeddingRequest) => guard(() => http.embed(request)),
    countTokens: (id: string, text: string) => guard(() => http.countTokens(id, text)),
    async close() {
      if (closed) return;
      closed = true;
      await http.close();
      await stop();
    },
  };
}

/**
 * Asks the child for its models until it names `modelId`; resolves undefined when it does, or
 * the last reason it was not ready once `timeoutMs` passed.
 */
async function waitServing(
  engine: Engine,
  modelId: string,
  timeoutMs: number,
  pollIntervalMs: number,
  signal: AbortSignal,
): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  let reason = 'it never answered';
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0 || signal.aborted) return reason;
    try {
      const models = await engine.listModels();
      if (models.some((m) => m.id === modelId)) return undefined;
      reason = `it serves ${models.map((m) => m.id).join(', ') || 'no model'}, not ${modelId}`;
    } catch (err) {
      reason = isTresorError(err) ? err.code : 'it did not answer';
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(pollIntervalMs, Math.max(0, remaining))));
  }
}
