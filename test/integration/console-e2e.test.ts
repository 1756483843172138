import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page, type Request } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The web console in a real browser (Debian's chromium, headless) against the real `tresor up`
 * (sample TEE, demo model), served by the real `tresor console`. The page verifies the gateway and
 * encrypts in the browser; the network capture proves nothing readable crosses the wire. Screenshots
 * go to test-results/console/ (gitignored) — look at them.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TRESOR = join(ROOT, 'apps/cli/bin/tresor.js');
const SHOTS = join(ROOT, 'test-results/console');
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const PROMPT = `console-canary-${Math.random().toString(36).slice(2)} tell me about Tresor`;

let work = '';
let stateDir: string;
let up: ChildProcess | undefined;
let consoleServer: ChildProcess | undefined;
const exits: Promise<unknown>[] = [];
let consoleOutput = '';
let consoleUrl: string;
let local: Record<string, string>;
let browser: Browser | undefined;

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => {
        resolvePort(port);
      });
    });
  });
}

async function portsFree(ports: number[]): Promise<boolean> {
  for (const port of ports) {
    const free = await new Promise<boolean>((resolveFree) => {
      const server = createServer();
      server.once('error', () => {
        resolveFree(false);
      });
      server.listen(port, '127.0.0.1', () =>
        server.close(() => {
          resolveFree(true);
        }),
      );
    });
    if (!free) return false;
  }
  return true;
}

/** Starts a `tresor` child and resolves when its output contains `ready` (rejects if it exits first). */
function start(args: string[], ready: string, onOutput: (text: string) => void): Promise<ChildProcess> {
  const child = spawn(process.execPath, [TRESOR, ...args], {
    cwd: work,
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: work, TMPDIR: join(work, 'tmp') },
  });
  const exit = new Promise<number | null>((r) =>
    child.once('close', (code) => {
      r(code);
    }),
  );
  exits.push(exit);
  let output = '';
  return new Promise((resolveReady, reject) => {
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      onOutput(output);
      if (output.includes(ready)) resolveReady(child);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exit.then((code) => {
      reject(new Error(`tresor ${args[0] ?? ''} exited (${String(code)}):\n${output}`));
    });
  });
}

beforeAll(async () => {
  // The page under test is built from the sources of this checkout.
  execFileSync(
    process.execPath,
    [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'error'],
    {
      cwd: join(ROOT, 'apps/console'),
      stdio: 'pipe',
    },
  );
  await mkdir(SHOTS, { recursive: true });
  work = await mkdtemp(join(tmpdir(), 'tresor-console-e2e-'));
  stateDir = join(work, 'state');
  await mkdir(join(work, 'tmp'), { mode: 0o700 });
  let base = await freePort();
  while (base > 65530 || !(await portsFree([base, base + 1, base + 2, base + 3]))) base = await freePort();
  up = await start(['up', '--dir', stateDir, '--port', String(base)], 'Tresor is ready: ', () => undefined);
  local = JSON.parse(await readFile(join(stateDir, 'local.json'), 'utf8')) as Record<string, string>;
  consoleServer = await start(
    [
      'console',
      '--gateway',
      local.gatewayUrl!,
      '--policy',
      local.policyFile!,
      '--ca',
      local.caCertFile!,
      '--listen',
      `127.0.0.1:${String(base + 3)}`,
    ],
    'page hash ',
    (t) => (consoleOutput = t),
  );
  consoleUrl = /Tresor console: (\S+)/.exec(consoleOutput)![1]!;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: CHROMIUM_ARGS });
}, 280_000);

afterAll(async () => {
  await browser?.close();
  for (const child of [consoleServer, up]) if (child?.exitCode === null) child.kill('SIGINT');
  await Promise.all(exits);
  if (work !== '') await rm(work, { recursive: true, force: true });
});

interface Captured {
  readonly method: string;
  readonly path: string;
  readonly requestType: string;
  readonly requestBody: Buffer;
  readonly requestHeaders: Record<string, string>;
  responseType: string;
  responseBody: Buffer;
}

/** Every request of the page with its body and its answer's body (Playwright's network events). */
function capture(page: Page): { all: Captured[]; settled: () => Promise<void> } {
  const all: Captured[] = [];
  const pending: Promise<void>[] = [];
  page.on('request', (request: Request) => {
    const headers = request.headers();
    const entry: Captured = {
      method: request.method(),
      path: new URL(request.url()).pathname,
      requestType: headers['content-type'] ?? '',
      requestBody: request.postDataBuffer() ?? Buffer.alloc(0),
      requestHeaders: headers,
      responseType: '',
      responseBody: Buffer.alloc(0),
    };
    all.push(entry);
    pending.push(
      request
        .response()
        .then(async (response) => {
          if (response === null) return;
          entry.responseType = response.headers()['content-type'] ?? '';
          entry.responseBody = await response.body().catch(() => Buffer.alloc(0));
        })
        .catch(() => undefined),
    );
  });
  return {
    all,
    settled: async () => {
      await Promise.all(pending);
    },
  };
}

