import type { FastifyInstance } from 'fastify';
import { TresorError } from '@tresor/protocol';

/** A readiness check: resolves when the dependency is usable, rejects (or times out) when it is not. */
export type ReadinessCheck = () => Promise<void>;

const CHECK_TIMEOUT_MS = 2_000;

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => {
      resolve(false);
    }, timeoutMs);
  });
  try {
    return await Promise.race([check().then(() => true), timeout]);
  } catch {
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `/healthz` (liveness: the process answers) and `/readyz` (readiness: every registered check
 * passes within 2 s; otherwise SERVICE_NOT_READY naming the failing checks, never their errors,
 * which could describe infrastructure to an anonymous caller).
 */
export function installHealthRoutes(
  app: FastifyInstance,
  checks: ReadonlyMap<string, ReadinessCheck>,
  timeoutMs = CHECK_TIMEOUT_MS,
): void {
  app.get('/healthz', async (_request, reply) =>
    reply.header('cache-control', 'no-store').send({ status: 'ok' }),
  );
  app.get('/readyz', async (_request, reply) => {
    const names = [...checks.keys()];
    const results = await Promise.all([...checks.values()].map((check) => runCheck(check, timeoutMs)));
    const failing = names.filter((_name, i) => results[i] !== true);
    if (failing.length > 0) {
      throw new TresorError('SERVICE_NOT_READY', `not ready: ${failing.join(', ')}`, {
        details: { failing },
      });
    }
    return reply.header('cache-control', 'no-store').send({ status: 'ready', checks: names });
  });
}
