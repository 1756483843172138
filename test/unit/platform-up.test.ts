import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { run } from '../../apps/cli/src/program.js';
import { upCommands } from '../../apps/cli/src/commands/up.js';
import { renderReady } from '../../apps/cli/src/platform/platform.js';
import { stateLayout } from '../../apps/cli/src/platform/layout.js';
import { captureIo } from '../support/cli-io.js';

// `tresor up` refuses bad input before it creates or starts anything. (The full start is the
// integration test test/integration/platform-e2e.test.ts.)

let dir: string;
let blocker: Server | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-up-'));
});

afterEach(async () => {
  await new Promise((r) => {
    if (blocker === undefined) r(undefined);
    else blocker.close(r);
  });
  blocker = undefined;
  await rm(dir, { recursive: true, force: true });
});

function io() {
  return { ...captureIo(), cwd: dir };
}

describe('tresor up', () => {
  it.each([
    ['a port that is not a number', ['--port', 'abc']],
    ['port 0', ['--port', '0']],
    ['a port whose neighbours do not exist', ['--port', '65534']],
    ['a model id with a slash', ['--model', '../x']],
    ['a model id with spaces', ['--model', 'my model']],
    ['an unknown option', ['--ports', '9000']],
  ])('refuses %s with a usage error (exit 2) and creates nothing', async (_what, args) => {
    const cli = io();
    const code = await run(['up', '--dir', 'state', ...args], cli, [upCommands]);
    expect(code).toBe(2);
    expect(cli.err()).toMatch(/^error USAGE_INVALID: /);
    expect(cli.err()).toMatch(/\nfix: /);
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });

  it('refuses a busy port with PORT_IN_USE (exit 2) before it creates anything', async () => {
    blocker = createServer();
    await new Promise<void>((r) => blocker!.listen(0, '127.0.0.1', r));
    const address = blocker.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const cli = io();
    const code = await run(['up', '--dir', 'state', '--port', String(port)], cli, [upCommands]);
    expect(code).toBe(2);
    expect(cli.err()).toContain('error PORT_IN_USE: ');
    expect(cli.err()).toContain('--port');
    expect(existsSync(join(dir, 'state'))).toBe(false);
  });

  it('documents its options', async () => {
    const cli = io();
    expect(await run(['up', '--help'], cli, [upCommands])).toBe(0);
    for (const option of ['--dir', '--port', '--model', 'Tresor is ready', 'local.json']) {
      expect(cli.out()).toContain(option);
    }
  });

  it('prints the facts, copy-paste commands and the ready line last', () => {
    const layout = stateLayout('.tresor', dir);
    const text = renderReady(
      {
        gatewayUrl: 'https://127.0.0.1:8444',
        trustUrl: 'https://127.0.0.1:8445',
        apiKey: 'tr_example',
        caCertFile: join(dir, '.tresor/tls/ca.pem'),
        policyFile: join(dir, '.tresor/tresor-policy.json'),
        model: 'tresor-demo',
      },
      layout,
      dir,
      '3.2 s',
    );
    const lines = text.trimEnd().split('\n');
    expect(lines.at(-1)).toBe('Tresor is ready: https://127.0.0.1:8444');
    expect(text).toContain(
      'npx tresor chat https://127.0.0.1:8444 --model tresor-demo --policy .tresor/tresor-policy.json --ca .tresor/tls/ca.pem',
    );
    expect(text).toContain('npx tresor proxy --upstream https://127.0.0.1:8444');
    expect(text).toContain('npx tresor verify https://127.0.0.1:8444');
    expect(text).toContain('new OpenAI(');
    expect(text).toContain('curl -s http://127.0.0.1:8080/v1/chat/completions');
    expect(text).toContain('API key   tr_example');
  });
});
