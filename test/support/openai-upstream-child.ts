/**
 * TEST-ONLY: an OpenAI-compatible server in its own process — our llama engine behind the minimal
 * server of openai-compatible-server.ts — started by the serving replica as its upstream command
 * in place of vLLM (which needs a GPU). Run with `node --import tsx` against the built workspaces:
 *
 *   openai-upstream-child.ts <model.gguf> <model id> (--port <n> | --socket <path>)
 *
 * It loads the model first and only then listens, as vLLM does, and exits on SIGTERM. With
 * TRESOR_TEST_PID_FILE set it first writes its pid there (so a test can kill it, or see it never ran).
 */
import { writeFileSync } from 'node:fs';
import { createLlamaEngine } from '@tresor/serving';
import { startOpenAiCompatibleServer } from './openai-compatible-server.js';

const [path, id, flag, address] = process.argv.slice(2);
if (
  path === undefined ||
  id === undefined ||
  address === undefined ||
  (flag !== '--port' && flag !== '--socket')
) {
  process.stderr.write(
    'usage: openai-upstream-child.ts <model.gguf> <model id> (--port <n> | --socket <path>)\n',
  );
  process.exit(2);
}
const pidFile = process.env.TRESOR_TEST_PID_FILE;
if (pidFile !== undefined) writeFileSync(pidFile, String(process.pid));
const engine = await createLlamaEngine({ models: [{ id, path }], threads: 1 });
const server = await startOpenAiCompatibleServer(
  engine,
  flag === '--port' ? { port: Number(address) } : { socketPath: address },
);
process.stdout.write(`serving ${id} at ${server.url}\n`);
// Like vLLM, it holds nothing worth flushing: SIGTERM ends it at once (the OS frees the model).
process.once('SIGTERM', () => process.exit(0));