function newPage(): Promise<Page> {
  if (browser === undefined) throw new Error('chromium did not start');
  return browser.newPage({ viewport: { width: 1280, height: 800 } });
}

async function openConsole(page: Page): Promise<void> {
  await page.goto(consoleUrl);
  await page.waitForSelector('[data-testid=trust-pill]:not(:has-text("verifying"))', { timeout: 60_000 });
  await page.waitForFunction(
    () => !(document.querySelector('[data-testid=trust-pill]')?.textContent ?? '').includes('not verified'),
  );
}

/** Sends one chat message from the page and returns the streamed answer. */
async function chat(
  page: Page,
  apiKey: string,
  prompt: string,
): Promise<{ text: string; state: string | null }> {
  await page.getByTestId('tab-chat').click();
  await page.getByTestId('api-key').fill(apiKey);
  await page.waitForSelector('[data-testid=model] option[value="tresor-demo"]', {
    state: 'attached',
    timeout: 60_000,
  });
  await page.getByTestId('max-tokens').fill('8');
  const before = await page.locator('li[data-role=assistant]').count();
  await page.getByTestId('prompt').fill(prompt);
  await page.getByTestId('send').click();
  const answer = page.locator('li[data-role=assistant]').nth(before);
  await answer
    .locator('xpath=self::*[@data-state="done" or @data-state="error"]')
    .waitFor({ timeout: 180_000 });
  return {
    text: (await answer.locator('.turn-text').textContent()) ?? '',
    state: await answer.getAttribute('data-state'),
  };
}

const STATIC =
  /^\/(|index\.html|console-config\.json|console-manifest\.json|favicon\.ico|assets\/[A-Za-z0-9._-]+)$/;
const ATTESTATION = /^\/\.well-known\/(tresor\/attestation|ohttp-gateway)$/;

