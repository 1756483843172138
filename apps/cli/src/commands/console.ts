import { resolve } from 'node:path';
import { TresorError } from '@tresor/protocol';
import { loadTresorPolicy } from '@tresor/sdk';
import type { CommandModule } from '../program.js';
import { untilSignal } from '../signals.js';
import { CONSOLE_DIST as DEFAULT_DIST } from '../platform/console-setup.js';
import { LOCAL_GATEWAY_AUDIENCE } from '../platform/service-configs.js';
import { readInput, startConsoleServer } from './console-server.js';

interface ConsoleFlags {
  readonly gateway: string;
  readonly policy: string;
  readonly ca?: string;
  readonly listen: string;
  readonly dist: string;
  readonly adminAudience: string;
}

/** `tresor console`: the web console served locally, relaying to a gateway (docs/console.md). */
export const consoleCommands: CommandModule = (program, io) => {
  program
    .command('console')
    .description('serve the web console on this machine (loopback), relaying to a gateway')
    .requiredOption('--gateway <url>', 'the gateway, e.g. https://127.0.0.1:8444')
    .option('--policy <file>', 'trust policy the page verifies the gateway against', 'tresor-policy.json')
    .option('--ca <file>', 'extra CA certificate (PEM) for the gateway’s TLS certificate')
    .option('--listen <host:port>', 'where to serve the console (loopback only)', '127.0.0.1:8090')
    .option('--dist <dir>', 'the console build (npm run build -w apps/console)', DEFAULT_DIST)
    .option(
      '--admin-audience <aud>',
      'the gateway’s admin audience, for signed admin requests',
      LOCAL_GATEWAY_AUDIENCE,
    )
    .addHelpText(
      'after',
      '\nThe page verifies the gateway itself (your policy, its own nonce) and encrypts every model request\n' +
        'in the browser; this command only relays ciphertext, the attestation bundle and signed admin requests.\n' +
        'Open the printed URL. Ctrl-C stops it.',
    )
    .action(async (flags: ConsoleFlags) => {
      const policyPath = resolve(io.cwd, flags.policy);
      const text = await readInput(policyPath, 'trust policy');
      let policy: unknown;
      try {
        policy = JSON.parse(text);
        loadTresorPolicy(new TextEncoder().encode(text));
      } catch (err) {
        throw new TresorError(
          'TRUST_POLICY_INVALID',
          `${policyPath}: ${err instanceof Error ? err.message : 'not a trust policy'}`,
        );
      }
      const ca = flags.ca === undefined ? undefined : await readInput(resolve(io.cwd, flags.ca), 'CA file');
      const running = await startConsoleServer({
        gateway: flags.gateway,
        listen: flags.listen,
        dist: resolve(io.cwd, flags.dist),
        policy,
        adminAudience: flags.adminAudience,
        ...(ca === undefined ? {} : { ca }),
      });
      io.stdout.write(
        `Tresor console: ${running.url}\n  gateway   ${flags.gateway}\n  page hash ${running.pageHash}\n`,
      );
      await untilSignal();
      await running.close();
    });
};
