import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadDeploymentConfig, startTrustService } from '@tresor/trust';
import type { CliIo } from '../io.js';
import { untilSignal } from '../signals.js';

/** `tresor trust serve --config <file>`: runs the trust service until SIGINT or SIGTERM. */
export function registerTrustServe(trust: Command, io: CliIo): void {
  trust
    .command('serve')
    .description('run the trust service (HTTPS, TLS 1.3) until SIGINT or SIGTERM')
    .requiredOption('--config <file>', 'deployment config (JSON; docs/trust.md "Running the trust service")')
    .addHelpText(
      'after',
      '\nThe keystore passphrase or PIN comes from the environment variable the keystore config names.',
    )
    .action(async (flags: { config: string }) => {
      const config = await loadDeploymentConfig(resolve(io.cwd, flags.config));
      const service = await startTrustService(config, { env: io.env, now: () => io.now() });
      io.stdout.write(
        `trust service listening on ${service.url} (${config.service.mode}, ${config.keystore.backend} keystore, ` +
          `reference values v${service.referenceValues.document.version}, ` +
          `inventory v${service.inventory.document.version})\n`,
      );
      const signal = await untilSignal({ env: io.env });
      await service.close();
      io.stdout.write(`stopped on ${signal}\n`);
    });
}
