import { fileURLToPath } from 'node:url';
import type { ChildSpec, ReadinessProbe } from './supervisor.js';

/** The `tresor` bin of this checkout (apps/cli/bin/tresor.js), from src/ (tests) and dist/ alike. */
export const TRESOR_BIN = fileURLToPath(new URL('../../bin/tresor.js', import.meta.url));

/**
 * Variables a platform process inherits from the caller. Nothing else of the caller's environment
 * is passed on: a child gets no credentials it does not need (the keystore passphrase goes to
 * trust only, through `extra`).
 */
const INHERITED = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'TZ', 'NODE_OPTIONS', 'TRESOR_DEBUG', 'SYSTEMROOT'];

export function childEnv(
  from: Readonly<Record<string, string | undefined>>,
  extra: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED) {
    const value = from[name];
    if (value !== undefined) env[name] = value;
  }
  return { ...env, ...extra };
}

/** `node apps/cli/bin/tresor.js <service> serve --config <file>`. */
export function serviceChild(options: {
  readonly name: string;
  readonly config: string;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string>>;
  readonly ready: ReadinessProbe;
}): ChildSpec {
  return {
    name: options.name,
    command: process.execPath,
    args: [TRESOR_BIN, options.name, 'serve', '--config', options.config],
    env: options.env,
    cwd: options.cwd,
    ready: options.ready,
  };
}
