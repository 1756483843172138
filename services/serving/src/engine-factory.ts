import { open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { TresorError } from '@tresor/protocol';
import type { ServingEngineConfig } from './config.js';
import type { Engine } from './engine/engine.js';
import { createEchoEngine } from './engines/echo-engine.js';
import { createLlamaEngine } from './engines/llama-engine.js';
import { createOpenAiUpstreamEngine } from './engines/openai-upstream-engine.js';
import {
  checkUpstreamCommand,
  startUpstreamProcess,
  type UpstreamEvent,
} from './engines/upstream-process.js';

/** A decrypted model handed to an engine. */
export interface EngineModelFile {
  readonly id: string;
  readonly path: string;
  readonly sha256: string;
}

/** What the replica offers an engine beyond the decrypted files. */
export interface EngineFactoryContext {
  /**
   * Decrypts one model again into the private work folder, after the same checks as at start
   * (key release by the trust service, reference values): how a supervised engine gets the
   * plaintext back to restart its process. The caller owns (and must delete) the file.
   */
  readonly reloadModel?: (id: string, signal: AbortSignal) => Promise<EngineModelFile>;
  /** Supervisor events of a started upstream (logged and counted by the replica). */
  readonly onUpstreamEvent?: (event: UpstreamEvent) => void;
}

/**
 * Builds the engine once the models are decrypted. The plaintext files are deleted as soon as
 * this resolves (see docs/serving.md, "Plaintext lifetime"), so an engine must have read or
 * mapped them by then.
 */
export type EngineFactory = (
  models: readonly EngineModelFile[],
  config: ServingEngineConfig,
  context?: EngineFactoryContext,
) => Promise<Engine>;

/** Reads a file once, start to end, in 4 MiB pieces (what loading it costs, without keeping it). */
export async function readThrough(path: string): Promise<number> {
  const handle = await open(path, 'r');
  try {
    const buffer = new Uint8Array(4 * 1024 * 1024);
    let total = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return total;
      total += bytesRead;
    }
  } finally {
    await handle.close();
  }
}

/** The engines this build wires by configuration. */
export const defaultEngineFactory: EngineFactory = async (models, config, context = {}) => {
  switch (config.kind) {
    case 'echo':
      // The echo engine has no weights; "loading" reads each file once, so start-up costs what
      // a real engine's first read would (bench/serving.ts measures exactly that).
      for (const model of models) await readThrough(model.path);
      return createEchoEngine({
        ...(models.length === 0 ? {} : { models: models.map((m) => ({ id: m.id })) }),
        ...(config.responseTokens === undefined ? {} : { responseTokens: config.responseTokens }),
      });
    case 'llama':
      // node-llama-cpp maps the GGUF (mmap): once loaded, the file's name can go; the mapping
      // keeps the pages until the model is freed.
      return createLlamaEngine({
        // The unseal hashed exactly these bytes while decrypting them.
        models: models.map((m) => ({ id: m.id, path: m.path, sha256: m.sha256, sha256Verified: true })),
        ...(config.threads === undefined ? {} : { threads: config.threads }),
      });
    case 'openai-upstream': {
      if (config.command !== undefined) {
        // The replica starts the upstream itself on the decrypted model (engines/upstream-process.ts).
        const [model, ...others] = models;
        if (model === undefined || others.length > 0) {
          throw new TresorError(
            'CONFIG_INVALID',
            `engine.command starts one upstream server for one sealed model; this replica has ${String(models.length)} (run one replica per model)`,
          );
        }
        checkUpstreamCommand(config.command);
        const { reloadModel, onUpstreamEvent } = context;
        const { restart } = config;
        return startUpstreamProcess({
          command: config.command,
          model,
          workDir: dirname(model.path),
          modelFileName: config.modelFileName,
          keepModelFile: config.keepModelFile,
          readyTimeoutMs: config.readyTimeoutSeconds * 1000,
          ...(config.env === undefined ? {} : { env: config.env }),
          // A dead child is started again on a fresh decryption (0 restarts: it fails for good).
          ...(reloadModel === undefined || restart.maxRapidRestarts === 0
            ? {}
            : { reload: (signal: AbortSignal) => reloadModel(model.id, signal) }),
          restart: {
            initialDelayMs: restart.initialDelayMs,
            maxDelayMs: restart.maxDelayMs,
            stableAfterMs: restart.stableAfterSeconds * 1000,
            maxRapidRestarts: restart.maxRapidRestarts,
          },
          health: {
            intervalMs: restart.healthIntervalSeconds * 1000,
            timeoutMs: restart.healthTimeoutSeconds * 1000,
            failures: restart.healthFailures,
          },
          ...(onUpstreamEvent === undefined ? {} : { onEvent: onUpstreamEvent }),
        });
      }
      // An upstream already running loads its own weights; sealed models need engine.command.
      if (models.length > 0) {
        throw new TresorError(
          'CONFIG_INVALID',
          'an openai-upstream engine given by url or socketPath loads its own models; to serve sealed models, give engine.command so the replica starts the upstream on the decrypted model',
        );
      }
      return createOpenAiUpstreamEngine(
        config.url === undefined ? { socketPath: config.socketPath ?? '' } : { baseUrl: config.url },
      );
    }
  }
};
