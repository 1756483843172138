/**
 * `openai-upstream` with sealed models: the replica starts the OpenAI-compatible server (vLLM in
 * production) itself, as a supervised child process, on the model it just decrypted into its
 * private work folder. The child gets its own folder inside the work folder (0700) holding the
 * plaintext under a name the server recognises (vLLM detects GGUF by the `.gguf` suffix); the
 * folder is removed when the child exits, when the engine closes, and on any start-up failure.
 *
 * Until the child answers `GET /v1/models` naming the model, nothing is ready (bounded wait,
 * ENGINE_UNAVAILABLE when it exits first or never answers). A child that dies later, or stops
 * answering its health probe, is restarted in place (superviseUpstream below): meanwhile every
 * call answers ENGINE_UNAVAILABLE with a Retry-After hint and the replica reports not-ready; after
 * too many rapid failures the engine fails for good.
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
  GenerationEvent,
} from '../engine/engine.js';
import { engineClosed } from './generation.js';
import { createOpenAiUpstreamEngine, type OpenAiUpstreamEngineOptions } from './openai-upstream-engine.js';
import { RestartPolicy, type RestartPolicyOptions } from './restart-policy.js';

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
  /**
   * Decrypts the model again into the work folder for a restart (the replica re-runs its start-up
   * checks: key release, reference values). Without it a dead child is not restarted.
   */
  readonly reload?: (signal: AbortSignal) => Promise<UpstreamModelFile>;
  /** Back-off and give-up of restarts (restart-policy.ts defaults). */
  readonly restart?: Partial<RestartPolicyOptions>;
  readonly health?: Partial<UpstreamHealthOptions>;
  /** What the supervisor did (the replica logs and counts it); never carries content. */
  readonly onEvent?: (event: UpstreamEvent) => void;
}

/** The health probe of a serving child: `GET /v1/models` must name the model. */
export interface UpstreamHealthOptions {
  /** Between probes; 0 turns probing off (an exit is still noticed). Default 10 s. */
  readonly intervalMs: number;
  /** A probe not answered within this long failed; default 5 s. */
  readonly timeoutMs: number;
  /** Failed probes in a row after which the child is killed (and restarted); default 3. */
  readonly failures: number;
}

export const DEFAULT_UPSTREAM_HEALTH: UpstreamHealthOptions = {
  intervalMs: 10_000,
  timeoutMs: 5_000,
  failures: 3,
};

/** What the supervisor reports (codes and counts only, never content). */
export type UpstreamEvent =
  | {
      readonly kind: 'exited';
      readonly exitCode: number | null;
      readonly signal: NodeJS.Signals | null;
      /** Restarts so far (before this exit's). */
      readonly restarts: number;
      /** Killed by the supervisor after failed health probes. */
      readonly killed?: true;
    }
  | { readonly kind: 'probe-failed'; readonly failures: number }
  | {
      readonly kind: 'restarting';
      readonly delayMs: number;
      readonly failures: number;
      readonly restarts: number;
    }
  | { readonly kind: 'restart-failed'; readonly code: string; readonly failures: number }
  | { readonly kind: 'restarted'; readonly restarts: number }
  | { readonly kind: 'gave-up'; readonly failures: number; readonly restarts: number; readonly code: string };

/** `serving`; `restarting` while its process is down and being started again; `failed` for good. */
export type SupervisedState = 'serving' | 'restarting' | 'failed';

/** An engine whose serving process can fail after start-up. */
export interface SupervisedEngine extends Engine {
  /** The reason it stopped serving for good, once it has. */
  failure(): TresorError | undefined;
  /** Called once when it fails for good (at once when it already has). */
  onFailure(listener: (error: TresorError) => void): void;
  state(): SupervisedState;
  /** What calls answer now when it is not serving (ENGINE_UNAVAILABLE, or the final failure). */
  unavailable(): TresorError | undefined;
  /** Restarts that got it serving again. */
  restarts(): number;
  /** Each change of state, with what calls answer meanwhile; at once when it is not serving. */
  onStateChange(listener: (state: SupervisedState, error: TresorError | undefined) => void): void;
}

