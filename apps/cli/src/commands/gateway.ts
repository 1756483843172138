import { resolve } from 'node:path';
import type { CommandModule } from '../program.js';
import { loadGatewayConfig, startGatewayService } from '@tresor/gateway';
import { untilSignal } from '../signals.js';

/** `tresor gateway serve --config <file>`: runs the AI gateway until SIGINT or SIGTERM (docs/gateway.md). */
export const gatewayCommands: CommandModule = (program, io) => {
  const gateway = program
    .command('gateway')
    .description('the AI gateway: OHTTP endpoint with the OpenAI-compatible API inside the encryption')
    .addHelpText('after', '\nSee docs/gateway.md for the config file, the admin API and the wire protocol.');
  gateway
    .command('serve')
    .description('run the gateway (HTTPS, TLS 1.3, HTTP/2) until SIGINT or SIGTERM')
    .requiredOption('--config <file>', 'gateway config (JSON; docs/gateway.md)')
    .action(async (flags: { config: string }) => {
      const config = await loadGatewayConfig(resolve(io.cwd, flags.config));
      const service = await startGatewayService(config, { env: io.env, now: () => io.now() });
      io.stdout.write(
        `gateway listening on ${service.url} (${config.mode}, ${config.serving.replicas.length} serving replica(s) configured)\n`,
      );
      await service.ready;
      io.stdout.write(`${service.pool.healthy().length} serving replica(s) attested and in rotation\n`);
      const signal = await untilSignal({ env: io.env });
      await service.close();
      io.stdout.write(`stopped on ${signal}\n`);
    });
};
