import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadServingConfig, startServingService } from '@tresor/serving';
import type { CliIo } from '../io.js';
import type { CommandModule } from '../program.js';
import { untilSignal } from '../signals.js';

/**
 * `tresor serving serve --config <file>`: runs a serving replica until SIGINT or SIGTERM. It
 * listens at once and becomes ready in the background; when start-up is refused (no evidence, no
 * model key, a tampered model) it keeps answering /readyz with the reason until it is stopped,
 * so an orchestrator sees why, and the command then exits 1.
 */
export function registerServingServe(serving: Command, io: CliIo): void {
  serving
    .command('serve')
    .description('run a serving replica (HTTPS, TLS 1.3, mTLS) until SIGINT or SIGTERM')
    .requiredOption('--config <file>', 'serving config (JSON; docs/serving.md "Configuration")')
    .action(async (flags: { config: string }) => {
      const config = await loadServingConfig(resolve(io.cwd, flags.config));
      const service = await startServingService(config, { now: () => io.now() });
      io.stdout.write(
        `serving replica ${service.replicaId} listening on ${service.url} (${config.mode}, ${config.engine.kind} engine); starting\n`,
      );
      const outcome = { refused: false };
      service.ready.then(
        () => io.stdout.write(`serving replica ${service.replicaId} ready\n`),
        (err: unknown) => {
          outcome.refused = true;
          const code =
            typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'INTERNAL_ERROR';
          io.stderr.write(`serving replica not ready: ${code}; /readyz answers the reason\n`);
        },
      );
      const signal = await untilSignal({ env: io.env });
      await service.close();
      io.stdout.write(`stopped on ${signal}\n`);
      if (outcome.refused) process.exitCode = 1;
    });
}

/** `tresor serving serve`: the model-serving enclave (docs/serving.md). */
export const servingCommands: CommandModule = (program, io) => {
  const serving = program
    .command('serving')
    .description('the model-serving enclave: attested start-up, sealed models, sealed request path')
    .addHelpText('after', '\nSee docs/serving.md for the config file and the start-up sequence.');
  registerServingServe(serving, io);
};
