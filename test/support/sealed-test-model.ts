import { createHash, randomBytes } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { join } from 'node:path';
import { ModelKey } from '@tresor/crypto';
import { sealModelFile } from '@tresor/crypto/node';

/**
 * TEST-ONLY helpers for serving tests: a sealed model made from given plaintext under a fresh key,
 * and plain HTTPS reads of a replica's probes (/readyz, /metrics, /attestation).
 */

export interface SealedTestModel {
  /** The sealed `.tresor` file. */
  readonly file: string;
  /** The raw model key (give it to the trust service as the resource). */
  readonly rawKey: Uint8Array;
  /** SHA-256 of the plaintext (hex). */
  readonly sha256: string;
}

/** Seals `plaintext` into `<dir>/<name>.tresor` under a fresh key; no plaintext file remains. */
export async function sealTestModel(
  dir: string,
  plaintext: Uint8Array,
  keyUri: string,
  name = 'model',
): Promise<SealedTestModel> {
  const rawKey = new Uint8Array(randomBytes(32));
  const input = join(dir, `${name}.gguf`);
  const file = join(dir, `${name}.tresor`);
  await writeFile(input, plaintext);
  await sealModelFile({
    input,
    output: file,
    key: await ModelKey.import(rawKey),
    keyId: keyUri,
    durable: false,
  });
  await rm(input);
  return { file, rawKey, sha256: createHash('sha256').update(plaintext).digest('hex') };
}

/** GET over HTTPS whatever certificate the server shows (as readiness probes do). */
export function probeGet(
  url: string,
): Promise<{ status: number; text: string; retryAfter: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { rejectUnauthorized: false, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (p: Buffer) => parts.push(p));
      res.on('end', () => {
        const retry = res.headers['retry-after'];
        resolve({
          status: res.statusCode ?? 0,
          text: Buffer.concat(parts).toString('utf8'),
          retryAfter: typeof retry === 'string' ? retry : undefined,
        });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Polls `<url>/readyz` (bounded; no timing is asserted) until `until` holds; returns that answer. */
export async function readyzUntil(
  url: string,
  until: (status: number) => boolean,
): Promise<{ status: number; code: unknown; retryAfter: string | undefined }> {
  for (let i = 0; i < 1200; i++) {
    const { status, text, retryAfter } = await probeGet(`${url}/readyz`);
    if (until(status)) return { status, code: (JSON.parse(text) as { code?: unknown }).code, retryAfter };
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error('/readyz never reached the state the test waits for');
}

/** The value of an unlabelled counter at `<url>/metrics` (NaN when absent). */
export async function metricValue(url: string, name: string): Promise<number> {
  const { text } = await probeGet(`${url}/metrics`);
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
  return Number(line?.split(' ').at(-1));
}
