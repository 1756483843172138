import { createServer } from 'node:net';
import { TresorError } from '@tresor/protocol';

/**
 * The local platform's ports. Defaults sit in the 8440s, away from the ports dev servers usually
 * take (3000, 5173, 8000, 8080, 8443 for tomcat/kubectl port-forwards): gateway 8444, trust 8445,
 * serving 8446. `--port <n>` moves the gateway to n and the others to n+1 and n+2.
 */
export const DEFAULT_GATEWAY_PORT = 8444;
/** Everything listens on loopback only: the local platform is for this machine. */
export const LOCAL_HOST = '127.0.0.1';

export interface PlatformPorts {
  readonly gateway: number;
  readonly trust: number;
  readonly serving: number;
}

/** The three ports from the gateway port. @throws TresorError USAGE_INVALID when they leave 1..65535 */
export function platformPorts(gatewayPort: number = DEFAULT_GATEWAY_PORT): PlatformPorts {
  if (!Number.isSafeInteger(gatewayPort) || gatewayPort < 1 || gatewayPort > 65533) {
    throw new TresorError(
      'USAGE_INVALID',
      `--port ${String(gatewayPort)} is not a usable port: give 1 to 65533 (trust and serving take the next two)`,
    );
  }
  return { gateway: gatewayPort, trust: gatewayPort + 1, serving: gatewayPort + 2 };
}

/** `--port` as commander hands it over: digits only. */
export function parsePortFlag(text: string): number {
  if (!/^\d{1,5}$/.test(text)) {
    throw new TresorError('USAGE_INVALID', `--port ${text} is not a port number (1 to 65533)`);
  }
  return platformPorts(Number(text)).gateway;
}

/** Resolves when `port` can be bound on `host`, rejects with the bind error otherwise. */
function tryBind(host: string, port: number): Promise<void> {
  return new Promise((resolveBind, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ host, port, exclusive: true }, () => {
      server.close(() => {
        resolveBind();
      });
    });
  });
}

/**
 * Checks that every port is free before anything starts, so the platform never comes up half-way.
 *
 * @throws TresorError PORT_IN_USE naming the component and port, and the --port to try instead
 */
export async function requireFreePorts(ports: PlatformPorts, host: string = LOCAL_HOST): Promise<void> {
  for (const [component, port] of Object.entries(ports) as [keyof PlatformPorts, number][]) {
    try {
      await tryBind(host, port);
    } catch (cause) {
      const code = (cause as NodeJS.ErrnoException).code;
      const reason = code === 'EADDRINUSE' ? 'is already in use' : `cannot be bound (${code ?? 'error'})`;
      throw new TresorError(
        'PORT_IN_USE',
        `port ${String(port)} for the ${component} on ${host} ${reason}; stop the process using it or start with --port <n> (the gateway takes n, trust n+1, serving n+2; now ${String(ports.gateway)})`,
        { cause },
      );
    }
  }
}
