import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { captureIo } from '../../../../test/support/cli-io.js';
import {
  createSampleGateway,
  MODEL_ID,
  type SampleGatewayOptions,
} from '../../../../test/support/sdk-sample-gateway.js';
import { serveHandler } from '../../../../test/support/sdk-serve.js';
import { run } from '../index.js';

/**
 * The interactive `tresor chat` (no prompt argument) driven through its stdin, against the sample
 * gateway served on loopback HTTP (a real HTTP server and the real Node transport; the TLS key
 * check reads "not-observable" over http://, which the policy accepts).
 */

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  process.exitCode = undefined;
});

const ANSWER = 'Grüezi from the enclave';

async function repl(options: SampleGatewayOptions = {}) {
  const gateway = await createSampleGateway(options);
  const server = await serveHandler(gateway.handle);
  const dir = await mkdtemp(join(tmpdir(), 'tresor-chat-'));
  cleanups.push(
    () => server.close(),
    () => rm(dir, { recursive: true, force: true }),
  );
  const policyFile = join(dir, 'tresor-policy.json');
  await writeFile(policyFile, JSON.stringify(gateway.policy));
  const stdin = new PassThrough();
  const io = { ...captureIo({ TRESOR_API_KEY: 'tr-chat-key' }, new Date()), stdin };
  const args = ['chat', server.url, '--model', MODEL_ID, '--policy', policyFile];
  /** Resolves once stdout shows `count` prompts (`> `): the REPL waits for the next line. */
  const prompts = async (count: number): Promise<void> => {
    while (io.out().split('> ').length - 1 < count) await new Promise((r) => setImmediate(r));
  };
  const chats = () =>
    gateway.innerBodies
      .map((b) => JSON.parse(b) as { messages: { role: string; content: string }[]; stream: boolean })
      .filter((b) => Array.isArray(b.messages));
  return { gateway, server, io, stdin, args, prompts, chats };
}

async function exitOf(pending: Promise<number>): Promise<number> {
  const code = await pending;
  const exit = code === 0 && process.exitCode === 1 ? 1 : code;
  process.exitCode = undefined;
  return exit;
}

describe('tresor chat (interactive)', () => {
  it('two turns, the second sending the first as context, then /exit: exit 0', async () => {
    const r = await repl();
    const done = run(r.args, r.io);
    await r.prompts(1);
    expect(r.io.out()).toMatch(/^verified http:\/\/localhost:\d+; type a message; \/exit/);
    r.stdin.write('Hoi zäme\n');
    await r.prompts(2);
    r.stdin.write('and again?\n');
    await r.prompts(3);
    r.stdin.write('/exit\n');
    expect(await exitOf(done)).toBe(0);
    const turns = r.chats();
    expect(turns).toHaveLength(2);
    expect(turns[0]?.messages).toEqual([{ role: 'user', content: 'Hoi zäme' }]);
    expect(turns[1]?.messages).toEqual([
      { role: 'user', content: 'Hoi zäme' },
      { role: 'assistant', content: ANSWER },
      { role: 'user', content: 'and again?' },
    ]);
    expect(turns.every((t) => t.stream)).toBe(true);
    expect(r.io.out().split(ANSWER)).toHaveLength(3);
    expect(r.io.out().endsWith('> \n')).toBe(true);
    expect(r.io.err()).toMatch(/^INSECURE/);
    expect(r.gateway.innerAuthorizations).toEqual(['Bearer tr-chat-key', 'Bearer tr-chat-key']);
  });

  it('Ctrl-D (end of input) after a turn ends cleanly: exit 0, nothing more sent', async () => {
    const r = await repl();
    const done = run(r.args, r.io);
    await r.prompts(1);
    r.stdin.write('one line\n');
    await r.prompts(2);
    r.stdin.end();
    expect(await exitOf(done)).toBe(0);
    expect(r.chats()).toHaveLength(1);
    expect(r.io.out().endsWith('> \n')).toBe(true);
  });

  it('Ctrl-D before any line, or an empty line, ends without sending anything', async () => {
    for (const input of [null, '\n', '  \n', '/exit\nnever sent\n']) {
      const r = await repl();
      const done = run(r.args, r.io);
      await r.prompts(1);
      if (input === null) r.stdin.end();
      else r.stdin.write(input);
      expect(await exitOf(done)).toBe(0);
      expect(r.chats()).toHaveLength(0);
    }
  });

  it('a gateway gone between turns: exit 1, GATEWAY_UNREACHABLE and its fix on stderr', async () => {
    const r = await repl();
    const done = run(r.args, r.io);
    await r.prompts(1);
    r.stdin.write('first\n');
    await r.prompts(2);
    await r.server.close();
    r.stdin.write('second\n');
    expect(await exitOf(done)).toBe(1);
    expect(r.io.err()).toMatch(/GATEWAY_UNREACHABLE/);
    expect(r.io.err()).toMatch(/there is no answer/);
    expect(r.chats()).toHaveLength(1);
  });

  it('a failed verification reads no line and sends nothing: exit 1', async () => {
    const r = await repl({ machineJurisdiction: 'US' });
    r.stdin.write('never sent\n');
    expect(await exitOf(run(r.args, r.io))).toBe(1);
    expect(r.io.err()).toMatch(/RESIDENCY_VIOLATION/);
    expect(r.io.out()).not.toContain('> ');
    expect(r.gateway.calls).not.toContain('/v1/ohttp');
  });

  it('refuses to start without an API key (exit 1), before reading a line', async () => {
    const r = await repl();
    const io = { ...captureIo({}, new Date()), stdin: r.stdin };
    r.stdin.write('never sent\n');
    expect(await exitOf(run(r.args, io))).toBe(1);
    expect(io.err()).toMatch(/API_KEY_MISSING/);
    expect(r.gateway.calls).toHaveLength(0);
  });
});
