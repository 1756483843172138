/**
 * The sdk in a real browser and the proxy under curl. Chromium comes from Debian (`chromium`,
 * installed by scripts/test-integration.sh) and is driven by playwright-core (no browser download).
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build, type Plugin } from 'esbuild';
import { chromium } from 'playwright-core';
import { afterAll, describe, expect, it } from 'vitest';
import { createNodeTransport } from '@tresor/sdk/node';
import { startProxy, type RunningProxy } from '../../apps/cli/src/commands/proxy.js';
import { createSampleGateway, MODEL_ID } from '../support/sdk-sample-gateway.js';
import { serveHandler, spkiSha256OfPem, type ServedHandler } from '../support/sdk-serve.js';
import { createTestCa, issueTestCertificate } from '../support/test-pki.js';

const CHROMIUM = '/usr/bin/chromium';
const CURL = '/usr/bin/curl';
const root = fileURLToPath(new URL('../../', import.meta.url));
const inCi = process.env.CI !== undefined;

const workspaceSources: Plugin = {
  name: 'tresor-sources',
  setup(b) {
    b.onResolve({ filter: /^@tresor\/(protocol|crypto|attestation|sdk)$/ }, (args) => ({
      path: `${root}packages/${args.path.slice('@tresor/'.length)}/src/index.ts`,
    }));
  },
};

it.runIf(inCi)('has Debian chromium and curl in CI', () => {
  expect(existsSync(CHROMIUM)).toBe(true);
  expect(existsSync(CURL)).toBe(true);
});

describe.skipIf(!existsSync(CHROMIUM))('sdk in headless Chromium', () => {
  it('runs the OHTTP round trip on the browser WebCrypto, bundled without Node polyfills', async () => {
    const bundled = await build({
      entryPoints: [`${root}packages/sdk/src/browser/browser-bundle.ts`],
      bundle: true,
      platform: 'browser',
      format: 'iife',
      globalName: 'tresorSdk',
      write: false,
      logLevel: 'silent',
      plugins: [workspaceSources],
    });
    const code = bundled.outputFiles[0]!.text;
    expect(code).not.toMatch(/["']node:/);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    try {
      const page = await browser.newPage();
      // WebCrypto's subtle API exists only in secure contexts: serve the page as http://localhost
      // (potentially trustworthy, W3C Secure Contexts §3.1) from the test itself, no network.
      await page.route('http://localhost/', (route) =>
        route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>tresor sdk</title>' }),
      );
      await page.goto('http://localhost/');
      await page.addScriptTag({ content: code });
      const result = await page.evaluate(async () => {
        const sdk = (globalThis as unknown as { tresorSdk: { ohttpRoundTrip(p: string): Promise<unknown> } })
          .tresorSdk;
        return sdk.ohttpRoundTrip('Grüezi');
      });
      expect(result).toEqual({
        request: JSON.stringify({ model: 'tiny-chat', messages: [{ role: 'user', content: 'Grüezi' }] }),
        answer: 'echo: Grüezi',
        reportData: 64,
        policyAllowsSampleTee: false,
      });
    } finally {
      await browser.close();
    }
  });
});

if (!existsSync(CHROMIUM) && !inCi) {
  console.warn(`sdk-browser: ${CHROMIUM} is absent (apt-get install chromium); the browser test is skipped`);
}

describe.skipIf(!existsSync(CURL))('curl through tresor proxy', () => {
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const c of closers.reverse()) await c();
  });

  it('answers a chat completion to plain curl, end-to-end encrypted to the gateway', async () => {
    const ca = await createTestCa('tresor-curl-ca');
    const cert = await issueTestCertificate(ca, 'localhost', 'server', '02');
    const gateway = await createSampleGateway({ tlsSpkiSha256: spkiSha256OfPem(cert.cert) });
    const server: ServedHandler = await serveHandler(gateway.handle, cert);
    closers.push(() => server.close());
    const proxy: RunningProxy = await startProxy({
      upstream: server.url,
      listen: '127.0.0.1:0',
      reverifySeconds: 3600,
      policy: gateway.policy,
      ...createNodeTransport({ ca: ca.cert.toString('pem') }),
    });
    closers.push(() => proxy.close());
    const { stdout } = await promisify(execFile)(CURL, [
      '-sS',
      '--fail-with-body',
      `${proxy.url}/v1/chat/completions`,
      '-H',
      'content-type: application/json',
      '-H',
      'authorization: Bearer tr-curl',
      '-d',
      JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }] }),
    ]);
    const completion = JSON.parse(stdout) as { choices: { message: { content: string } }[] };
    expect(completion.choices[0]?.message.content).toBe('Grüezi from the enclave');
    expect(gateway.innerAuthorizations).toEqual(['Bearer tr-curl']);
    const streamed = await promisify(execFile)(CURL, [
      '-sS',
      '-N',
      `${proxy.url}/v1/chat/completions`,
      '-H',
      'content-type: application/json',
      '-d',
      JSON.stringify({ model: MODEL_ID, messages: [{ role: 'user', content: 'hi' }], stream: true }),
    ]);
    expect(streamed.stdout).toContain('data: [DONE]');
    expect(streamed.stdout).not.toContain('tresor-receipt');
  });
});
