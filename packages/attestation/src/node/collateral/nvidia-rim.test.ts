import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FakeCollateralServer } from '../../../../../test/support/fake-collateral-services.js';
import { readTestdataText } from '../../../../../test/support/testdata.js';
import type { CollateralFetchOptions } from './fetch-options.js';
import { fetchNvidiaRim } from './nvidia-rim.js';

const RIM_ID = 'NV_GPU_DRIVER_GH100_550.90.07';

/** The base64 DER of the NVIDIA device identity root, to stand in as a RIM signing certificate. */
const SIGNER = readTestdataText('attestation/nvidia/nvtrust-hopper-sample/nvidia_device_identity_root.pem')
  .replace(/-----[A-Z ]+-----/g, '')
  .replace(/\s+/g, '');

/** A response shaped like the RIM service's: JSON with the SWID XML in base64 (built at run time). */
function rimResponse(id: string, withSigner: boolean): string {
  const signature = withSigner
    ? `<ds:Signature><ds:KeyInfo><ds:X509Data><ds:X509Certificate>\n${SIGNER}\n</ds:X509Certificate></ds:X509Data></ds:KeyInfo></ds:Signature>`
    : '';
  const xml = `<?xml version="1.0"?><SoftwareIdentity name="${id}">${signature}</SoftwareIdentity>`;
  return JSON.stringify({ id, rim: Buffer.from(xml).toString('base64'), sha256: '00', rim_format: 'base64' });
}

describe('fetchNvidiaRim against a local fake RIM service', () => {
  let service: FakeCollateralServer;
  let directory: string;
  const options = (overrides: Partial<CollateralFetchOptions> = {}): CollateralFetchOptions => ({
    directory,
    endpoints: { nvidiaRim: service.url },
    now: () => new Date('2025-06-01T00:00:00Z'),
    sleep: () => Promise.resolve(),
    ...overrides,
  });

  beforeAll(async () => {
    service = await FakeCollateralServer.start();
  });
  afterAll(() => service.close());
  beforeEach(() => {
    service.reset();
    directory = mkdtempSync(join(tmpdir(), 'tresor-rim-'));
  });

  it('stores the response as served and says the verifier does not read it yet', async () => {
    const body = rimResponse(RIM_ID, true);
    service.serve(`/v1/rim/${RIM_ID}`, { body, headers: { 'content-type': 'application/json' } });
    const fetched = await fetchNvidiaRim(RIM_ID, options());
    expect(fetched.files).toEqual([
      {
        role: 'rim',
        path: join(directory, `rim-${RIM_ID}.json`),
        source: 'network',
        url: `${service.url}/v1/rim/${RIM_ID}`,
        validUntil: new Date('9999-12-31T23:59:59Z'),
        current: true,
      },
    ]);
    expect(readFileSync(fetched.files[0]!.path, 'utf8')).toBe(body);
    expect(fetched.notes).toEqual([expect.stringContaining('does not read RIMs yet')]);
  });

  it('reuses a RIM while its signing certificates are valid', async () => {
    service.serve(`/v1/rim/${RIM_ID}`, { body: rimResponse(RIM_ID, true) });
    await fetchNvidiaRim(RIM_ID, options());
    const again = await fetchNvidiaRim(RIM_ID, options());
    expect(again.files[0]!.source).toBe('cache');
    expect(service.requests).toHaveLength(1);
  });

  it('never reuses a RIM that states no validity', async () => {
    service.serve(`/v1/rim/${RIM_ID}`, { body: rimResponse(RIM_ID, false) });
    await fetchNvidiaRim(RIM_ID, options());
    const again = await fetchNvidiaRim(RIM_ID, options());
    expect(again.files[0]).toMatchObject({ source: 'network', validUntil: null, current: true });
    expect(service.requests).toHaveLength(2);
  });

  it('refuses a response that is not the RIM asked for, writing nothing', async () => {
    for (const [body, message] of [
      ['<html/>', /not UTF-8 JSON/],
      ['[]', /not an object/],
      [rimResponse('NV_GPU_DRIVER_GH100_535.86.10', true), /the RIM "NV_GPU_DRIVER_GH100_535.86.10" instead/],
      [JSON.stringify({ id: RIM_ID }), /no "rim" member/],
      [JSON.stringify({ id: RIM_ID, rim: '%%%' }), /not base64/],
    ] as const) {
      service.serve(`/v1/rim/${RIM_ID}`, { body });
      await expect(fetchNvidiaRim(RIM_ID, options())).rejects.toMatchObject({
        code: 'COLLATERAL_RESPONSE_INVALID',
        message: expect.stringMatching(message) as unknown,
      });
    }
    expect(readdirSync(directory)).toEqual([]);
  });

  it('refuses an ID that is not a RIM ID before any request, and maps 404', async () => {
    for (const id of ['../etc/passwd', 'a/b', '', '.hidden', 'x'.repeat(129)]) {
      await expect(fetchNvidiaRim(id, options())).rejects.toMatchObject({ code: 'USAGE_INVALID' });
    }
    expect(service.requests).toEqual([]);
    await expect(fetchNvidiaRim(RIM_ID, options())).rejects.toMatchObject({ code: 'COLLATERAL_NOT_FOUND' });
  });
});
