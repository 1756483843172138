import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { parseServerConfig } from './config.js';

const PEM_CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const PEM_KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
const tls = { cert: PEM_CERT, key: PEM_KEY };

function failure(value: unknown): { code: string; message: string } {
  try {
    parseServerConfig(value);
  } catch (err) {
    if (isTresorError(err)) return { code: err.code, message: err.message };
    return { code: `non-TresorError: ${String(err)}`, message: '' };
  }
  return { code: 'accepted', message: '' };
}

describe('parseServerConfig', () => {
  it('fills in defaults and freezes the result, nested members included', () => {
    const config = parseServerConfig({ tls });
    expect(config).toMatchObject({
      host: '127.0.0.1',
      port: 8443,
      http2: false,
      limits: { bodyBytes: 1024 * 1024, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000 },
      shutdownGraceMs: 10_000,
      logLevel: 'info',
      tls: { requireClientCert: false },
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.tls)).toBe(true);
    expect(Object.isFrozen(config.limits)).toBe(true);
    expect(() => {
      (config.limits as { bodyBytes: number }).bodyBytes = 1;
    }).toThrow(TypeError);
  });

  it.each([
    [{}, 'tls'],
    [{ tls: { cert: PEM_CERT } }, 'tls.key'],
    [{ tls: { cert: 'not pem', key: PEM_KEY } }, 'tls.cert'],
    [{ tls, port: 70000 }, 'port'],
    [{ tls, port: -1 }, 'port'],
    [{ tls, limits: { bodyBytes: 0 } }, 'limits.bodyBytes'],
    [{ tls, limits: { bodyBytes: 1.5 } }, 'limits.bodyBytes'],
    [{ tls, logLevel: 'verbose' }, 'logLevel'],
    [{ tls, prot: 8443 }, 'prot'],
    [{ tls: { ...tls, requireClientCert: true } }, 'tls.requireClientCert'],
  ])('refuses %j with CONFIG_INVALID naming %s', (value, field) => {
    const { code, message } = failure(value);
    expect(code).toBe('CONFIG_INVALID');
    expect(message).toContain(`field ${field}:`);
  });

  it('names a misspelt member as unknown', () => {
    expect(failure({ tls, limits: { bodyByte: 10 } }).message).toBe(
      'server configuration field limits.bodyByte: not a known setting (misspelt?)',
    );
  });

  it('never throws anything but CONFIG_INVALID for arbitrary input (property)', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const { code } = failure(value);
        return code === 'CONFIG_INVALID';
      }),
      { numRuns: 1000 },
    );
  });

  it('accepts every port in range and refuses every port outside (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -100_000, max: 200_000 }), (port) => {
        const { code } = failure({ tls, port });
        return port >= 0 && port <= 65535 ? code === 'accepted' : code === 'CONFIG_INVALID';
      }),
      { numRuns: 1000 },
    );
  });
});
