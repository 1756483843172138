import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '@tresor/gateway';
import type { RunningServingService } from '@tresor/serving';
import { connect, type TresorClient } from '@tresor/sdk';
import {
  CLUSTER_MODEL,
  gatewayAdminCall,
  keepAliveTransport,
  startGatewayCluster,
  type GatewayCluster,
} from '../support/gateway-cluster.js';

/**
 * Scale-out (issue #12): one trust service, two serving replicas and three gateways sharing one
 * PostgreSQL (metadata, usage) and one Redis (rate limits, quotas), driven through a round-robin of
 * gateways by SDK clients that verify every gateway, every replica and every receipt.
 *
 * The services run in this process (real servers on loopback TLS, each with its own listener,
 * keystore handle, database pool and Redis connection) rather than as child processes: starting
 * six Node processes on this 2-core machine costs more than the whole run. Killing a component is
 * `close()` with no shutdown grace: its connections are cut mid-request.
 *
 * Needs TRESOR_TEST_PG_URL and TRESOR_TEST_REDIS_URL (`npm run test:integration` starts both).
 */
const pgUrl = process.env.TRESOR_TEST_PG_URL ?? '';
const redisUrl = process.env.TRESOR_TEST_REDIS_URL ?? '';
const TOTAL = 2_000;
const KILL_AT = 1_200;
const CONCURRENCY = 16;
const RATE_LIMIT = 25;

interface Acked {
  readonly promptTokens: number;
  readonly completionTokens: number;
}

