import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ComponentEvidence } from '@tresor/protocol';
import {
  metricValue,
  probeGet,
  readyzUntil,
  sealTestModel,
} from '../../../test/support/sealed-test-model.js';
import {
  SERVING_MEASUREMENT,
  startServingTrust,
  type ServingTrust,
} from '../../../test/support/serving-trust.js';
import { sendSealedRequest } from './client/sealed-client.js';
import type { ServingConfigInput } from './config.js';
import type { EngineFactory } from './engine-factory.js';
import { createEchoEngine } from './engines/echo-engine.js';
import {
  superviseUpstream,
  type UpstreamChild,
  type UpstreamExit,
  type UpstreamModelFile,
} from './engines/upstream-process.js';
import { startServingService } from './service.js';

/**
 * The replica's side of engine supervision, without processes: the engine is the real supervisor
 * over fake children (echo engines), and the restart goes through the replica's real reload —
 * key release by the trust service, reference values, unseal into the work folder.
 */

const KEY_PATH = 'models/key/restart-model';
const KEY_URI = `kbs:///${KEY_PATH}`;
const MODEL = 'restart-model';

let dir: string;
let sealedFile: string;
let plaintextSha256: string;
let trust: ServingTrust;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-engine-restart-'));
  const sealed = await sealTestModel(dir, new Uint8Array(randomBytes(10_000)), KEY_URI);
  sealedFile = sealed.file;
  plaintextSha256 = sealed.sha256;
  trust = await startServingTrust({ resources: { [KEY_PATH]: sealed.rawKey } });
});

afterAll(async () => {
  await trust.close();
  await rm(dir, { recursive: true, force: true });
});

function fakeChild(): { child: UpstreamChild; die: () => void } {
  let settle!: (exit: UpstreamExit) => void;
  const exited = new Promise<UpstreamExit>((resolve) => {
    settle = resolve;
  });
  const child: UpstreamChild = {
    http: createEchoEngine({ models: [{ id: MODEL }] }),
    exited,
    kill: () => {
      settle({ code: null, signal: 'SIGKILL' });
    },
    stop: async () => {
      settle({ code: 0, signal: null });
      await exited;
    },
  };
  return {
    child,
    die: () => {
      child.kill();
    },
  };
}

/** A supervised engine over fake children; restarts wait until the test releases them. */
function supervisedFactory(maxRapidRestarts: number): {
  factory: EngineFactory;
  children: { die: () => void }[];
  launchedFiles: { path: string; sha256: string; bytesSha256: string }[];
  releaseRestart: () => void;
} {
  const children: { die: () => void }[] = [];
  const launchedFiles: { path: string; sha256: string; bytesSha256: string }[] = [];
  const held: (() => void)[] = [];
  return {
    children,
    launchedFiles,
    releaseRestart: () => {
      held.shift()?.();
    },
    factory: (models, _config, context) => {
      const [model] = models;
      if (model === undefined || context?.reloadModel === undefined) throw new Error('no model or reload');
      const reloadModel = context.reloadModel;
      const first = fakeChild();
      children.push(first);
      return Promise.resolve(
        superviseUpstream(first.child, {
          model,
          launch: async (file: UpstreamModelFile) => {
            // What a real child would load: the digest of the bytes on disk, then the file moves away.
            const bytesSha256 = createHash('sha256')
              .update(await readFile(file.path))
              .digest('hex');
            launchedFiles.push({ path: file.path, sha256: file.sha256, bytesSha256 });
            await rm(file.path);
            const next = fakeChild();
            children.push(next);
            return next.child;
          },
          reload: (signal) => reloadModel(model.id, signal),
          restart: { maxRapidRestarts },
          health: { intervalMs: 0 },
          ...(context.onUpstreamEvent === undefined ? {} : { onEvent: context.onUpstreamEvent }),
          schedule: (run) => {
            let cancelled = false;
            held.push(() => {
              if (!cancelled) run();
            });
            return () => {
              cancelled = true;
            };
          },
        }),
      );
    },
  };
}