export function isSupervisedEngine(engine: Engine): engine is SupervisedEngine {
  const candidate = engine as Partial<SupervisedEngine>;
  return (
    typeof candidate.onFailure === 'function' &&
    typeof candidate.failure === 'function' &&
    typeof candidate.onStateChange === 'function'
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

/** How a child ended. */
export interface UpstreamExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal === null ? `exit code ${String(code)}` : `signal ${signal}`;
}

/** One running upstream server, ready (it answered naming its model). */
export interface UpstreamChild {
  /** The HTTP engine in front of it. */
  readonly http: Engine;
  /** Settles once it is gone and its private folder (with the plaintext) removed. */
  readonly exited: Promise<UpstreamExit>;
  /** SIGKILL to its process group (a child that stopped answering its health probe). */
  kill(): void;
  /** SIGTERM, SIGKILL after the grace period; resolves once it is gone and its folder removed. */
  stop(): Promise<void>;
}

/**
 * Starts one child on a decrypted model file and resolves once it serves that model. On any
 * failure (or `signal` aborted) the child is stopped and its folder, holding the plaintext, removed
 * before this rejects with ENGINE_UNAVAILABLE (MODEL_LOAD_FAILED when the file cannot be moved;
 * the caller then still owns it).
 */
async function launchUpstreamChild(
  options: UpstreamProcessOptions,
  addressKind: 'port' | 'socket',
  model: UpstreamModelFile,
  signal: AbortSignal,
): Promise<UpstreamChild> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 600_000;
  const pollIntervalMs = options.pollIntervalMs ?? 250;
  const stopGraceMs = options.stopGraceMs ?? 10_000;

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

  const killGroup = (sig: NodeJS.Signals): void => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, sig);
    } catch {
      child.kill(sig);
    }
  };
  // Should this process die without closing the engine, the child must not serve on without it.
  const killOnExit = (): void => {
    killGroup('SIGKILL');
  };
  process.once('exit', killOnExit);

  const exitedRaw = new Promise<UpstreamExit & { spawnError?: Error }>((resolve) => {
    child.once('error', (spawnError) => {
      if (child.pid === undefined) resolve({ code: null, signal: null, spawnError });
    });
    child.once('exit', (code, sig) => {
      resolve({ code, signal: sig });
    });
  });
  // The child is gone: so is its plaintext (and its socket).
  const exited = exitedRaw.then(async (exit) => {
    process.off('exit', killOnExit);
    await removeChildDir();
    return exit;
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
  };

  const started = Date.now();
  const probing = new AbortController();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<{ kind: 'aborted' }>((resolve) => {
    onAbort = () => {
      resolve({ kind: 'aborted' });
    };
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    const outcome = await Promise.race([
      exitedRaw.then((exit) => ({ kind: 'exited' as const, exit })),
      waitServing(http, model.id, readyTimeoutMs, pollIntervalMs, probing.signal).then((reason) => ({
        kind: 'probed' as const,
        reason,
      })),
      aborted,
    ]);
    if (outcome.kind === 'aborted') {
      throw new TresorError(
        'ENGINE_UNAVAILABLE',
        `the upstream server (${argv[0]!}) was stopped while starting`,
      );
    }
    if (outcome.kind === 'exited') {
      const { code, signal: sig, spawnError } = outcome.exit;
      throw new TresorError(
        'ENGINE_UNAVAILABLE',
        spawnError === undefined
          ? `the upstream server (${argv[0]!}) exited before it was ready (${describeExit(code, sig)})`
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
    await http.close();
    await stop();
    throw err;
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
  }
  starting = false;
  lastLines.length = 0;
  if (options.keepModelFile === 'until-ready') await rm(modelPath, { force: true });
  return {
    http,
    exited,
    kill: () => {
      killGroup('SIGKILL');
    },
    stop,
  };
}

/**
 * Starts the upstream server on the decrypted model and resolves once it serves that model, then
 * supervises it (see {@link superviseUpstream}: restarts when `reload` is given). On a start-up
 * failure the child is stopped and its folder (with the plaintext) removed before this rejects
 * with ENGINE_UNAVAILABLE (CONFIG_INVALID for a bad template).
 */
export async function startUpstreamProcess(options: UpstreamProcessOptions): Promise<SupervisedEngine> {
  const addressKind = checkUpstreamCommand(options.command);
  const launch = (file: UpstreamModelFile, signal: AbortSignal): Promise<UpstreamChild> =>
    launchUpstreamChild(options, addressKind, file, signal);
  const first = await launch(options.model, new AbortController().signal);
  return superviseUpstream(first, {
    model: options.model,
    launch,
    ...(options.reload === undefined ? {} : { reload: options.reload }),
    ...(options.restart === undefined ? {} : { restart: options.restart }),
    ...(options.health === undefined ? {} : { health: options.health }),
    ...(options.onEvent === undefined ? {} : { onEvent: options.onEvent }),
  });
}

/** Runs `run` after `delayMs`; the answer cancels it. */
export type UpstreamScheduler = (run: () => void, delayMs: number) => () => void;

const realScheduler: UpstreamScheduler = (run, delayMs) => {
  const timer = setTimeout(run, delayMs);
  timer.unref();
  return () => {
    clearTimeout(timer);
  };
};

export interface SuperviseOptions {
  /** The model the children serve (its digest is the one the replica's evidence names). */
  readonly model: UpstreamModelFile;
  /** Starts a child on a freshly decrypted file, resolving once it serves. */
  readonly launch: (file: UpstreamModelFile, signal: AbortSignal) => Promise<UpstreamChild>;
  /** Decrypts the model again for a restart; no restart without it. */
  readonly reload?: (signal: AbortSignal) => Promise<UpstreamModelFile>;
  readonly restart?: Partial<RestartPolicyOptions>;
  readonly health?: Partial<UpstreamHealthOptions>;
  readonly onEvent?: (event: UpstreamEvent) => void;
  /** The policy's clock (tests); Date.now by default. */
  readonly now?: () => number;
  /** Timers for restarts and probes (tests fire them by hand). */
  readonly schedule?: UpstreamScheduler;
}

/**
 * Supervises a started child: it is probed (`GET /v1/models` naming the model) every
 * `health.intervalMs`, and killed after `health.failures` failed probes in a row. When it dies,
 * the engine answers ENGINE_UNAVAILABLE (with `details.retryAfterSeconds`) and the child is
 * started again after the back-off of {@link RestartPolicy}: `reload` decrypts the model anew
 * (the replica asks the trust service for its key and checks the reference values again, exactly
 * as at start), the new file must have the digest the replica attested, and the new child must
 * answer before the engine serves again. After too many rapid failures it gives up for good:
 * `failure()` and `onFailure` say so and the replica stays not-ready.
 */
export function superviseUpstream(first: UpstreamChild, options: SuperviseOptions): SupervisedEngine {
  const { model, launch, reload } = options;
  const schedule = options.schedule ?? realScheduler;
  const health: UpstreamHealthOptions = { ...DEFAULT_UPSTREAM_HEALTH, ...options.health };
  const policy = new RestartPolicy(options.restart, options.now ?? Date.now);
  const emit = (event: UpstreamEvent): void => {
    try {
      options.onEvent?.(event);
    } catch {
      // A listener's failure must not stop the supervision.
    }
  };

  let current: UpstreamChild | undefined = first;
  let state: SupervisedState = 'serving';
  let failure: TresorError | undefined;
  let outage: TresorError | undefined;
  let restarts = 0;
  let closed = false;
  // Read through a call: TypeScript narrows `closed` across an await as if it could not change.
  const isClosed = (): boolean => closed;
  const closing = new AbortController();
  let cancelRestart: (() => void) | undefined;
  let cancelProbe: (() => void) | undefined;
  let relaunching: Promise<void> | undefined;
  const failureListeners: ((error: TresorError) => void)[] = [];
  const stateListeners: ((state: SupervisedState, error: TresorError | undefined) => void)[] = [];
  /** Why a child died, for the requests it was answering. */
  const deaths = new WeakMap<UpstreamChild, TresorError>();

  const setState = (next: SupervisedState, error: TresorError | undefined): void => {
    state = next;
    for (const listener of stateListeners) listener(next, error);
  };

  const giveUp = (error: TresorError, failures: number): void => {
    failure = error;
    outage = undefined;
    emit({ kind: 'gave-up', failures, restarts, code: error.code });
    setState('failed', error);
    for (const listener of failureListeners.splice(0)) listener(error);
  };

  /** The child is gone (or never came up): restart it after the back-off, or give up. */
  const decide = (what: string): void => {
    if (reload === undefined) {
      giveUp(
        new TresorError(
          'ENGINE_UNAVAILABLE',
          `the upstream server of model ${model.id} ${what}; this replica serves nothing until it is restarted`,
        ),
        policy.failures + 1,
      );
      return;
    }
    const decision = policy.failed();
    if (decision.action === 'give-up') {
      giveUp(
        new TresorError(
          'ENGINE_UNAVAILABLE',
          `the upstream server of model ${model.id} ${what}; gave up after ${String(decision.failures)} failures in a row (restart the replica once the engine is fixed)`,
          { details: { failures: decision.failures, restarts } },
        ),
        decision.failures,
      );
      return;
    }
    const retryAfterSeconds = Math.max(1, Math.ceil(decision.delayMs / 1000));
    outage = new TresorError(
      'ENGINE_UNAVAILABLE',
      `the upstream server of model ${model.id} ${what}; it is being restarted`,
      { details: { retryAfterSeconds, failures: decision.failures } },
    );
    emit({ kind: 'restarting', delayMs: decision.delayMs, failures: decision.failures, restarts });
    setState('restarting', outage);
    cancelRestart = schedule(() => {
      cancelRestart = undefined;
      relaunching = relaunch().finally(() => {
        relaunching = undefined;
      });
    }, decision.delayMs);
  };

  const relaunch = async (): Promise<void> => {
    let file: UpstreamModelFile | undefined;
    // Moved into the child's folder, or never used: no plaintext stays under the old name.
    const discard = async (): Promise<void> => {
      const path = file?.path;
      file = undefined;
      if (path !== undefined) await rm(path, { force: true }).catch(() => undefined);
    };
    try {
      file = await reload!(closing.signal);
      if (isClosed()) {
        await discard();
        return;
      }
      if (file.sha256 !== model.sha256) {
        const sha256 = file.sha256;
        await discard();
        giveUp(
          new TresorError(
            'MODEL_LOAD_FAILED',
            `model ${model.id}: the model decrypted for the restart has digest ${sha256}, not the ${model.sha256} this replica attested; it is not served`,
            { details: { model: model.id, sha256 } },
          ),
          policy.failures + 1,
        );
        return;
      }
      const child = await launch(file, closing.signal);
      await discard();
      if (isClosed()) {
        await child.http.close();
        await child.stop();
        return;
      }
      restarts++;
      current = child;
      outage = undefined;
      policy.serving();
      emit({ kind: 'restarted', restarts });
      setState('serving', undefined);
      watch(child);
    } catch (err) {
      await discard();
      if (isClosed()) return;
      const code = isTresorError(err) ? err.code : 'INTERNAL_ERROR';
      emit({ kind: 'restart-failed', code, failures: policy.failures + 1 });
      decide(`could not be restarted (${code})`);
    }
  };

  const probe = async (child: UpstreamChild): Promise<void> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      const models = await Promise.race([
        child.http.listModels(),
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => {
            reject(new Error('timeout'));
          }, health.timeoutMs);
          timer.unref();
        }),
      ]);
      if (!models.some((m) => m.id === model.id)) throw new Error('model missing');
    } finally {
      clearTimeout(timer);
    }
  };

  function watch(child: UpstreamChild): void {
    let failedProbes = 0;
    let killedFor: string | undefined;
    const next = (): void => {
      if (health.intervalMs <= 0 || closed || current !== child) return;
      cancelProbe = schedule(() => {
        cancelProbe = undefined;
        void probe(child).then(
          () => {
            failedProbes = 0;
            next();
          },
          () => {
            if (closed || current !== child) return;
            failedProbes++;
            emit({ kind: 'probe-failed', failures: failedProbes });
            if (failedProbes < health.failures) {
              next();
              return;
            }
            killedFor = `did not answer ${String(failedProbes)} health probes in a row and was killed`;
            child.kill();
          },
        );
      }, health.intervalMs);
    };
    next();
    void child.exited.then(({ code, signal }) => {
      if (closed || current !== child) return;
      cancelProbe?.();
      cancelProbe = undefined;
      current = undefined;
      void child.http.close();
      const what = killedFor ?? `exited (${describeExit(code, signal)})`;
      deaths.set(
        child,
        new TresorError('ENGINE_UNAVAILABLE', `the upstream server of model ${model.id} ${what}`),
      );
      emit({
        kind: 'exited',
        exitCode: code,
        signal,
        restarts,
        ...(killedFor === undefined ? {} : { killed: true }),
      });
      decide(what);
    });
  }
  policy.serving();
  watch(first);

  /** The child to ask now, or the reason there is none. */
  const serving = (): UpstreamChild => {
    if (failure !== undefined) throw failure;
    if (closed) throw engineClosed('openai-upstream');
    if (current === undefined) {
      throw (
        outage ??
        new TresorError('ENGINE_UNAVAILABLE', `the upstream server of model ${model.id} is restarting`)
      );
    }
    return current;
  };
  // A request cut off by the child's death reports the death, not the broken connection.
  const reported = (child: UpstreamChild, err: unknown): unknown => deaths.get(child) ?? err;
  const guard = async <T>(run: (http: Engine) => Promise<T>): Promise<T> => {
    const child = serving();
    try {
      return await run(child.http);
    } catch (err) {
      throw reported(child, err);
    }
  };
  async function* guardStream(
    run: (http: Engine) => AsyncIterable<GenerationEvent>,
  ): AsyncGenerator<GenerationEvent> {
    const child = serving();
    try {
      yield* run(child.http);
    } catch (err) {
      throw reported(child, err);
    }
  }

  return {
    kind: 'openai-upstream',
    failure: () => failure,
    onFailure(listener) {
      if (failure !== undefined) listener(failure);
      else failureListeners.push(listener);
    },
    state: () => state,
    unavailable: () => failure ?? outage,
    restarts: () => restarts,
    onStateChange(listener) {
      stateListeners.push(listener);
      if (state !== 'serving') listener(state, failure ?? outage);
    },
    listModels: () =>
      guard(async (http) =>
        (await http.listModels()).map((m): EngineModel =>
          m.id === model.id ? { ...m, sha256: model.sha256 } : m,
        ),
      ),
    chat: (request: ChatRequest) => guardStream((http) => http.chat(request)),
    complete: (request: CompletionRequest) => guardStream((http) => http.complete(request)),
    embed: (request: EmbeddingRequest) => guard((http) => http.embed(request)),
    countTokens: (id: string, text: string) => guard((http) => http.countTokens(id, text)),
    async close() {
      if (closed) return;
      closed = true;
      closing.abort();
      cancelRestart?.();
      cancelProbe?.();
      await relaunching?.catch(() => undefined);
      const child = current;
      current = undefined;
      if (child !== undefined) {
        await child.http.close();
        await child.stop();
      }
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