describe.skipIf(pgUrl === '' || redisUrl === '')(
  'scale-out: 3 gateways, 2 serving replicas, PostgreSQL + Redis',
  () => {
    const schema = `scale_out_${randomBytes(4).toString('hex')}`;
    const suffix = randomBytes(3).toString('hex');
    const tenants = { main: `main-${suffix}`, limited: `limited-${suffix}`, quota: `quota-${suffix}` };
    let cluster: GatewayCluster;
    const servings: RunningServingService[] = [];
    const gateways: RunningGateway[] = [];
    const clients = new Map<RunningGateway, TresorClient>();
    const keys: Record<'main' | 'limited' | 'quota', string> = { main: '', limited: '', quota: '' };
    // All gateways and clients share this clock: real time plus a skew set once, so the rate-limit
    // burst runs at the start of a fixed one-minute window wherever the wall clock stands.
    const clock = { skewMs: 0 };
    const now = (): Date => new Date(Date.now() + clock.skewMs);
    let closeTransport = (): void => undefined;

    const admin = async (operation: string, request: unknown): Promise<Record<string, unknown>> => {
      const answer = await gatewayAdminCall(
        gateways[0]!.url,
        cluster.gatewayCa,
        cluster.admin,
        operation,
        request,
      );
      expect(answer.status, `${operation}: ${JSON.stringify(answer.json)}`).toBe(200);
      return answer.json;
    };

    const documentKeys = (): Promise<Record<string, unknown>[]> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest(
          `${cluster.trust.url}/trust/v0/document-keys`,
          { ca: cluster.trust.caPem, agent: false },
          (res) => {
            const parts: Buffer[] = [];
            res.on('data', (p: Buffer) => parts.push(p));
            res.on('end', () => {
              resolve(
                (JSON.parse(Buffer.concat(parts).toString('utf8')) as { keys: Record<string, unknown>[] })
                  .keys,
              );
            });
          },
        );
        req.on('error', reject);
        req.end();
      });

    beforeAll(async () => {
      cluster = await startGatewayCluster();
      for (let i = 0; i < 2; i++)
        servings.push(await cluster.startServing({ responseTokens: 2, maxConcurrent: 32 }));
      // One after the other: the first creates the schema, the others find it migrated.
      for (let i = 0; i < 3; i++) {
        gateways.push(
          await cluster.startGateway({
            replicaUrls: servings.map((s) => s.url),
            databaseUrl: pgUrl,
            databaseSchema: schema,
            redisUrl,
            now,
          }),
        );
      }
      const permit = (tenant: string): string =>
        `permit(principal in Gateway::Tenant::"${tenant}", action, resource);`;
      for (const tenant of Object.values(tenants)) {
        await admin('tenants/create', {
          id: tenant,
          requestsPerMinute: 1_000_000,
          tokensPerDay: 1_000_000_000,
        });
        await admin('policies/set', { tenant, policy: permit(tenant) });
      }
      keys.main = (await admin('api-keys/create', { tenant: tenants.main, requestsPerMinute: 1_000_000 }))
        .key as string;
      keys.limited = (
        await admin('api-keys/create', { tenant: tenants.limited, requestsPerMinute: RATE_LIMIT })
      ).key as string;
      keys.quota = (await admin('api-keys/create', { tenant: tenants.quota, tokensPerDay: 40 }))
        .key as string;
      const policy = {
        version: 1,
        trustServiceKeys: (await documentKeys()).map((jwk) => ({ jwk })),
        trustSignedReferenceValues: true,
        allowSampleTee: true,
        sampleVerifyKeys: [cluster.trust.sampleKey.verifyKey.hex],
      };
      const transport = keepAliveTransport(cluster.gatewayCa);
      closeTransport = () => {
        transport.close();
      };
      for (const gateway of gateways) {
        clients.set(
          gateway,
          await connect(gateway.url, { policy, now, fetch: transport.fetch, tls: transport.tls }),
        );
      }
    }, 300_000);

    afterAll(async () => {
      closeTransport();
      await cluster.close();
      const db = new pg.Client({ connectionString: pgUrl });
      await db.connect();
      await db.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await db.end();
    });

    /** One chat completion through `gateway`; resolves with the HTTP status and the parsed body. */
    async function chat(
      gateway: RunningGateway,
      key: string,
      content: string,
      stream = false,
    ): Promise<{ status: number; text: string }> {
      const client = clients.get(gateway);
      if (client === undefined) throw new Error('no client');
      const response = await client.fetch(`${client.gatewayUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: CLUSTER_MODEL,
          messages: [{ role: 'user', content }],
          ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
        }),
      });
      return { status: response.status, text: await response.text() };
    }

    async function usageRecords(
      tenant: string,
    ): Promise<{ apiKeyId: string; status: number; promptTokens: number; completionTokens: number }[]> {
      return (await admin('usage', { tenant, limit: 10_000 })).records as {
        apiKeyId: string;
        status: number;
        promptTokens: number;
        completionTokens: number;
      }[];
    }

    it('a key limited to N requests a minute gets exactly N across all gateways', async () => {
      // Start of the next minute (+1 s) on the shared clock: the burst stays inside one window.
      const minute = 60_000;
      clock.skewMs = minute - (Date.now() % minute) + 1_000;
      const statuses: number[] = [];
      const codes: string[] = [];
      await Promise.all(
        Array.from({ length: 8 }, async (_, worker) => {
          for (let i = worker; i < 3 * RATE_LIMIT; i += 8) {
            const answer = await chat(gateways[i % 3]!, keys.limited, `limited ${i}`);
            statuses.push(answer.status);
            if (answer.status !== 200)
              codes.push((JSON.parse(answer.text) as { error: { code: string } }).error.code);
          }
        }),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(RATE_LIMIT);
      expect(statuses.filter((s) => s === 429)).toHaveLength(2 * RATE_LIMIT);
      expect(new Set(codes)).toEqual(new Set(['RATE_LIMITED']));
    });

    it('a token quota holds across gateways', async () => {
      const served: number[] = [];
      let refused = 0;
      for (let i = 0; i < 30 && refused === 0; i++) {
        const answer = await chat(gateways[i % 3]!, keys.quota, `quota ${i} padding words here`);
        if (answer.status === 200) {
          const usage = (JSON.parse(answer.text) as { usage: { total_tokens: number } }).usage;
          served.push(usage.total_tokens);
        } else {
          expect((JSON.parse(answer.text) as { error: { code: string } }).error.code).toBe('QUOTA_EXHAUSTED');
          refused++;
        }
      }
      expect(refused).toBe(1);
      // Requests run one at a time: admitted while under the quota, refused from the first one after.
      const total = served.reduce((a, b) => a + b, 0);
      expect(total).toBeGreaterThanOrEqual(40);
      expect(total - (served.at(-1) ?? 0)).toBeLessThan(40);
      // Every gateway refuses it now.
      for (const gateway of gateways) expect((await chat(gateway, keys.quota, 'again')).status).toBe(429);
    });

    it(`${TOTAL} requests through a round-robin of gateways: all acknowledged, usage sums, a gateway and a replica killed mid-run`, async () => {
      const acked = new Map<number, Acked>();
      let next = 0;
      let attempts = 0;
      let failures = 0;
      let ackedBeforeKill = -1;
      let turn = 0;
      const alive = (): RunningGateway[] => gateways.filter((g) => !killed.has(g));
      const killed = new Set<RunningGateway>();
      let kill: Promise<void> | undefined;

      const wrongAnswers: number[] = [];
      const usageOf = (text: string, stream: boolean): Acked | undefined => {
        const json = stream
          ? text
              .split('\n\n')
              .filter((e) => e.startsWith('data: {') && e.includes('"usage":{'))
              .at(-1)
              ?.slice(6)
          : text;
        try {
          const usage = (
            JSON.parse(json ?? '') as { usage?: { prompt_tokens: number; completion_tokens: number } }
          ).usage;
          return usage === undefined
            ? undefined
            : { promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens };
        } catch {
          return undefined;
        }
      };

      const once = async (i: number): Promise<void> => {
        const seen: string[] = [];
        for (let attempt = 0; attempt < 10; attempt++) {
          const live = alive();
          const gateway = live[turn++ % live.length]!;
          attempts++;
          try {
            const stream = i % 4 === 0;
            const answer = await chat(gateway, keys.main, `req n${i}x`, stream);
            const usage = answer.status === 200 ? usageOf(answer.text, stream) : undefined;
            if (usage !== undefined) {
              // The echo engine answers with the prompt's words: this answer must be this request's.
              if (!answer.text.includes(`n${i}x`)) wrongAnswers.push(i);
              acked.set(i, usage);
              return;
            }
            // Otherwise a refusal from a gateway whose replica just died (502/503): retried.
            seen.push(`${gateways.indexOf(gateway)}: HTTP ${answer.status} ${answer.text.slice(0, 160)}`);
          } catch (err) {
            // Connection cut (the gateway was killed), or a stream cut before its receipt.
            seen.push(`${gateways.indexOf(gateway)}: ${err instanceof Error ? err.message : String(err)}`);
          }
          failures++;
        }
        throw new Error(`request ${i} failed 10 times: ${seen.join(' | ')}`);
      };

      await Promise.all(
        Array.from({ length: CONCURRENCY }, async () => {
          for (let i = next++; i < TOTAL; i = next++) {
            if (i === KILL_AT) {
              ackedBeforeKill = acked.size;
              kill = (async () => {
                killed.add(gateways[2]!);
                await Promise.all([gateways[2]!.close(), servings[1]!.close()]);
              })();
            }
            await once(i);
          }
        }),
      );
      await kill;

      expect(acked.size).toBe(TOTAL);
      expect(wrongAnswers).toEqual([]);
      expect(ackedBeforeKill).toBeGreaterThan(0);
      expect(attempts).toBe(TOTAL + failures);
      // After the kill (and a re-attestation round) the survivors route only to the replica left.
      for (const gateway of gateways.slice(0, 2)) {
        await gateway.pool.verifyAll();
        expect(gateway.pool.healthy().map((r) => r.url)).toEqual([servings[0]!.url]);
      }

      // Every acknowledged request has its usage record, whichever gateway served it; a request cut
      // after its record was written and before its answer was complete may add one more (retried).
      const records = (await usageRecords(tenants.main)).filter((r) => r.status === 200);
      const ackedList = [...acked.values()];
      const sum = (list: readonly Acked[], k: keyof Acked): number => list.reduce((a, r) => a + r[k], 0);
      expect(records.length).toBeGreaterThanOrEqual(TOTAL);
      expect(records.length - TOTAL).toBeLessThanOrEqual(failures);
      const perRequest = new Set(ackedList.map((a) => a.completionTokens));
      expect(perRequest).toEqual(new Set([2]));
      expect(sum(records, 'completionTokens')).toBe(2 * records.length);
      expect(sum(records, 'promptTokens')).toBeGreaterThanOrEqual(sum(ackedList, 'promptTokens'));
      if (records.length === TOTAL) {
        expect(sum(records, 'promptTokens')).toBe(sum(ackedList, 'promptTokens'));
      }
      console.info(
        `scale-out: ${TOTAL} acknowledged, ${attempts} attempts (${failures} retried after the kill), ${records.length} usage records`,
      );
    });
  },
);
