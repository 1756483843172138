import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { captureIo } from '../../../../test/support/cli-io.js';
import { httpsEndpoint, type EndpointSource } from './https-exchange.js';

const GATEWAY: EndpointSource = {
  name: 'the gateway',
  urlEnv: 'TRESOR_GATEWAY_URL',
  caEnv: 'TRESOR_GATEWAY_CA',
};
const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-endpoint-'));
  await writeFile(join(dir, 'ca.pem'), CA_PEM);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const io = (env: Record<string, string> = {}) => ({ ...captureIo(env), cwd: dir });

describe('httpsEndpoint', () => {
  it('takes --url and --ca (the CA file relative to the working directory)', async () => {
    const endpoint = await httpsEndpoint(io(), { url: 'https://gw.example:8443/x', ca: 'ca.pem' }, GATEWAY);
    expect(endpoint.url.href).toBe('https://gw.example:8443/x');
    expect(endpoint.ca).toBe(CA_PEM);
  });

  it('falls back to the source’s environment variables, and to system roots without a CA', async () => {
    const fromEnv = await httpsEndpoint(
      io({ TRESOR_GATEWAY_URL: 'https://gw.example', TRESOR_GATEWAY_CA: join(dir, 'ca.pem') }),
      {},
      GATEWAY,
    );
    expect([fromEnv.url.origin, fromEnv.ca]).toEqual(['https://gw.example', CA_PEM]);
    const noCa = await httpsEndpoint(io({ TRESOR_GATEWAY_URL: 'https://gw.example' }), {}, GATEWAY);
    expect('ca' in noCa).toBe(false);
    // The flag wins over the environment.
    const flag = await httpsEndpoint(
      io({ TRESOR_GATEWAY_URL: 'https://env.example' }),
      { url: 'https://flag.example' },
      GATEWAY,
    );
    expect(flag.url.origin).toBe('https://flag.example');
  });

  it.each([
    [{}, {}, 'USAGE_INVALID', 'name the gateway with --url https://… or TRESOR_GATEWAY_URL'],
    [{ TRESOR_GATEWAY_URL: '' }, {}, 'USAGE_INVALID', 'TRESOR_GATEWAY_URL'],
    [{}, { url: 'gw.example:8443' }, 'USAGE_INVALID', 'the gateway is reached over https only'],
    [{}, { url: 'not a url' }, 'USAGE_INVALID', '--url not a url is not a URL'],
    [{}, { url: 'http://gw.example' }, 'USAGE_INVALID', 'the gateway is reached over https only'],
    [{}, { url: 'https://gw.example', ca: 'missing.pem' }, 'INPUT_UNREADABLE', 'missing.pem'],
  ] as const)('refuses env %j flags %j with %s', async (env, flags, code, message) => {
    await expect(httpsEndpoint(io(env), flags, GATEWAY)).rejects.toMatchObject({
      code,
      message: expect.stringContaining(message) as unknown,
    });
  });
});
