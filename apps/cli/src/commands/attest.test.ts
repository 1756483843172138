import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { runtimeDataHash } from '@tresor/crypto';
import { createSampleEvidence, SampleSigningKey } from '@tresor/attestation';
import { captureIo } from '../../../../test/support/cli-io.js';
import { readTestdata, readTestdataJson, testdataPath } from '../../../../test/support/testdata.js';
import {
  claimAt,
  requiredClaimPaths,
  testdataVector,
  type TestdataVector,
} from '../../../../packages/attestation/src/conformance/testdata-vectors.js';
import { run } from '../index.js';

interface VerifyJson {
  tee: string;
  valid: boolean;
  error: string | null;
  checks: Record<string, { ok: boolean; code?: string }>;
  claims: unknown;
  appraisal?: { status: string; errors: string[] };
}

/** Each testdata vector with the paths of its role files, so its `inputs` become command-line flags. */
const vectors = (['snp', 'tdx', 'nvidia'] as const).flatMap((tee) =>
  readdirSync(testdataPath(`attestation/${tee}`))
    .sort()
    .map((name) => {
      const dir = `attestation/${tee}/${name}`;
      const expected = readTestdataJson(`${dir}/expected.json`) as { inputs: Record<string, unknown> };
      const vector = testdataVector(expected, (file) => readTestdata(`${dir}/${file}`));
      const flags = Object.keys(vector.files).flatMap((role) => [
        `--${role.replaceAll('_', '-')}`,
        testdataPath(`${dir}/${String(expected.inputs[role])}`),
      ]);
      return { vector, flags };
    }),
);

async function verify(args: readonly string[], io = captureIo()) {
  const code = await run(['attest', 'verify', ...args], io);
  return { code, out: io.out(), err: io.err() };
}

function requiredClaims(vector: TestdataVector, claims: unknown): Record<string, unknown> {
  return Object.fromEntries(requiredClaimPaths(vector).map((path) => [path, claimAt(claims, path)]));
}

/** A local-development policy: the sample TEE and any code on any machine, report data still bound. */
const DEV_POLICY = '{"id":"dev","allowSampleTee":true,"measurements":"any","hardwareIds":"any"}';

const tmp = mkdtempSync(join(tmpdir(), 'tresor-attest-'));
function tmpFile(name: string, content: string | Uint8Array): string {
  const path = join(tmp, name);
  writeFileSync(path, content);
  return path;
}

describe('tresor attest verify --json over the test data', () => {
  for (const { vector, flags } of vectors) {
    for (const c of vector.cases) {
      it(`${vector.id} at ${c.verifyAt.toISOString()}: ${c.valid ? 'valid, exit 0' : 'invalid, exit 1'}`, async () => {
        const { code, out, err } = await verify([...flags, '--at', c.verifyAt.toISOString(), '--json']);
        const json = JSON.parse(out) as VerifyJson;
        expect(Object.keys(json)).toEqual(['tee', 'valid', 'error', 'checks', 'claims']);
        expect({ code, tee: json.tee, valid: json.valid }).toEqual({
          code: c.valid ? 0 : 1,
          tee: vector.tee,
          valid: c.valid,
        });
        const firstFailed = Object.values(json.checks).find((check) => !check.ok);
        expect(json.error).toBe(firstFailed?.code ?? null);
        if (c.valid) expect(err).toBe('');
        else expect(err).toMatch(new RegExp(`^error ${json.error}: check \\w+ failed: .+\\nfix: `));
        expect(requiredClaims(vector, json.claims)).toEqual(requiredClaims(vector, vector.claims));
      });
    }
  }
});

