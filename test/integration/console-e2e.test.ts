import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page, type Request, type Route } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The web console in a real browser (Debian's chromium, headless) against the real `tresor up`
 * (sample TEE, demo model): served by the gateway at /console/ (opened with the link `tresor up`
 * prints, which carries the trust policy), and once by the real `tresor console` standalone. The
 * page verifies the gateway and encrypts in the browser; the network capture proves nothing
 * readable crosses the wire. Screenshots go to test-results/console/ (gitignored) — look at them.
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
/** The console served by the gateway of `tresor up`: the link it printed (policy in the fragment). */
let consoleUrl: string;
/** The console served by `tresor console` (plain HTTP on loopback, relaying to the gateway). */
let standaloneUrl: string;
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
  standaloneUrl = /Tresor console: (\S+)/.exec(consoleOutput)![1]!;
  consoleUrl = local.consoleUrl!;
  // The browser trusts exactly the gateway's TLS key (the local CA is not in its store).
  const gatewayCert = new X509Certificate(await readFile(join(stateDir, 'tls/gateway.pem')));
  const spki = gatewayCert.publicKey.export({ type: 'spki', format: 'der' });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      ...CHROMIUM_ARGS,
      `--ignore-certificate-errors-spki-list=${createHash('sha256').update(spki).digest('base64')}`,
    ],
  });
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
      // A body Chromium never hands over (a cached or aborted response) must not hang the test:
      // after a bound, the entries still waiting are named and keep an empty body, which the
      // assertions below refuse for OHTTP (a body is required there).
      let bounded: NodeJS.Timeout | undefined;
      const done = await Promise.race([
        Promise.all(pending).then(() => true),
        new Promise<boolean>(
          (r) =>
            (bounded = setTimeout(() => {
              r(false);
            }, 30_000)),
        ),
      ]);
      clearTimeout(bounded);
      if (!done) process.stderr.write(`capture: some response bodies never arrived\n`);
    },
  };
}

/**
 * Fetches what the page asked for from the gateway in Node, trusting the local CA (Playwright's
 * route.fetch would not), and answers the page with `change` applied to the body.
 */
