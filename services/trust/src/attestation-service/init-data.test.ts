import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AppraisalInput } from '@tresor/attestation';
import { isTresorError } from '@tresor/protocol';
import { verifyInitData } from './init-data.js';

const DOC = `algorithm = "sha256"\nversion = "0.1.0"\n\n[data]\ntresor-tenant = "acme"\ntresor-image = "sha256:${'ab'.repeat(32)}"\n`;
const SHA256 = createHash('sha256').update(DOC).digest('hex');

function input(tee: AppraisalInput['tee'], measurements: Record<string, string>): AppraisalInput {
  return {
    tee,
    insecure: tee === 'sample',
    debug: false,
    measurements,
    reportData: null,
    hardwareIds: [],
    tcb: {},
    vmpl: null,
    nonce: null,
    flags: {},
  };
}

async function code(f: () => Promise<unknown>): Promise<string> {
  try {
    await f();
    return 'accepted';
  } catch (err) {
    return isTresorError(err) ? err.code : `non-TresorError: ${String(err)}`;
  }
}

describe('init-data binding', () => {
  it('accepts SNP HOST_DATA = the sha256 digest, and reads the tenant and image', async () => {
    const verified = await verifyInitData({ body: DOC }, input('snp', { host_data: SHA256 }), null);
    expect(verified).toMatchObject({
      digest: SHA256,
      algorithm: 'sha256',
      tenant: 'acme',
      imageDigest: `sha256:${'ab'.repeat(32)}`,
    });
  });

  it('zero-pads a sha256 digest to the 48-byte TDX MRCONFIGID and truncates a sha512 one to 32-byte HOST_DATA', async () => {
    expect(
      await code(() =>
        verifyInitData({ body: DOC }, input('tdx', { mrconfigid: SHA256 + '00'.repeat(16) }), null),
      ),
    ).toBe('accepted');
    const doc512 = DOC.replace('sha256', 'sha512');
    const sha512 = createHash('sha512').update(doc512).digest('hex');
    expect(
      await code(() =>
        verifyInitData({ body: doc512 }, input('snp', { host_data: sha512.slice(0, 64) }), null),
      ),
    ).toBe('accepted');
  });

  it('accepts the sample TEE signing the digest', async () => {
    expect(await code(() => verifyInitData({ body: DOC }, input('sample', {}), SHA256))).toBe('accepted');
  });

  it('refuses init-data the TEE did not measure, or measured differently (INIT_DATA_MISMATCH)', async () => {
    expect(
      await code(() => verifyInitData({ body: DOC }, input('snp', { host_data: '00'.repeat(32) }), null)),
    ).toBe('INIT_DATA_MISMATCH');
    expect(
      await code(() => verifyInitData({ body: DOC }, input('snp', { host_data: 'ff'.repeat(32) }), null)),
    ).toBe('INIT_DATA_MISMATCH');
    expect(
      await code(() => verifyInitData({ body: `${DOC}\n` }, input('snp', { host_data: SHA256 }), null)),
    ).toBe('INIT_DATA_MISMATCH');
    expect(await code(() => verifyInitData({ body: DOC }, input('sample', {}), null))).toBe(
      'INIT_DATA_MISMATCH',
    );
  });

  it('refuses a TEE launched with init-data when none is sent (INIT_DATA_MISMATCH), and accepts none for none', async () => {
    expect(await code(() => verifyInitData(null, input('snp', { host_data: SHA256 }), null))).toBe(
      'INIT_DATA_MISMATCH',
    );
    expect(await verifyInitData(null, input('snp', { host_data: '00'.repeat(32) }), null)).toBeNull();
  });

  it('refuses unknown algorithms and malformed Tresor members (INIT_DATA_MALFORMED)', async () => {
    const md5 = DOC.replace('sha256', 'md5');
    expect(await code(() => verifyInitData({ body: md5 }, input('snp', { host_data: SHA256 }), null))).toBe(
      'INIT_DATA_MALFORMED',
    );
    const badTenant = DOC.replace('"acme"', '"ACME Corp"');
    const digest = createHash('sha256').update(badTenant).digest('hex');
    expect(
      await code(() => verifyInitData({ body: badTenant }, input('snp', { host_data: digest }), null)),
    ).toBe('INIT_DATA_MALFORMED');
  });
});
