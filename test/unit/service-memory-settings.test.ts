import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  childEnv,
  serviceChild,
  SERVICE_MALLOC_THRESHOLDS,
  SERVICE_NODE_FLAGS,
  SERVICE_PROCESS_ENV,
  serviceProcessEnv,
  TRESOR_BIN,
  type ServiceName,
} from '../../apps/cli/src/platform/children.js';

/**
 * The memory settings of the service processes (apps/cli/src/platform/children.ts) are the same
 * wherever a service is launched: `tresor up`'s children and the images' entry points (the bench
 * harness and scripts/build-images.ts use the constants themselves).
 */
const never = (): Promise<boolean> => Promise.resolve(false);
const child = (env: Record<string, string>, name: ServiceName = 'gateway') =>
  serviceChild({ name, config: `/state/${name}.json`, cwd: '/state', env, ready: never });

describe('service process memory settings', () => {
  it('tresor up starts each service with the node flags before the bin and the malloc arena cap', () => {
    const spec = child(childEnv({ PATH: '/bin' }));
    expect(spec.args).toEqual([
      ...SERVICE_NODE_FLAGS,
      TRESOR_BIN,
      'gateway',
      'serve',
      '--config',
      '/state/gateway.json',
    ]);
    expect(spec.env).toEqual({ ...SERVICE_PROCESS_ENV, ...SERVICE_MALLOC_THRESHOLDS, PATH: '/bin' });
    expect(SERVICE_PROCESS_ENV).toEqual({ MALLOC_ARENA_MAX: '2' });
  });

  it('fixes the malloc thresholds of trust and the gateway, not of serving (its unseal needs the dynamic one)', () => {
    expect(child({}, 'trust').env).toEqual({
      MALLOC_ARENA_MAX: '2',
      MALLOC_MMAP_THRESHOLD_: '131072',
      MALLOC_TRIM_THRESHOLD_: '131072',
    });
    expect(child({}, 'serving').env).toEqual({ MALLOC_ARENA_MAX: '2' });
    expect(serviceProcessEnv('serving')).not.toHaveProperty('MALLOC_MMAP_THRESHOLD_');
  });

  it("keeps the caller's own MALLOC_ARENA_MAX and the child's secrets", () => {
    const spec = child(childEnv({ MALLOC_ARENA_MAX: '8' }, { TRESOR_KEYSTORE_PASSPHRASE: 'p' }));
    expect(spec.env).toEqual({
      ...SERVICE_MALLOC_THRESHOLDS,
      MALLOC_ARENA_MAX: '8',
      TRESOR_KEYSTORE_PASSPHRASE: 'p',
    });
  });

  it('passes on no other variable of the caller for it', () => {
    const spec = child(childEnv({ MALLOC_TOP_PAD_: '1', NODE_EXTRA_CA_CERTS: '/x', TRESOR_API_KEY: 'tr_x' }));
    expect(spec.env).toEqual(serviceProcessEnv('gateway'));
  });

  it('flags that this node accepts on the command line', () => {
    const ok = spawnSync(process.execPath, [...SERVICE_NODE_FLAGS, '-e', 'process.exit(0)'], {
      encoding: 'utf8',
    });
    expect(ok.status).toBe(0);
    // A flag V8 does not know is refused the same way, so the check above can fail.
    const bad = spawnSync(process.execPath, ['--no-such-v8-flag-here', '-e', 'process.exit(0)'], {
      encoding: 'utf8',
    });
    expect(bad.status).not.toBe(0);
  });

  it.each(['gateway', 'serving', 'trust'] as const)(
    'the %s image starts node with the same flags and variables',
    (name) => {
      const text = readFileSync(new URL(`../../deploy/docker/${name}.Dockerfile`, import.meta.url), 'utf8');
      const entrypoint = /^ENTRYPOINT (\[.*\])$/m.exec(text)?.[1];
      expect(JSON.parse(entrypoint ?? 'null')).toEqual([
        '/usr/bin/node',
        ...SERVICE_NODE_FLAGS,
        '/app/apps/cli/bin/tresor.js',
      ]);
      // The runtime stage's ENV (the last one), not the build stage's.
      const env = [...text.matchAll(/^ENV (.*)$/gm)].at(-1)?.[1] ?? '';
      for (const [variable, value] of Object.entries(serviceProcessEnv(name))) {
        expect(env.split(' ')).toContain(`${variable}=${value}`);
      }
      // Serving's image must not fix them either.
      if (name === 'serving') expect(env).not.toContain('MALLOC_MMAP_THRESHOLD_');
      expect(env.split(' ')).not.toContain('npm_config_fund=false');
    },
  );
});
