import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTresorError } from '@tresor/protocol';
import { loadTrustConfigFile, parseTrustConfig } from './config.js';

const CERT = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n';
const server = { tls: { cert: CERT, key: KEY } };

function failure(value: unknown): string {
  try {
    parseTrustConfig(value);
    return 'accepted';
  } catch (err) {
    return isTresorError(err) ? `${err.code}: ${err.message}` : `non-TresorError: ${String(err)}`;
  }
}

describe('trust configuration', () => {
  it('fills in Trustee-like defaults and freezes the result', () => {
    const config = parseTrustConfig({ server });
    expect(config).toMatchObject({
      mode: 'development',
      issuer: 'tresor-trust',
      kbs: {
        sessionTtlSeconds: 300,
        maxSessions: 10_000,
        authBodyBytes: 16 * 1024,
        attestBodyBytes: 4 * 1024 * 1024,
      },
      tokens: { lifetimeSeconds: 300 },
      attestation: {
        acceptUnsignedSample: false,
        policy: { allowSampleTee: false, allowDebug: false, requireReportDataBinding: true },
      },
      resourcePolicy: '',
    });
    expect(Object.isFrozen(config.attestation.policy)).toBe(true);
  });

  it.each([
    [{ attestation: { policy: { allowSampleTee: true } } }, 'attestation.policy.allowSampleTee'],
    [{ attestation: { policy: { allowDebug: true } } }, 'attestation.policy.allowDebug'],
    [
      { attestation: { policy: { requireReportDataBinding: false } } },
      'attestation.policy.requireReportDataBinding',
    ],
    [{ attestation: { acceptUnsignedSample: true } }, 'attestation.acceptUnsignedSample'],
  ])('refuses %j in production mode, naming %s', (settings, field) => {
    expect(failure({ server, mode: 'production', ...settings })).toMatch(
      new RegExp(`^CONFIG_INVALID: trust configuration field ${field}: production mode`),
    );
    expect(failure({ server, ...settings })).toBe('accepted');
  });

  it.each([
    [{ server, kbs: { sessionTtlSeconds: 5 } }, 'kbs.sessionTtlSeconds'],
    [{ server, kbs: { attestBodyBytes: 1 } }, 'kbs.attestBodyBytes'],
    [{ server, tokens: { lifetimeSeconds: 86_400 } }, 'tokens.lifetimeSeconds'],
    [{ server, attestation: { policy: { alowDebug: true } } }, 'attestation.policy.alowDebug'],
    [{ server: { tls: { cert: CERT } } }, 'server.tls.key'],
    [{ server, issuer: '' }, 'issuer'],
  ])('refuses %j naming %s', (value, field) => {
    expect(failure(value)).toMatch(
      new RegExp(`^CONFIG_INVALID: trust configuration field ${field.replaceAll('.', '\\.')}:`),
    );
  });

  it('reads TLS material from files named relative to the configuration file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tresor-trust-config-'));
    try {
      await writeFile(join(dir, 'server.pem'), CERT);
      await writeFile(join(dir, 'server.key'), KEY);
      await writeFile(
        join(dir, 'trust.json'),
        JSON.stringify({ server: { port: 9443, tls: { certFile: 'server.pem', keyFile: 'server.key' } } }),
      );
      const config = await loadTrustConfigFile(join(dir, 'trust.json'));
      expect(config.server).toMatchObject({ port: 9443, tls: { cert: CERT, key: KEY } });
      await writeFile(
        join(dir, 'both.json'),
        JSON.stringify({ server: { tls: { cert: CERT, certFile: 'server.pem', keyFile: 'server.key' } } }),
      );
      await expect(loadTrustConfigFile(join(dir, 'both.json'))).rejects.toMatchObject({
        code: 'CONFIG_INVALID',
      });
      await writeFile(join(dir, 'broken.json'), '{"server":');
      await expect(loadTrustConfigFile(join(dir, 'broken.json'))).rejects.toMatchObject({
        code: 'INPUT_MALFORMED',
      });
      await expect(loadTrustConfigFile(join(dir, 'absent.json'))).rejects.toMatchObject({
        code: 'INPUT_UNREADABLE',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('never throws anything but CONFIG_INVALID for arbitrary values (property)', () => {
    fc.assert(
      fc.property(fc.anything(), (value) => /^(accepted|CONFIG_INVALID: )/.test(failure(value))),
      { numRuns: 1000 },
    );
  });
});
