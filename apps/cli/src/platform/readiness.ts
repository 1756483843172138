import { randomBytes } from 'node:crypto';
import { request } from 'node:https';
import type { ReadinessProbe } from './supervisor.js';

/** A /readyz answer is a short JSON object; more is not read. */
const MAX_ANSWER_BYTES = 4096;

/** `SERVICE_NOT_READY: model-keys: …` from a Tresor error body, or the HTTP status. */
function describeRefusal(status: number | undefined, body: string): string {
  try {
    const answer = JSON.parse(body) as { code?: unknown; message?: unknown };
    if (typeof answer.code === 'string' && typeof answer.message === 'string') {
      return `${answer.code}: ${answer.message}`;
    }
  } catch {
    // Not Tresor's error shape: the status says enough.
  }
  return `HTTP ${String(status ?? 0)}`;
}

/**
 * A readiness probe that asks `GET <url>/readyz` over TLS 1.3, trusting only the local CA: ready
 * when it answers 200. Not ready — with the reason the supervisor shows if the deadline passes —
 * while it is not listening, its certificate does not verify, or it answers 503
 * (SERVICE_NOT_READY naming what it still waits for).
 */
export function httpsReadyProbe(baseUrl: string, ca: string, path = '/readyz'): ReadinessProbe {
  const target = new URL(path, baseUrl);
  return (signal) =>
    new Promise<boolean>((resolveProbe, reject) => {
      const req = request(
        target,
        { method: 'GET', ca, minVersion: 'TLSv1.3', signal, timeout: 5_000, agent: false },
        (response) => {
          if (response.statusCode === 200) {
            response.resume();
            resolveProbe(true);
            return;
          }
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            if (body.length < MAX_ANSWER_BYTES) body += chunk;
          });
          response.on('end', () => {
            reject(new Error(describeRefusal(response.statusCode, body.slice(0, MAX_ANSWER_BYTES))));
          });
          response.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        reject(new Error(`not answering (${err.code ?? err.message})`));
      });
      req.end();
    });
}

/**
 * Ready when the gateway's attestation bundle lists at least one serving replica: the gateway has
 * attested the replica and routes to it, so a client's first request finds a model.
 */
export function gatewayRoutesProbe(gatewayUrl: string, ca: string): ReadinessProbe {
  return (signal) =>
    new Promise<boolean>((resolveProbe, reject) => {
      const nonce = randomBytes(32).toString('hex');
      const target = new URL(`/.well-known/tresor/attestation?nonce=${nonce}`, gatewayUrl);
      const req = request(
        target,
        { method: 'GET', ca, minVersion: 'TLSv1.3', signal, timeout: 5_000, agent: false },
        (response) => {
          let body = '';
          response.setEncoding('utf8');
          response.on('data', (chunk: string) => {
            body += chunk;
          });
          response.on('end', () => {
            if (response.statusCode !== 200) {
              reject(new Error(describeRefusal(response.statusCode, body.slice(0, MAX_ANSWER_BYTES))));
              return;
            }
            try {
              const bundle = JSON.parse(body) as { serving?: unknown };
              if (Array.isArray(bundle.serving) && bundle.serving.length > 0) resolveProbe(true);
              else reject(new Error('the gateway has not attested a serving replica yet'));
            } catch {
              reject(new Error('the gateway answered an attestation bundle that is not JSON'));
            }
          });
          response.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
      req.on('error', (err: NodeJS.ErrnoException) => {
        reject(new Error(`not answering (${err.code ?? err.message})`));
      });
      req.end();
    });
}
