import { pino, type DestinationStream, type Logger } from 'pino';
import { safeError, safeReply, safeRequest, scrubLogObject } from './log-redaction.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface ServiceLoggerOptions {
  /** The service name every line carries (`trust`, `gateway`, …). */
  readonly service: string;
  readonly level: LogLevel;
  /** Where lines go; stdout when omitted. Tests pass a stream they can read back. */
  readonly destination?: DestinationStream;
}

/**
 * A pino JSON logger whose every line goes through the redactor (log-redaction.ts): request and
 * reply objects are reduced to method, path and status, errors to name and code, and members that
 * could carry content or secrets are dropped wherever they appear.
 */
export function createServiceLogger(options: ServiceLoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: { req: safeRequest, res: safeReply, err: safeError },
      formatters: { log: scrubLogObject },
    },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
