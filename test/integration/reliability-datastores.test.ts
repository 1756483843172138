import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '@tresor/gateway';
import { connect, type TresorClient } from '@tresor/sdk';
import { createNodeTransport } from '@tresor/sdk/node';
import {
  CLUSTER_MODEL,
  gatewayAdminCall,
  startGatewayCluster,
  trustDocumentKeys,
  type GatewayCluster,
} from '../support/gateway-cluster.js';

/**
 * Fault injection on the gateway's data stores (issue #13): PostgreSQL (metadata: tenants, keys,
 * usage) and Redis (shared rate limits and quotas) restarted while requests flow.
 *
 * Expectations: while a store is down every request either succeeds or is refused with a clean
 * catalogue code (never a hang, never a bare 500 / INTERNAL_ERROR, never an unsealed answer); once
 * it is back the gateway serves again WITHOUT being restarted (its clients reconnect); and no
 * acknowledged write is lost (every API key whose creation was answered 200 exists afterwards and
 * authenticates).
 *
 * PostgreSQL: the private cluster scripts/test-integration.sh starts, restarted with pg_ctl
 * (TRESOR_TEST_PG_DATA / TRESOR_TEST_PG_CTL). Redis: a private redis-server this test starts on a
 * free port and restarts itself (so the script's server, which other tests use, is not touched).
 */

const exec = promisify(execFile);
const PG_URL = process.env.TRESOR_TEST_PG_URL ?? '';
const PG_DATA = process.env.TRESOR_TEST_PG_DATA ?? '';
const PG_CTL = process.env.TRESOR_TEST_PG_CTL ?? '';
const HANG_GUARD_MS = 120_000;
/** Codes a request may be refused with while a store is down. */
const OUTAGE_CODES = ['STORAGE_UNAVAILABLE', 'SERVICE_NOT_READY', 'STORAGE_BUSY'];

interface Outcome {
  readonly status: number;
  readonly code: string | null;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const address = s.address();
      s.close(() => {
        resolve(typeof address === 'object' && address !== null ? address.port : 0);
      });
    });
  });
}

async function startRedis(port: number): Promise<ChildProcess> {
  const proc = spawn(
    'redis-server',
    ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no'],
    {
      stdio: 'ignore',
    },
  );
  for (let i = 0; i < 100; i++) {
    const ok = await exec('redis-cli', ['-p', String(port), 'ping']).then(
      (r) => r.stdout.trim() === 'PONG',
      () => false,
    );
    if (ok) return proc;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('redis-server did not start');
}

function stopped(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else
      proc.once('exit', () => {
        resolve();
      });
  });
}

interface Platform {
  readonly gateway: RunningGateway;
  readonly client: TresorClient;
  readonly apiKey: string;
  admin(operation: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }>;
  chat(key?: string): Promise<Outcome>;
}

async function platform(
  cluster: GatewayCluster,
  options: { databaseUrl?: string; databaseSchema?: string; redisUrl?: string },
): Promise<Platform> {
  const serving = await cluster.startServing();
  const gateway = await cluster.startGateway({ replicaUrls: [serving.url], ...options });
  const admin = (operation: string, body: unknown) =>
    gatewayAdminCall(gateway.url, cluster.gatewayCa, cluster.admin, operation, body);
  expect((await admin('tenants/create', { id: 'acme' })).status).toBe(200);
  expect(
    (
      await admin('policies/set', {
        tenant: 'acme',
        policy: 'permit(principal in Gateway::Tenant::"acme", action, resource);',
      })
    ).status,
  ).toBe(200);
  const apiKey = (await admin('api-keys/create', { tenant: 'acme' })).json.key as string;
  const client = await connect(gateway.url, {
    policy: {
      version: 1,
      trustServiceKeys: (await trustDocumentKeys(cluster.trust)).map((jwk) => ({ jwk })),
      trustSignedReferenceValues: true,
      allowSampleTee: true,
      sampleVerifyKeys: [cluster.trust.sampleKey.verifyKey.hex],
    },
    ...createNodeTransport({ ca: cluster.gatewayCa }),
  });
  return {
    gateway,
    client,
    apiKey,
    admin,
    async chat(key = apiKey) {
      const response = await client.fetch(`${client.gatewayUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: CLUSTER_MODEL, messages: [{ role: 'user', content: 'load' }] }),
      });
      const text = await response.text();
      if (response.status === 200) return { status: 200, code: null };
      const code = (JSON.parse(text) as { error?: { code?: string } }).error?.code ?? null;
      return { status: response.status, code };
    },
  };
}

/**
 * Sends requests from `workers` loops until `stop()`; `during` runs meanwhile, given a promise that
 * settles once a request was served (so the outage starts under load however slow the machine).
 * Returns every outcome, split at the moment `during` finished (the store is back).
 */
async function underLoad(
  p: Platform,
  during: (served: Promise<void>) => Promise<void>,
  options: { workers: number; afterRecovery: number },
): Promise<{ before: Outcome[]; after: Outcome[] }> {
  const before: Outcome[] = [];
  const after: Outcome[] = [];
  let recovered = false;
  let stop = false;
  let markServed = (): void => undefined;
  const served = new Promise<void>((resolve) => {
    markServed = resolve;
  });
  const worker = async (): Promise<void> => {
    while (!stop) {
      const outcome = await p.chat().catch((err: unknown) => ({
        status: -1,
        code: (err as { code?: string }).code ?? `THROWN: ${String(err)}`,
      }));
      (recovered ? after : before).push(outcome);
      if (outcome.status === 200) markServed();
      if (recovered && after.filter((o) => o.status === 200).length >= options.afterRecovery) stop = true;
    }
  };
  const guard = setTimeout(() => {
    stop = true;
    markServed(); // nothing was ever served: let `during` end, the test's checks then fail
  }, HANG_GUARD_MS);
  const workers = Array.from({ length: options.workers }, worker);
  await during(served);
  recovered = true;
  await Promise.all(workers);
  clearTimeout(guard);
  return { before, after };
}

function codeOfAdmin(json: Record<string, unknown>): string {
  const error = json.error;
  if (typeof error === 'object' && error !== null && 'code' in error) return String(error.code);
  return String(json.code);
}

function summary(outcomes: Outcome[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const o of outcomes) {
    const k = o.status === 200 ? '200' : `${o.status} ${o.code ?? ''}`;
    counts[k] = (counts[k] ?? 0) + 1;
  }
  return counts;
}

let cluster: GatewayCluster;
beforeAll(async () => {
  cluster = await startGatewayCluster();
}, 120_000);
afterAll(async () => {
  await cluster.close();
});

describe('Redis restarted under load', () => {
  let redis: ChildProcess | undefined;
  afterAll(async () => {
    if (redis?.exitCode === null) {
      redis.kill('SIGKILL');
      await stopped(redis);
    }
  });

  it('refuses cleanly while Redis is down and serves again without a gateway restart', async () => {
    const port = await freePort();
    redis = await startRedis(port);
    const p = await platform(cluster, { redisUrl: `redis://127.0.0.1:${port}` });
    const { before, after } = await underLoad(
      p,
      async (served) => {
        await served;
        const down = redis!;
        down.kill('SIGKILL'); // not even a clean shutdown
        await stopped(down);
        await new Promise((resolve) => setTimeout(resolve, 1_000));
        redis = await startRedis(port);
      },
      { workers: 3, afterRecovery: 20 },
    );
    console.log('Redis restart: before/during', summary(before), 'after', summary(after));
    for (const o of [...before, ...after]) {
      if (o.status !== 200) expect(OUTAGE_CODES).toContain(o.code);
    }
    expect(before.some((o) => o.status === 200)).toBe(true);
    expect(after.filter((o) => o.status === 200).length).toBeGreaterThanOrEqual(20);
  });
});

