/**
 * TEST-ONLY: a serving replica in its own process, so a test can kill it with SIGKILL. Run with tsx
 * against the built workspaces: `tsx serving-child.ts <config.json>`. The echo engine waits
 * `interTokenDelayMs` (from the config file's `testInterTokenDelayMs`) between tokens, so a stream
 * is still running when the test kills the process. Prints `{"url": …}` once ready.
 */
import { readFile } from 'node:fs/promises';
import { createEchoEngine, parseServingConfig, startServingService } from '@tresor/serving';

const file = process.argv[2];
if (file === undefined) throw new Error('usage: serving-child.ts <config.json>');
const { testInterTokenDelayMs, ...config } = JSON.parse(await readFile(file, 'utf8')) as {
  testInterTokenDelayMs: number;
} & Record<string, unknown>;
const service = await startServingService(parseServingConfig(config), {
  engineFactory: (models) =>
    Promise.resolve(
      createEchoEngine({
        models: models.map((m) => ({ id: m.id })),
        interTokenDelayMs: testInterTokenDelayMs,
      }),
    ),
});
await service.ready;
process.stdout.write(`${JSON.stringify({ url: service.url, pid: process.pid })}\n`);
