import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { captureIo } from '../../../../test/support/cli-io.js';
import {
  FakeCollateralServer,
  pcsResponses,
  type DcapQvlCollateral,
} from '../../../../test/support/fake-collateral-services.js';
import { readTestdata, readTestdataJson, testdataPath } from '../../../../test/support/testdata.js';
import { run } from '../index.js';
import type { AttestFetchOutput } from './attest-fetch.js';

const GSG = 'attestation/snp/gsg-milan-v2';
const GSG_CHIP_ID = (readTestdataJson(`${GSG}/expected.json`) as { claims: { chip_id: string } }).claims
  .chip_id;
const GSG_VCEK_PATH = `/vcek/v1/Milan/${GSG_CHIP_ID}?blSPL=2&teeSPL=0&snpSPL=5&ucodeSPL=68`;
const TDX = 'attestation/tdx/dcap-qvl-v4-uptodate';

describe('tresor attest fetch', () => {
  let server: FakeCollateralServer;
  let out: string;

  beforeAll(async () => {
    server = await FakeCollateralServer.start();
  });
  afterAll(() => server.close());
  beforeEach(() => {
    server.reset();
    out = mkdtempSync(join(tmpdir(), 'tresor-fetch-'));
  });

  function serveGsg(): void {
    server.serve(GSG_VCEK_PATH, { body: readTestdata(`${GSG}/vcek.der`) });
    server.serve('/vcek/v1/Milan/cert_chain', { body: readTestdata(`${GSG}/ask_ark.pem`) });
  }

  async function tresor(args: readonly string[], io = captureIo({}, new Date('2025-06-01T00:00:00Z'))) {
    const code = await run(args, io);
    return { code, out: io.out(), err: io.err() };
  }

  const snpArgs = () => [
    ...['attest', 'fetch', '--report', testdataPath(`${GSG}/report.bin`), '--product', 'Milan', '--no-crl'],
    ...['--out', out, '--kds-url', server.url],
  ];

  it('SEV-SNP: writes the VCEK and chain and prints a verify command that succeeds', async () => {
    serveGsg();
    const fetched = await tresor([...snpArgs(), '--json']);
    expect(fetched).toMatchObject({ code: 0, err: '' });
    const output = JSON.parse(fetched.out) as AttestFetchOutput;
    expect(output.files.map((f) => [f.role, f.source, f.path])).toEqual([
      ['signer_cert', 'network', join(out, `vcek-milan-${GSG_CHIP_ID}-bl2-tee0-snp5-ucode68.der`)],
      ['ca_chain', 'network', join(out, 'ask_ark-milan.pem')],
    ]);
    expect(output.verify?.slice(0, 5)).toEqual(['tresor', 'attest', 'verify', '--tee', 'snp']);
    const verified = await tresor([...output.verify!.slice(1), '--at', '2025-06-01T00:00:00Z']);
    expect(verified).toMatchObject({ code: 0, err: '' });
  });

  it('prints which files it wrote or reused, and the verify command', async () => {
    serveGsg();
    const first = await tresor(snpArgs());
    expect(first.out).toMatch(
      /^fetched {2}signer_cert {2}\S+vcek-milan-\w+-bl2-tee0-snp5-ucode68\.der {2}valid until 2029-09-24T00:55:28\.000Z$/m,
    );
    expect(first.out).toMatch(/^fetched {2}ca_chain {5}\S+ask_ark-milan\.pem/m);
    expect(first.out).toContain(
      `verify with:\n  tresor attest verify --tee snp --report ${testdataPath(`${GSG}/report.bin`)} --signer-cert ${out}/vcek-milan-`,
    );
    expect(first.out).toMatch(/--ca-chain \S+ask_ark-milan\.pem --product Milan\n$/);
    server.requests.length = 0;
    const second = await tresor(snpArgs());
    expect(second.out.match(/^reused /gm)).toHaveLength(2);
    expect(server.requests).toEqual([]);
    await tresor([...snpArgs(), '--refresh']);
    expect(server.requests).toHaveLength(2);
  });

  it('TDX: takes the PCS URL from the environment and assembles collateral that verifies', async () => {
    const responses = pcsResponses(readTestdataJson(`${TDX}/collateral.json`) as DcapQvlCollateral);
    server.serve('/tdx/certification/v4/tcb?fmspc=B0C06F000000', responses.tcbInfo);
    server.serve('/tdx/certification/v4/qe/identity', responses.qeIdentity);
    server.serve('/sgx/certification/v4/pckcrl?ca=platform&encoding=der', responses.pckCrl);
    server.serve('/root.crl', responses.rootCaCrl);
    const io = captureIo(
      { TRESOR_INTEL_PCS_URL: server.url, TRESOR_INTEL_ROOT_CA_CRL_URL: 'https://ignored.invalid/x.crl' },
      new Date('2025-07-01T00:00:00Z'),
    );
    const fetched = await tresor(
      [
        'attest',
        'fetch',
        '--quote',
        testdataPath(`${TDX}/quote.bin`),
        '--out',
        out,
        '--json',
        '--intel-root-ca-crl-url',
        `${server.url}/root.crl`,
      ],
      io,
    );
    expect(fetched).toMatchObject({ code: 0, err: '' });
    const output = JSON.parse(fetched.out) as AttestFetchOutput;
    expect(output.verify).toEqual([
      ...['tresor', 'attest', 'verify', '--tee', 'tdx', '--quote', testdataPath(`${TDX}/quote.bin`)],
      ...['--collateral', join(out, 'tdx-collateral-b0c06f000000-platform.json')],
    ]);
    const verified = await tresor([...output.verify!.slice(1), '--at', '2025-07-01T00:00:00Z', '--json']);
    expect(verified.code).toBe(0);
    expect((JSON.parse(verified.out) as { claims: { tcb: { status: string } } }).claims.tcb.status).toBe(
      'UpToDate',
    );
  });

  it('NVIDIA: fetches each RIM named and offers no verify command', async () => {
    const rim = (id: string) =>
      JSON.stringify({ id, rim: Buffer.from('<SoftwareIdentity/>').toString('base64') });
    server.serve('/v1/rim/NV_GPU_DRIVER_GH100_550.90.07', { body: rim('NV_GPU_DRIVER_GH100_550.90.07') });
    server.serve('/v1/rim/NV_GPU_VBIOS_2330_0210_882_96009F0001', {
      body: rim('NV_GPU_VBIOS_2330_0210_882_96009F0001'),
    });
    const fetched = await tresor([
      ...[
        'attest',
        'fetch',
        '--rim-id',
        'NV_GPU_DRIVER_GH100_550.90.07',
        '--rim-id',
        'NV_GPU_VBIOS_2330_0210_882_96009F0001',
      ],
      ...['--out', out, '--rim-url', server.url, '--json'],
    ]);
    expect(fetched.code).toBe(0);
    const output = JSON.parse(fetched.out) as AttestFetchOutput;
    expect(output.files.map((f) => f.path)).toEqual([
      join(out, 'rim-NV_GPU_DRIVER_GH100_550.90.07.json'),
      join(out, 'rim-NV_GPU_VBIOS_2330_0210_882_96009F0001.json'),
    ]);
    expect(output.verify).toBeNull();
    expect(output.notes).toEqual([expect.stringContaining('does not read RIMs yet')]);
  });

  it('SEV-SNP with a VLEK: fetches the ASVK chain and says where the VLEK comes from', async () => {
    const dir = 'attestation/snp/trustee-milan-vlek-v3';
    server.serve('/vlek/v1/Milan/cert_chain', { body: readTestdata(`${dir}/asvk_ark.pem`) });
    const keys = await crypto.subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, true, [
      'sign',
      'verify',
    ]);
    const crl = await x509.X509CrlGenerator.create({
      issuer: 'CN=ARK-Milan',
      nextUpdate: new Date('2025-06-05T00:00:00Z'),
      thisUpdate: new Date('2025-05-30T00:00:00Z'),
      signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
      signingKey: keys.privateKey,
    });
    server.serve('/vlek/v1/Milan/crl', { body: new Uint8Array(crl.rawData) });
    const fetched = await tresor([
      'attest',
      'fetch',
      '--report',
      testdataPath(`${dir}/report.bin`),
      '--out',
      out,
      '--kds-url',
      server.url,
    ]);
    expect(fetched.code).toBe(0);
    expect(fetched.out).toContain('note: the report is signed by a VLEK, which AMD KDS does not publish');
    expect(fetched.out).toContain(
      `--signer-cert '<VLEK from the cloud provider>' --ca-chain ${out}/asvk_ark-milan.pem --crl ${out}/crl-vlek-milan.der`,
    );
  });

  it('draws progress on a terminal only, and clears it', async () => {
    serveGsg();
    const io = captureIo({}, new Date('2025-06-01T00:00:00Z'));
    let err = '';
    const tty = { ...io, stderr: { write: (s: string) => (err += s), isTTY: true } };
    expect(await run(snpArgs(), tty)).toBe(0);
    expect(err).toContain('fetching VCEK (Milan)…');
    expect(err.endsWith('\r\x1b[2K')).toBe(true);
    expect((await tresor([...snpArgs(), '--refresh'])).err).toBe('');
  });

  it('exits 1 with the collateral code when a service fails', async () => {
    const notFound = await tresor(snpArgs());
    expect(notFound.code).toBe(1);
    expect(notFound.err).toMatch(
      /^error COLLATERAL_NOT_FOUND: VCEK \(Milan\): http:\/\/127\.0\.0\.1:\d+\/vcek\/v1\/Milan\/\w+\?blSPL=2.* answered HTTP 404/,
    );
    expect(notFound.err).toMatch(/\nfix: /);
    server.serve(GSG_VCEK_PATH, { status: 503 });
    const down = await tresor([...snpArgs(), '--retries', '0']);
    expect(down.code).toBe(1);
    expect(down.err).toMatch(/^error COLLATERAL_FETCH_FAILED: .*failed 1 time, last with HTTP 503/);
  });

  it('exits 2 for unusable flags and input', async () => {
    const report = testdataPath(`${GSG}/report.bin`);
    const quote = testdataPath(`${TDX}/quote.bin`);
    const cases: [string[], RegExp][] = [
      [['attest', 'fetch', '--out', out], /give exactly one of --report/],
      [
        ['attest', 'fetch', '--report', report, '--quote', quote, '--out', out],
        /give exactly one of --report/,
      ],
      [
        ['attest', 'fetch', '--tee', 'tdx', '--report', report, '--out', out],
        /--report is snp input, not input for --tee tdx/,
      ],
      [
        ['attest', 'fetch', '--tee', 'sample', '--report', report, '--out', out],
        /sample TEE has no vendor collateral/,
      ],
      [['attest', 'fetch', '--quote', quote, '--product', 'Milan', '--out', out], /apply to SEV-SNP/],
      [
        ['attest', 'fetch', '--report', report, '--product', 'Zen', '--out', out],
        /expected one of Milan, Genoa, Turin/,
      ],
      [
        ['attest', 'fetch', '--report', report, '--out', out, '--kds-url', 'http://kds.example'],
        /must be an https:\/\/ URL/,
      ],
      [['attest', 'fetch', '--report', report, '--out', out, '--timeout', '0'], /whole seconds/],
      [['attest', 'fetch', '--report', join(out, 'missing.bin'), '--out', out], /cannot read --report/],
      [['attest', 'fetch', '--report', report, '--out', out], /does not record its processor product/],
      [['attest', 'fetch', '--rim-id', '../../etc/passwd', '--out', out], /is not a RIM ID/],
      [['attest', 'fetch', '--report', report], /required option '--out <dir>'/],
    ];
    for (const [args, message] of cases) {
      const result = await tresor(args);
      expect({ args, code: result.code }).toEqual({ args, code: 2 });
      expect(result.err).toMatch(message);
    }
    expect(server.requests).toEqual([]);
  });
});
