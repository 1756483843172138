import type { Command } from 'commander';
import { TresorError, isErrorCode } from '@tresor/protocol';
import { ADMIN_MEDIA_TYPE, ADMIN_PREFIX, signAdminRequest } from '@tresor/trust';
import type { CliIo } from '../io.js';
import { httpsEndpoint, httpsExchange } from './https-exchange.js';
import { readAdminKey } from './trust-admin-keys.js';

/** Flags every gateway admin command takes. */
export interface GatewayAdminFlags {
  readonly url?: string;
  readonly ca?: string;
  readonly key?: string;
  readonly audience?: string;
  readonly json?: boolean;
}

/** Adds --url, --ca, --key, --audience and --json to a gateway admin command group. */
export function gatewayAdminOptions(command: Command): Command {
  return command
    .option('--url <url>', 'the gateway (default $TRESOR_GATEWAY_URL)')
    .option(
      '--ca <file>',
      'CA certificate of its TLS certificate (default $TRESOR_GATEWAY_CA, else system roots)',
    )
    .option('--key <file>', 'your admin key, a private JWK (default $TRESOR_ADMIN_KEY)')
    .option('--audience <name>', "the gateway's admin audience (default tresor-gateway)")
    .option('--json', 'print the JSON answer');
}

const MAX_ANSWER_BYTES = 16 * 1024 * 1024;

/** Signs and sends one gateway admin operation; returns its JSON answer or throws the refusal's code. */
export async function gatewayAdminCall(
  io: CliIo,
  flags: GatewayAdminFlags,
  operation: string,
  request: unknown,
): Promise<Record<string, unknown>> {
  const { url, ca } = await httpsEndpoint(io, flags, {
    name: 'the gateway',
    urlEnv: 'TRESOR_GATEWAY_URL',
    caEnv: 'TRESOR_GATEWAY_CA',
  });
  const key = await readAdminKey(io, flags.key);
  const path = `${ADMIN_PREFIX}/${operation}`;
  const jws = await signAdminRequest(key, {
    audience: flags.audience ?? 'tresor-gateway',
    path,
    request,
    now: io.now(),
  });
  const answer = await httpsExchange(new URL(path, url), {
    method: 'POST',
    ca,
    accept: 'application/json',
    body: { contentType: ADMIN_MEDIA_TYPE, text: jws },
    maxAnswerBytes: MAX_ANSWER_BYTES,
    timeoutMs: 30_000,
    unreachable: (cause) =>
      new TresorError('GATEWAY_UNREACHABLE', `cannot reach the gateway at ${url.origin}`, { cause }),
  });
  let json: unknown;
  try {
    json = JSON.parse(answer.text);
  } catch {
    json = undefined;
  }
  if (answer.status !== 200) {
    const body = json as { code?: unknown; message?: unknown } | undefined;
    if (isErrorCode(body?.code)) {
      throw new TresorError(body.code, typeof body.message === 'string' ? body.message : undefined);
    }
    throw new TresorError(
      'GATEWAY_UNREACHABLE',
      `the gateway answered HTTP ${answer.status} without a Tresor error code`,
    );
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new TresorError('GATEWAY_UNREACHABLE', 'the gateway answered something that is not a JSON object');
  }
  return json as Record<string, unknown>;
}

/** Parses a non-negative integer option. */
export function integerOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^(0|[1-9][0-9]{0,15})$/.test(value)) {
    throw new TresorError('USAGE_INVALID', `${name} takes a non-negative integer, not ${value}`);
  }
  return Number(value);
}
