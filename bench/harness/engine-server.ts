/**
 * The "direct" baseline backend, run as its own process by the end-to-end benchmark: the engine
 * behind the plain-HTTP OpenAI-compatible server of test/support (the same mapping serving uses).
 *
 *   tsx bench/harness/engine-server.ts fast <model-id> <response-tokens>
 *   tsx bench/harness/engine-server.ts llama <model-id> <gguf-file> <threads>
 *
 * Prints `READY <url>` once it listens (on a port of the kernel's choice, 127.0.0.1).
 */
import { createEchoEngine, createLlamaEngine, type Engine } from '@tresor/serving';
import { startOpenAiCompatibleServer } from '../../test/support/openai-compatible-server.js';

async function main(): Promise<void> {
  const [kind, modelId, arg3, arg4] = process.argv.slice(2);
  if (modelId === undefined || arg3 === undefined) {
    throw new Error('usage: engine-server.ts fast|llama <model-id> <tokens | gguf-file threads>');
  }
  let engine: Engine;
  if (kind === 'fast') {
    engine = createEchoEngine({ models: [{ id: modelId }], responseTokens: Number(arg3) });
  } else if (kind === 'llama') {
    engine = await createLlamaEngine({ models: [{ id: modelId, path: arg3 }], threads: Number(arg4 ?? '2') });
  } else {
    throw new Error(`unknown engine ${String(kind)}`);
  }
  const server = await startOpenAiCompatibleServer(engine);
  process.stdout.write(`READY ${server.url}\n`);
  const stop = (): void => {
    void server.close().then(async () => {
      await engine.close();
      process.exit(0);
    });
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

main().catch((err: unknown) => {
  process.stderr.write(`engine-server failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
