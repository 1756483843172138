import { renderVerificationDocument, verifyGateway } from '@tresor/sdk';
import type { CommandModule } from '../program.js';
import type { CliIo } from '../io.js';
import { chatCommand } from './chat.js';
import { proxyCommand } from './proxy.js';
import { verifyReceiptCommand } from './verify-receipt.js';
import { readPolicy, transportFor, type ClientOptions } from './verify-options.js';

/** `tresor verify`: fetches the gateway's attestation bundle with a fresh nonce and checks every step. */
export async function verifyCommand(
  gatewayUrl: string,
  options: ClientOptions & { readonly json?: boolean },
  io: CliIo,
): Promise<void> {
  const policy = await readPolicy(options.policy, io);
  const transport = await transportFor(options.ca, io);
  const { document } = await verifyGateway(gatewayUrl, { policy, ...transport, now: () => io.now() });
  io.stdout.write(
    options.json === true ? `${JSON.stringify(document, null, 2)}\n` : renderVerificationDocument(document),
  );
  if (!document.ok) process.exitCode = 1;
}

/** `tresor verify|chat|proxy|verify-receipt`: the client side (docs/client.md). */
export const clientCommands: CommandModule = (program, io) => {
  const policyHelp = 'trust policy file (default: ./tresor-policy.json; docs/client.md)';
  const caHelp = 'extra CA certificate (PEM) to trust for the gateway TLS certificate, e.g. a local stack';
  program
    .command('verify')
    .description(
      "verify a gateway's attestation (gateway and every serving replica) against your trust policy",
    )
    .argument('<gateway-url>', 'the gateway, e.g. https://gateway.example.ch')
    .option('--policy <file>', policyHelp)
    .option('--ca <file>', caHelp)
    .option('--json', 'print the verification document as JSON')
    .addHelpText(
      'after',
      '\nExit codes: 0 every check passed; 1 a check failed; 2 unreadable or invalid policy, bad URL.',
    )
    .action(async (url: string, options: ClientOptions & { json?: boolean }) => {
      await verifyCommand(url, options, io);
    });
  program
    .command('chat')
    .description(
      'chat with a model, end-to-end encrypted after verifying the gateway (one-shot with a prompt, REPL without)',
    )
    .argument('<gateway-url>', 'the gateway')
    .argument('[prompt]', 'the prompt; without it an interactive session starts')
    .requiredOption('--model <id>', 'the model id')
    .option('--api-key <key>', 'API key (better: the TRESOR_API_KEY environment variable)')
    .option('--policy <file>', policyHelp)
    .option('--ca <file>', caHelp)
    .addHelpText('after', '\nExit codes: 0 answered; 1 verification or the request failed; 2 usage error.')
    .action(async (url: string, prompt: string | undefined, options: Record<string, string | undefined>) => {
      await chatCommand(url, prompt, options, io);
    });
  program
    .command('proxy')
    .description(
      'a local OpenAI-compatible endpoint (plain HTTP on loopback) that verifies the gateway and encrypts every request',
    )
    .requiredOption('--upstream <gateway-url>', 'the gateway')
    .option('--listen <host:port>', 'where to listen', '127.0.0.1:8080')
    .option('--policy <file>', policyHelp)
    .option('--ca <file>', caHelp)
    .option(
      '--allow-remote',
      'allow a non-loopback listen address (anyone who reaches it uses your API key path)',
    )
    .option('--reverify-seconds <n>', 'how often to re-verify the gateway', '60')
    .addHelpText(
      'after',
      '\nExit codes: 1 verification failed at start; 2 usage error (non-loopback bind, port in use).',
    )
    .action(async (options: Record<string, string | boolean | undefined>) => {
      await proxyCommand(options, io);
    });
  program
    .command('verify-receipt')
    .description('re-check a saved response receipt offline')
    .argument('<file>', 'the receipt: a compact JWS, or the JSON the SDK exposes ({"jws", "receiptKey", …})')
    .option(
      '--bundle <file>',
      'the attestation bundle (JSON) the receipt must match: its replica, key, evidence and models',
    )
    .addHelpText('after', '\nExit codes: 0 the receipt verifies; 1 it does not; 2 unreadable input.')
    .action(async (file: string, options: { bundle?: string }) => {
      await verifyReceiptCommand(file, options, io);
    });
};