describe('tresor attest verify', () => {
  const gsg = vectors.find((v) => v.vector.id === 'snp/gsg-milan-v2')!;

  it('infers the TEE, defaults --at to the clock, and prints a readable table', async () => {
    const { code, out } = await verify(gsg.flags, captureIo({}, new Date('2025-06-01T00:00:00Z')));
    expect(code).toBe(0);
    expect(out).toMatch(/^AMD SEV-SNP report: VALID\nverified at 2025-06-01T00:00:00.000Z\n/);
    expect(out).toContain('✓ report_signature');
    expect(out).toMatch(/\n {2}policy\.debug +true\n/);
    const late = await verify(gsg.flags, captureIo({}, new Date('2030-01-01T00:00:00Z')));
    expect(late.code).toBe(1);
    expect(late.out).toMatch(/^AMD SEV-SNP report: INVALID \(ATTESTATION_CERT_EXPIRED\)/);
    expect(late.out).toContain('✗ certs_valid_at_time  ATTESTATION_CERT_EXPIRED');
    expect(late.err).toMatch(/^error ATTESTATION_CERT_EXPIRED: check certs_valid_at_time failed: .+\nfix: /);
  });

  it('reads the NVIDIA JSON list and prints per-GPU claims', async () => {
    const list = vectors.find((v) => v.vector.id === 'nvidia/nvtrust-ppcie-8gpu')!;
    const { code, out } = await verify([...list.flags, '--at', '2025-06-01T00:00:00Z']);
    expect(code).toBe(0);
    expect(out).toContain('gpus[7].driver_version');
    expect(out).toContain('✓ gpu7_spdm_signature');
  });

  it('appraises with --policy: the sample TEE is refused by default and allowed only explicitly', async () => {
    const key = SampleSigningKey.generate(() => new Uint8Array(32).fill(11));
    const runtimeData = { nonce: 'abc' };
    const evidence = tmpFile(
      'sample.json',
      createSampleEvidence({ reportData: await runtimeDataHash(runtimeData), svn: 4, signingKey: key }),
    );
    const keyFile = tmpFile('sample.jwk', JSON.stringify(key.verifyKey.toJwk()));
    const runtime = tmpFile('runtime.json', JSON.stringify(runtimeData));
    const base = ['--evidence', evidence, '--sample-key', keyFile, '--runtime-data', runtime, '--json'];

    const refused = await verify([...base, '--policy', tmpFile('default.json', '{}')]);
    expect(refused.code).toBe(1);
    const refusedJson = JSON.parse(refused.out) as VerifyJson;
    expect(refusedJson).toMatchObject({ tee: 'sample', valid: false, error: 'SAMPLE_TEE_NOT_ALLOWED' });
    expect(refusedJson.appraisal).toMatchObject({
      status: 'contraindicated',
      errors: ['SAMPLE_TEE_NOT_ALLOWED', 'MEASUREMENT_NOT_ALLOWED', 'RESIDENCY_VIOLATION'],
    });
    expect(refused.err).toMatch(/^error SAMPLE_TEE_NOT_ALLOWED: /);

    const allowed = await verify([...base, '--policy', tmpFile('dev.json', DEV_POLICY)]);
    expect(allowed.code).toBe(0);
    const allowedJson = JSON.parse(allowed.out) as VerifyJson;
    expect(allowedJson).toMatchObject({ valid: true, error: null, claims: { svn: 4, insecure: true } });
    expect(allowedJson.checks.report_data_bound?.ok).toBe(true);
    expect(allowedJson.appraisal?.status).toBe('warning');

    const table = await verify([
      ...base.slice(0, -1),
      '--policy',
      tmpFile('dev2.json', DEV_POLICY.replace('"id":"dev",', '')),
    ]);
    expect(table.out).toMatch(/^sample TEE evidence \(software stand-in: no hardware protects it\): VALID\n/);
    expect(table.out).toContain('appraised against policy default: warning');
    expect(table.out).toContain('trust vector (AR4SI)');

    const other = tmpFile('other-runtime.json', '{"nonce":"abd"}');
    const mismatch = await verify([
      ...base.slice(0, 4),
      '--runtime-data',
      other,
      '--policy',
      tmpFile('dev3.json', DEV_POLICY.replace('"id":"dev",', '')),
    ]);
    expect(mismatch.code).toBe(1);
    expect(mismatch.err).toMatch(/^error REPORT_DATA_MISMATCH: check report_data_bound failed/);
  });

  it('exits 2 for unreadable or unusable input, naming the code', async () => {
    const report = testdataPath('attestation/snp/gsg-milan-v2/report.bin');
    const cases: [string[], string][] = [
      [['--report', join(tmp, 'missing.bin'), '--signer-cert', report], 'INPUT_UNREADABLE'],
      [
        ['--report', tmpFile('short.bin', new Uint8Array(100)), '--signer-cert', report],
        'ATTESTATION_EVIDENCE_MALFORMED',
      ],
      [[...gsg.flags, '--at', 'yesterday'], 'USAGE_INVALID'],
      [[...gsg.flags, '--at', '2025-06-01'], 'USAGE_INVALID'],
      [[...gsg.flags, '--tee', 'sgx'], 'ATTESTATION_TEE_UNSUPPORTED'],
      [[...gsg.flags, '--policy', tmpFile('typo.json', '{"alowDebug":true}')], 'CONFIG_INVALID'],
      [[...gsg.flags, '--policy', tmpFile('broken.json', '{')], 'INPUT_MALFORMED'],
      [[...gsg.flags, '--runtime-data', tmpFile('rd.json', '{}')], 'USAGE_INVALID'],
      [[...gsg.flags, '--product', 'Naples'], 'USAGE_INVALID'],
      [['--evidence', tmpFile('junk.txt', 'hello')], 'ATTESTATION_TEE_UNSUPPORTED'],
      [['--report', report], 'USAGE_INVALID'],
      [[], 'USAGE_INVALID'],
      [['--report', report, '--signer-cert', tmpFile('notcert.pem', 'nope')], 'INPUT_MALFORMED'],
    ];
    for (const [args, expected] of cases) {
      const { code, err, out } = await verify(args);
      expect({ args, code, err: err.split(':')[0], out }).toEqual({
        args,
        code: 2,
        err: `error ${expected}`,
        out: '',
      });
    }
  });

  it('runs as the built `tresor` bin', () => {
    const bin = fileURLToPath(new URL('../../bin/tresor.js', import.meta.url));
    const child = spawnSync(
      process.execPath,
      [bin, 'attest', 'verify', ...gsg.flags, '--at', '2030-01-01T00:00:00Z', '--json'],
      {
        encoding: 'utf8',
        timeout: 30_000,
      },
    );
    expect(child.status).toBe(1);
    expect(JSON.parse(child.stdout)).toMatchObject({
      tee: 'snp',
      valid: false,
      error: 'ATTESTATION_CERT_EXPIRED',
    });
    expect(child.stderr).toMatch(/^error ATTESTATION_CERT_EXPIRED: /);
  });
});
