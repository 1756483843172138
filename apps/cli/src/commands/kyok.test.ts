import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureIo } from '../../../../test/support/cli-io.js';
import { run } from '../index.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tresor-cli-kyok-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

const tresor = async (args: string[]) => {
  const io = captureIo({}, new Date('2025-06-01T12:00:00Z'));
  const code = await run(args, { ...io, cwd: dir });
  return { code, out: io.out(), err: io.err() };
};

describe('tresor kyok revoke | reinstate | status', () => {
  it("records the customer's revocation in the state directory and lifts it again", async () => {
    const state = ['--state-dir', 'state', '--tenant', 'acme'];
    expect((await tresor(['kyok', 'status', ...state])).out).toBe('tenant acme: active\n');
    const revoked = await tresor(['kyok', 'revoke', ...state]);
    expect(revoked).toMatchObject({ code: 0, err: '' });
    expect(revoked.out).toBe('revoked: tenant acme; Tresor stops releasing its keys within 1 s\n');
    expect((await tresor(['kyok', 'revoke', ...state])).out).toMatch(/^already revoked/);
    expect((await tresor(['kyok', 'status', ...state])).out).toBe(
      'tenant acme: revoked since 2025-06-01T12:00:00.000Z\n',
    );
    const file = join(dir, 'state/revocations.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ revoked: { acme: '2025-06-01T12:00:00.000Z' } });
    expect((await tresor(['kyok', 'reinstate', ...state])).out).toBe('reinstated: tenant acme\n');
    expect((await tresor(['kyok', 'status', ...state])).out).toBe('tenant acme: active\n');
  });

  it('refuses bad tenant ids and missing options with USAGE_INVALID (exit 2)', async () => {
    for (const args of [
      ['kyok', 'revoke', '--state-dir', 'state', '--tenant', '../etc'],
      ['kyok', 'revoke', '--state-dir', 'state'],
      ['kyok', 'serve'],
    ]) {
      const r = await tresor(args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(/^error USAGE_INVALID: [^\n]+\nfix: [^\n]+\n$/);
    }
  });

  it('refuses an unreadable server config with exit 2', async () => {
    const r = await tresor(['kyok', 'serve', '--config', 'missing.json']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^error INPUT_UNREADABLE: /);
  });
});