describe('web console against tresor up', () => {
  it('trust panel: every check passes, the sample-TEE banner shows, the footer shows the served page hash', async () => {
    const page = await newPage();
    await openConsole(page);
    await page.getByTestId('tab-trust').click();
    await expect(page.getByTestId('verdict').textContent()).resolves.toMatch(/^Verified: \d+ checks passed/);
    expect(await page.locator('.check[data-status=fail]').count()).toBe(0);
    expect(await page.locator('.check[data-status=pass]').count()).toBeGreaterThan(20);
    expect(
      await page.locator('section.group').evaluateAll((s) => s.map((e) => e.getAttribute('data-group'))),
    ).toEqual(expect.arrayContaining(['gateway', 'trust', 'serving', 'gpu']));
    await expect(page.getByTestId('sample-banner').isVisible()).resolves.toBe(true);
    const served = /page hash ([0-9a-f]{64})/.exec(consoleOutput)![1]!;
    await expect(page.getByTestId('page-hash').textContent()).resolves.toBe(served);
    await page.screenshot({ path: join(SHOTS, 'trust.png') });
    await page.screenshot({ path: join(SHOTS, 'trust-full.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(SHOTS, 'trust-phone.png') });
    await page.close();
  });

  it('chat round trip in the page; the wire carries no readable prompt, answer or API key', async () => {
    const page = await newPage();
    const net = capture(page);
    await openConsole(page);
    const answer = await chat(page, local.apiKey!, PROMPT);
    expect(answer.state).toBe('done');
    expect(answer.text.length).toBeGreaterThan(0);
    await page.screenshot({ path: join(SHOTS, 'chat.png') });
    await net.settled();
    // What must never cross the wire readable: the prompt, the API key, the answer, and the shape of
    // an OpenAI request (outside the page's own code, which of course names its endpoints).
    const answerText = answer.text.trim();
    const secrets = [PROMPT, local.apiKey!, ...(answerText.length >= 8 ? [answerText.slice(0, 16)] : [])];
    const markers = ['"messages"', 'chat/completions', 'Bearer ', 'authorization'];
    const ohttp = net.all.filter((c) => c.path === '/v1/ohttp');
    expect(ohttp.length).toBeGreaterThanOrEqual(2); // models list + the chat
    for (const c of net.all) {
      const isStatic = STATIC.test(c.path);
      // Only the page's own files, attestation evidence and OHTTP: nothing else leaves the page.
      expect(isStatic || ATTESTATION.test(c.path) || c.path === '/v1/ohttp', c.path).toBe(true);
      if (isStatic || ATTESTATION.test(c.path)) expect([c.method, c.requestBody.length]).toEqual(['GET', 0]);
      const wire = Buffer.concat([
        c.requestBody,
        c.responseBody,
        Buffer.from(JSON.stringify(c.requestHeaders)),
      ]);
      expect(wire.includes(Buffer.from(PROMPT)), `the prompt in ${c.path}`).toBe(false);
      expect(wire.includes(Buffer.from(local.apiKey!)), `the API key in ${c.path}`).toBe(false);
      if (isStatic) continue;
      for (const secret of [...secrets, ...markers])
        expect(wire.includes(Buffer.from(secret)), `${secret} in ${c.path}`).toBe(false);
    }
    for (const c of ohttp) {
      expect(c.method).toBe('POST');
      expect(c.requestType).toMatch(/^message\/ohttp-(chunked-)?req$/);
      expect(c.responseType).toMatch(/^message\/ohttp-(chunked-)?res$/);
      expect(c.requestBody.length).toBeGreaterThan(0);
      expect(c.responseBody.length).toBeGreaterThan(0);
    }
    await page.close();
  });

  it('stop button: aborts a streaming answer, which stays marked as stopped', async () => {
    const page = await newPage();
    await openConsole(page);
    await page.getByTestId('tab-chat').click();
    await page.getByTestId('api-key').fill(local.apiKey!);
    await page.waitForSelector('[data-testid=model] option[value="tresor-demo"]', {
      state: 'attached',
      timeout: 60_000,
    });
    await page.getByTestId('max-tokens').fill('2000');
    await page.getByTestId('prompt').fill('Tell me a very long story.');
    await page.getByTestId('send').click();
    const answer = page.locator('li[data-role=assistant]').last();
    // Stop once the first words streamed in, long before 2000 tokens.
    await page.waitForFunction(
      () => (document.querySelector('li[data-role=assistant] .turn-text')?.textContent ?? '').length > 0,
      undefined,
      { timeout: 120_000 },
    );
    await page.getByTestId('stop').click();
    await answer.locator('xpath=self::*[@data-state="stopped"]').waitFor({ timeout: 30_000 });
    await expect(page.getByTestId('stop').isDisabled()).resolves.toBe(true);
    expect(await page.getByTestId('chat-error').count()).toBe(0);
    await page.close();
  });

  it('evidence made invalid on its way to the page: it refuses to send and names the failed check', async () => {
    const page = await newPage();
    const net = capture(page);
    // The gateway's runtime data is changed after its TEE signed it: the key binding no longer holds.
    await page.route('**/.well-known/tresor/attestation*', async (route) => {
      const response = await route.fetch();
      const bundle = (await response.json()) as { gateway: { runtimeData: { tlsSpkiSha256: string } } };
      bundle.gateway.runtimeData.tlsSpkiSha256 = '00'.repeat(32);
      await route.fulfill({ response, json: bundle });
    });
    await page.goto(consoleUrl);
    await page.waitForSelector('[data-testid=trust-pill]:has-text("verification failed")', {
      timeout: 60_000,
    });
    await page.getByTestId('tab-trust').click();
    const failed = await page.getByTestId('failed-checks').textContent();
    expect(failed).toContain('report_data');
    expect(await page.locator('section.group[data-group=gateway].group-fail').count()).toBe(1);
    await page.screenshot({ path: join(SHOTS, 'refused-trust.png'), fullPage: true });
    await page.getByTestId('tab-chat').click();
    await expect(page.getByTestId('chat-refused').textContent()).resolves.toContain('report_data');
    await expect(page.getByTestId('prompt').isDisabled()).resolves.toBe(true);
    await expect(page.getByTestId('send').isDisabled()).resolves.toBe(true);
    await page.getByTestId('api-key').fill(local.apiKey!);
    await page.screenshot({ path: join(SHOTS, 'refused-chat.png') });
    await net.settled();
    expect(net.all.filter((c) => c.path === '/v1/ohttp')).toEqual([]);
    await page.close();
  });

  it('admin: creates an API key (shown once), and the usage chart shows a request made with it', async () => {
    const page = await newPage();
    await openConsole(page);
    await page.getByTestId('tab-admin').click();
    await page.getByTestId('admin-key-file').setInputFiles(join(stateDir, 'secrets/trust-admin.jwk'));
    await page.getByTestId('admin-signin').click();
    await page.getByTestId('new-key-name').fill('console-e2e');
    await page.getByTestId('create-key').click();
    const key = (await page.getByTestId('created-key-value').textContent()) ?? '';
    expect(key).toMatch(/^tr_[a-z0-9]{16}_/);
    const keyId = key.split('_')[1]!;
    await expect(page.locator(`tr[data-key-id="${keyId}"]`).textContent()).resolves.toContain('active');
    await page.screenshot({ path: join(SHOTS, 'admin-key-created.png') });

    const answer = await chat(page, key, 'Hello from a new key');
    expect(answer.state).toBe('done');
    await page.getByTestId('tab-admin').click();
    await page.getByTestId('admin-key-file').setInputFiles(join(stateDir, 'secrets/trust-admin.jwk'));
    await page.getByTestId('admin-signin').click();
    await page.getByTestId('usage').locator('select').selectOption('apiKey');
    await page.getByTestId('usage-reload').click();
    const requests = page.locator('figure.usage-chart[data-metric=requests] figcaption');
    await expect(requests.textContent()).resolves.toContain(`${keyId} 1`);
    expect(await page.locator('figure.usage-chart canvas').count()).toBe(4);
    await page.locator('figure.usage-chart').first().scrollIntoViewIfNeeded();
    await page.getByTestId('usage').screenshot({ path: join(SHOTS, 'admin-usage.png') });
    await page.screenshot({ path: join(SHOTS, 'admin-full.png'), fullPage: true });
    await page.close();
  });
});