function config(workDir: string): ServingConfigInput {
  return {
    mode: 'local',
    listen: { host: '127.0.0.1', port: 0 },
    trust: { url: trust.url, caFile: trust.caFile },
    tee: { source: 'sample', signingKeyFile: trust.sampleKeyFile, measurement: SERVING_MEASUREMENT },
    models: [{ id: MODEL, file: sealedFile, key: KEY_URI }],
    engine: { kind: 'echo' },
    workDir,
    logLevel: 'silent',
    shutdownGraceMs: 0,
  };
}

describe('a replica whose engine process dies', () => {
  it('is not ready while the engine restarts (ENGINE_UNAVAILABLE + Retry-After), re-decrypts through the trust service, then serves again', async () => {
    const workDir = join(dir, 'work-restart');
    const engine = supervisedFactory(5);
    const serving = await startServingService(config(workDir), { engineFactory: engine.factory });
    try {
      await serving.ready;
      const gateway = await trust.meshClient('gateway');
      const evidence = JSON.parse(
        (await probeGet(`${serving.url}/attestation?nonce=${'ab'.repeat(32)}`)).text,
      ) as ComponentEvidence;
      const send = (): ReturnType<typeof sendSealedRequest> =>
        sendSealedRequest({
          url: serving.url,
          keyConfig: evidence.runtimeData.hpkeKeyConfig,
          method: 'POST',
          path: '/v1/chat/completions',
          body: { model: MODEL, messages: [{ role: 'user', content: 'x' }] },
          tls: { ca: trust.meshCa.caCertificatePem, cert: gateway.cert, key: gateway.key },
          serverSpiffeId: 'spiffe://tresor.local/serving/_',
        });
      expect((await send()).status).toBe(200);

      engine.children[0]!.die();
      const outage = await readyzUntil(serving.url, (status) => status !== 200);
      expect(outage).toEqual({ status: 502, code: 'ENGINE_UNAVAILABLE', retryAfter: '1' });
      expect(serving.step()).toBe('restarting');
      const refused = await send();
      expect(refused.outerStatus).toBe(502);
      expect(refused.outerHeaders['retry-after']).toBe('1');
      expect(JSON.parse(new TextDecoder().decode(refused.body))).toMatchObject({
        error: { code: 'ENGINE_UNAVAILABLE' },
      });
      expect(await metricValue(serving.url, 'serving_engine_exits_total')).toBe(1);
      expect(engine.launchedFiles).toEqual([]); // nothing decrypted before the back-off ends

      engine.releaseRestart();
      await readyzUntil(serving.url, (status) => status === 200);
      expect(serving.step()).toBe('ready');
      // The restart decrypted the model again, inside the work folder, with the attested digest.
      expect(engine.launchedFiles).toEqual([
        {
          path: expect.stringContaining(workDir) as unknown,
          sha256: plaintextSha256,
          bytesSha256: plaintextSha256,
        },
      ]);
      expect((await send()).status).toBe(200);
      expect(await metricValue(serving.url, 'serving_engine_restarts_total')).toBe(1);
      expect(await readdir(workDir)).toEqual([]);
    } finally {
      await serving.close();
    }
    expect(existsSync(workDir) ? await readdir(workDir) : []).toEqual([]);
  });

  it('with no restarts allowed, stays not ready for good (ENGINE_UNAVAILABLE) and decrypts nothing again', async () => {
    const engine = supervisedFactory(0);
    const serving = await startServingService(config(join(dir, 'work-give-up')), {
      engineFactory: engine.factory,
    });
    try {
      await serving.ready;
      engine.children[0]!.die();
      const answer = await readyzUntil(serving.url, (status) => status !== 200);
      expect(answer).toMatchObject({ status: 502, code: 'ENGINE_UNAVAILABLE' });
      expect(answer.retryAfter).toBeUndefined();
      expect(serving.step()).toBe('failed');
      engine.releaseRestart(); // nothing is scheduled
      expect(engine.launchedFiles).toEqual([]);
      expect(await metricValue(serving.url, 'serving_engine_restarts_total')).toBe(0);
    } finally {
      await serving.close();
    }
  });
});