describe.skipIf(PG_URL === '' || PG_DATA === '' || PG_CTL === '')('PostgreSQL restarted under load', () => {
  it('refuses cleanly while PostgreSQL is down, serves again without a restart, loses no acknowledged key', async () => {
    const p = await platform(cluster, {
      databaseUrl: PG_URL,
      databaseSchema: `reliability_${randomBytes(4).toString('hex')}`,
    });
    const acknowledged: string[] = [];
    const refusedCreates: string[] = [];
    const { before, after } = await underLoad(
      p,
      async (served) => {
        await served;
        // -l: the server's output goes to the script's log, not to a pipe this test would wait on.
        const argv = [
          PG_CTL,
          '-D',
          PG_DATA,
          '-l',
          join(dirname(PG_DATA), 'server.log'),
          '-m',
          'fast',
          '-w',
          'restart',
        ];
        // postgres refuses to run as root: the script runs its cluster as Debian's postgres user.
        const [command, ...args] =
          process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--', ...argv] : argv;
        for (let i = 0; i < 3; i++) {
          const created = await p.admin('api-keys/create', { tenant: 'acme', name: `before-restart-${i}` });
          expect(created.status).toBe(200);
          acknowledged.push(created.json.key as string);
        }
        const restart = new Promise<number | null>((resolve) => {
          spawn(command!, args, { cwd: '/', stdio: 'ignore' }).once('exit', resolve);
        });
        // Admin writes before, while and after the database restarts: each is either acknowledged
        // (and must survive) or refused with a clean code.
        const state = { restarted: false };
        void restart.then(() => {
          state.restarted = true;
        });
        let afterRestart = 0;
        for (let i = 0; (!state.restarted || afterRestart < 3) && i < 2000; i++) {
          const wasRestarted = state.restarted;
          const created = await p.admin('api-keys/create', { tenant: 'acme', name: `during-restart-${i}` });
          if (created.status === 200) acknowledged.push(created.json.key as string);
          else refusedCreates.push(codeOfAdmin(created.json));
          if (wasRestarted && created.status === 200) afterRestart++;
        }
        expect(await restart).toBe(0);
      },
      { workers: 3, afterRecovery: 20 },
    );
    console.log('PostgreSQL restart: before/during', summary(before), 'after', summary(after), {
      acknowledgedKeys: acknowledged.length,
      refusedCreates,
    });
    for (const o of [...before, ...after]) {
      if (o.status !== 200) expect(OUTAGE_CODES).toContain(o.code);
    }
    for (const code of refusedCreates) expect(OUTAGE_CODES).toContain(code);
    expect(after.filter((o) => o.status === 200).length).toBeGreaterThanOrEqual(20);
    // No acknowledged write lost: every key answered 200 authenticates after the restart.
    for (const key of acknowledged) expect(await p.chat(key)).toEqual({ status: 200, code: null });
  });
});