async function fulfilChanged(route: Route, change: (body: Buffer) => Buffer | string): Promise<void> {
  const ca = await readFile(local.caCertFile!, 'utf8');
  const answer = await new Promise<{ status: number; headers: Record<string, string>; body: Buffer }>(
    (resolveAnswer, reject) => {
      const req = httpsRequest(
        route.request().url(),
        { method: 'GET', ca, minVersion: 'TLSv1.3', headers: { accept: '*/*' } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const headers: Record<string, string> = {};
            for (const [k, v] of Object.entries(res.headers))
              if (typeof v === 'string' && k !== 'content-length' && k !== 'etag') headers[k] = v;
            resolveAnswer({ status: res.statusCode ?? 0, headers, body: Buffer.concat(chunks) });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end();
    },
  );
  await route.fulfill({ status: answer.status, headers: answer.headers, body: change(answer.body) });
}

function newPage(): Promise<Page> {
  if (browser === undefined) throw new Error('chromium did not start');
  return browser.newPage({ viewport: { width: 1280, height: 800 } });
}

async function openConsole(page: Page, url = consoleUrl): Promise<void> {
  await page.goto(url);
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
  /^\/(console\/)?(|index\.html|console-config\.json|console-manifest\.json|favicon\.ico|assets\/[A-Za-z0-9._-]+)$/;
const ATTESTATION = /^\/\.well-known\/(tresor\/attestation|ohttp-gateway)$/;

describe('web console against tresor up', () => {
  it('tresor up prints the console link, and local.json holds it', () => {
    expect(consoleUrl).toMatch(
      /^https:\/\/127\.0\.0\.1:\d+\/console\/#policy=[A-Za-z0-9_-]+&aud=tresor-local-gateway$/,
    );
    expect(new URL(consoleUrl).origin).toBe(local.gatewayUrl);
  });

  it('trust panel: every check passes, the sample-TEE banner shows, the page hash matches the signed reference values', async () => {
    const page = await newPage();
    await openConsole(page);
    // The policy came in the link's fragment; the page removed it from the address bar.
    expect(page.url()).toBe(`${local.gatewayUrl!}/console/`);
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
    const reference = page.getByTestId('footer').getByTestId('page-reference');
    await expect(reference.getAttribute('data-state')).resolves.toBe('match');
    await expect(reference.textContent()).resolves.toContain(`local-${served.slice(0, 12)}`);
    await expect(page.locator('section.group[data-group=console] .badge').textContent()).resolves.toBe(
      'PASS',
    );
    await page.screenshot({ path: join(SHOTS, 'trust.png') });
    await page.screenshot({ path: join(SHOTS, 'trust-full.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.screenshot({ path: join(SHOTS, 'trust-phone.png') });
    await page.close();
  });

  it('a page file that differs from the release: the page hash is a red mismatch', async () => {
    const page = await newPage();
    // A stylesheet changed on its way (a comment appended): the page still runs, its hash is not released.
    await page.route('**/console/assets/*.css', (route) =>
      fulfilChanged(route, (body) => `${body.toString('utf8')}\n/* changed */\n`),
    );
    await openConsole(page);
    const reference = page.getByTestId('footer').getByTestId('page-reference');
    await reference.and(page.locator('[data-state=mismatch]')).waitFor({ timeout: 30_000 });
    await expect(reference.textContent()).resolves.toContain('does NOT match');
    await page.getByTestId('tab-trust').click();
    await expect(page.locator('section.group[data-group=console].group-fail').count()).resolves.toBe(1);
    await page.close();
  });

  it('tresor console (standalone, loopback relay): the same page verifies and matches the reference values', async () => {
    const page = await newPage();
    await openConsole(page, standaloneUrl);
    await page.getByTestId('tab-trust').click();
    await expect(page.getByTestId('verdict').textContent()).resolves.toMatch(/^Verified: \d+ checks passed/);
    await expect(
      page.getByTestId('footer').getByTestId('page-reference').getAttribute('data-state'),
    ).resolves.toBe('match');
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
    }
    // Chromium does not always hand a streamed (chunked OHTTP over HTTP/2) answer's body to the
    // capture; the single-shot ones always arrive, and every body that arrived was checked above.
    expect(ohttp.some((c) => c.responseBody.length > 0)).toBe(true);
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
    await page.route('**/.well-known/tresor/attestation*', (route) =>
      fulfilChanged(route, (body) => {
        const bundle = JSON.parse(body.toString('utf8')) as {
          gateway: { runtimeData: { tlsSpkiSha256: string } };
        };
        bundle.gateway.runtimeData.tlsSpkiSha256 = '00'.repeat(32);
        return JSON.stringify(bundle);
      }),
    );
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

    // The audit panel verified the gateway's chain (which holds the key just created); the KYOK
    // panel probed the tenant key.
    const audit = page.getByTestId('audit-verdict');
    await audit.waitFor({ timeout: 30_000 });
    await expect(audit.getAttribute('data-intact')).resolves.toBe('true');
    await expect(audit.textContent()).resolves.toMatch(/Chain intact: \d+ records/);
    await expect(page.getByTestId('audit').locator('tbody tr').count()).resolves.toBeGreaterThan(0);
    await expect(page.getByTestId('audit').textContent()).resolves.toContain('api-keys.create');
    const kyok = page.getByTestId('kyok-verdict');
    await kyok.waitFor({ timeout: 30_000 });
    await expect(kyok.textContent()).resolves.toContain('reachable, no key revoked');
    await expect(
      page.getByTestId('kyok').locator('li[data-role=tenant-kek]').textContent(),
    ).resolves.toContain('enabled');
    await page.getByTestId('audit').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'admin-audit.png') });
    await page.screenshot({ path: join(SHOTS, 'admin-full.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 844 });
    await page.getByTestId('kyok').scrollIntoViewIfNeeded();
    await page.screenshot({ path: join(SHOTS, 'admin-phone.png') });
    await page.close();
  });
});
