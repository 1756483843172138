import { z } from 'zod';
import { configInvalid, deepFreeze } from './config-error.js';

/**
 * A server's listener settings: validated by a schema at start-up (CONFIG_INVALID names the
 * field), defaults filled in, then frozen. TLS is not optional: every Tresor listener speaks
 * TLS 1.3 only (DESIGN.md §1), so a configuration without a certificate does not parse.
 */

const MIB = 1024 * 1024;

const pem = (what: string): z.ZodString =>
  z.string().regex(/-----BEGIN [A-Z0-9 ]+-----/, `${what} as PEM text (-----BEGIN ...-----)`);

export const serverConfigSchema = z
  .strictObject({
    /** Interface to listen on; 127.0.0.1 unless the service must be reachable from other hosts. */
    host: z.string().min(1).max(255).default('127.0.0.1'),
    /** TCP port; 0 picks a free one (tests). */
    port: z.number().int().min(0).max(65535).default(8443),
    tls: z.strictObject({
      /** The server certificate chain, leaf first. */
      cert: pem('the certificate chain'),
      /** The server's private key. Secret: never logged, never served. */
      key: pem('the private key'),
      /** CA certificates that issue client certificates; setting it turns on mutual TLS. */
      clientCa: pem('the client CA certificates').optional(),
      /** Refuse clients without a certificate from clientCa during the handshake. */
      requireClientCert: z.boolean().default(false),
    }),
    /** Serve HTTP/2 (with HTTP/1.1 fallback through ALPN) instead of HTTP/1.1 only. */
    http2: z.boolean().default(false),
    limits: z
      .strictObject({
        /** Largest request body any route accepts; routes may set a lower limit. */
        bodyBytes: z
          .number()
          .int()
          .positive()
          .max(64 * MIB)
          .default(MIB),
        /** A request must be received completely within this time. */
        requestTimeoutMs: z.number().int().positive().max(600_000).default(30_000),
        /** Idle keep-alive connections are closed after this time. */
        keepAliveTimeoutMs: z.number().int().positive().max(600_000).default(5_000),
      })
      .prefault({}),
    /** On shutdown, requests in flight get this long to finish before connections are cut. */
    shutdownGraceMs: z.number().int().nonnegative().max(600_000).default(10_000),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  })
  .refine((c) => !c.tls.requireClientCert || c.tls.clientCa !== undefined, {
    message: 'requireClientCert needs clientCa (the CA that issues the client certificates)',
    path: ['tls', 'requireClientCert'],
  });

/** A validated, frozen server configuration. */
export type ServerConfig = Readonly<z.output<typeof serverConfigSchema>>;
/** A server configuration as written (defaults optional). */
export type ServerConfigInput = z.input<typeof serverConfigSchema>;

/** Validates and freezes a server configuration; throws CONFIG_INVALID naming the offending field. */
export function parseServerConfig(value: unknown): ServerConfig {
  const parsed = serverConfigSchema.safeParse(value);
  if (!parsed.success) throw configInvalid('server configuration', parsed.error);
  return deepFreeze(parsed.data);
}
