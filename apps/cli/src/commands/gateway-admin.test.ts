import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportAdminKey, generateAdminKey } from '@tresor/trust';
import { captureIo } from '../../../../test/support/cli-io.js';
import { startGatewayFixture, type GatewayFixture } from '../../../../test/support/gateway-fixture.js';
import { run } from '../index.js';

let f: GatewayFixture;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  f = await startGatewayFixture({ replicas: 1 });
  dir = await mkdtemp(join(tmpdir(), 'tresor-gateway-cli-'));
  await writeFile(join(dir, 'admin.jwk'), JSON.stringify(await exportAdminKey(f.admin)));
  await writeFile(join(dir, 'ca.pem'), f.ca);
  await writeFile(
    join(dir, 'policy.cedar'),
    'permit(principal in Gateway::Tenant::"acme", action, resource);',
  );
  await writeFile(
    join(dir, 'bad.cedar'),
    'permit(principal, action == Gateway::Action::"delete", resource);',
  );
  const other = await generateAdminKey('intruder', 'EdDSA');
  await writeFile(join(dir, 'intruder.jwk'), JSON.stringify(await exportAdminKey(other)));
  env = {
    TRESOR_GATEWAY_URL: f.url,
    TRESOR_GATEWAY_CA: join(dir, 'ca.pem'),
    TRESOR_ADMIN_KEY: join(dir, 'admin.jwk'),
  };
}, 120_000);

afterAll(async () => {
  await f.close();
  await rm(dir, { recursive: true, force: true });
});

const cli = async (args: string[], extraEnv: Record<string, string> = {}) => {
  const io = { ...captureIo({ ...env, ...extraEnv }), now: () => new Date() };
  const code = await run(args, io);
  return { code, out: io.out(), err: io.err() };
};

describe('tresor tenant | key | usage', () => {
  it('creates a tenant, sets its policy, creates, lists and revokes a key, and exports usage', async () => {
    expect(
      (await cli(['tenant', 'create', 'acme', '--name', 'ACME AG', '--tokens-per-day', '1000'])).code,
    ).toBe(0);
    const list = await cli(['tenant', 'list']);
    expect(list.out).toContain('acme\tACME AG');
    const policy = await cli(['tenant', 'policy', 'acme', join(dir, 'policy.cedar')]);
    expect(policy.out).toMatch(/policy of acme now version 1/);
    const created = await cli([
      'key',
      'create',
      '--tenant',
      'acme',
      '--scopes',
      'chat,models',
      '--name',
      'ci',
    ]);
    expect(created.code).toBe(0);
    const token = created.out.trim();
    expect(token).toMatch(/^tr_[a-z0-9]{16}_[A-Za-z0-9_-]{43}$/);
    expect(created.err).toContain('shown once');
    const id = token.split('_')[1]!;
    const keys = await cli(['key', 'list', '--tenant', 'acme']);
    expect(keys.out).toContain(`${id}\tactive\tchat,models\tci`);
    expect(keys.out).not.toContain(token);
    expect((await cli(['key', 'revoke', id])).code).toBe(0);
    expect((await cli(['key', 'list', '--tenant', 'acme', '--json'])).out).toContain('"revokedAt": "');
    const usage = await cli(['usage', '--tenant', 'acme']);
    expect(usage.code).toBe(0);
    expect(usage.out).toContain('acme: 0 requests');
  });

  it('refuses with catalogue codes and exit codes 1 and 2', async () => {
    const noUrl = await cli(['tenant', 'list'], { TRESOR_GATEWAY_URL: '' });
    expect([noUrl.code, noUrl.err]).toEqual([2, expect.stringContaining('USAGE_INVALID')]);
    const unknownTenant = await cli(['key', 'create', '--tenant', 'nobody']);
    expect([unknownTenant.code, unknownTenant.err]).toEqual([1, expect.stringContaining('TENANT_NOT_FOUND')]);
    const badScope = await cli(['key', 'create', '--tenant', 'acme', '--scopes', 'admin']);
    expect([badScope.code, badScope.err]).toEqual([2, expect.stringContaining('USAGE_INVALID')]);
    const badPolicy = await cli(['tenant', 'policy', 'acme', join(dir, 'bad.cedar')]);
    expect([badPolicy.code, badPolicy.err]).toEqual([2, expect.stringContaining('INPUT_MALFORMED')]);
    const intruder = await cli(['tenant', 'create', 'evil'], { TRESOR_ADMIN_KEY: join(dir, 'intruder.jwk') });
    expect([intruder.code, intruder.err]).toEqual([1, expect.stringContaining('ADMIN_KEY_UNKNOWN')]);
    const badLimit = await cli(['tenant', 'create', 'x', '--requests-per-minute', '-1']);
    expect(badLimit.code).toBe(2);
    const revokeUnknown = await cli(['key', 'revoke', 'zzzzzzzzzzzzzzzz']);
    expect([revokeUnknown.code, revokeUnknown.err]).toEqual([
      1,
      expect.stringContaining('ADMIN_TARGET_NOT_FOUND'),
    ]);
  });
});
