import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AppraisalInput } from '@tresor/attestation';
import { isTresorError } from '@tresor/protocol';
import { parseInitDataToml, verifyInitData } from '@tresor/trust';
import {
  buildInitData,
  DEFAULT_AGENT_POLICY,
  encodeInitDataAnnotation,
  renderInitDataToml,
  tomlString,
  type InitDataInput,
} from './init-data.js';

const CERT = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUX2xh\n-----END CERTIFICATE-----\n';
const input: InitDataInput = {
  component: 'serving',
  tee: 'snp',
  imageDigest: `sha256:${'5f'.repeat(32)}`,
  release: '1.4.0',
  kbsUrl: 'https://tresor-trust.tresor-trust.svc.cluster.local:8443',
  kbsCertificate: CERT,
  tenant: 'acme',
  agentPolicy: DEFAULT_AGENT_POLICY,
};

/** The part of an appraisal input the init-data check reads: the TEE and its launch fields. */
function evidence(tee: 'snp' | 'tdx', measurements: Record<string, string>): AppraisalInput {
  return { tee, measurements } as unknown as AppraisalInput;
}

describe('CoCo init data', () => {
  it('is an initdata document the trust service parses, with the Tresor members it reads', () => {
    const toml = renderInitDataToml(input);
    const document = parseInitDataToml(toml);
    expect(document.version).toBe('0.1.0');
    expect(document.algorithm).toBe('sha256');
    expect(document.data['tresor-component']).toBe('serving');
    expect(document.data['tresor-image']).toBe(input.imageDigest);
    expect(document.data['tresor-tenant']).toBe('acme');
    expect(document.data['tresor-release']).toBe('1.4.0');
    expect(document.data['policy.rego']).toBe(DEFAULT_AGENT_POLICY);
    expect(document.data['aa.toml']).toContain(`[token_configs.kbs]\nurl = "${input.kbsUrl}"`);
    expect(document.data['aa.toml']).toContain(CERT.trim());
    expect(document.data['cdh.toml']).toContain(`[kbc]\nname = "cc_kbc"\nurl = "${input.kbsUrl}"`);
  });

  it('refuses exec, policy replacement and RNG reseeding from the host in the default agent policy', () => {
    expect(DEFAULT_AGENT_POLICY).toContain('default ExecProcessRequest := false');
    expect(DEFAULT_AGENT_POLICY).toContain('default SetPolicyRequest := false');
    expect(DEFAULT_AGENT_POLICY).toContain('default ReseedRandomDevRequest := false');
    expect(DEFAULT_AGENT_POLICY).not.toMatch(/ExecProcessRequest := true|SetPolicyRequest := true/);
  });

  it('is bound to SNP HOST_DATA: the trust service accepts it against the SHA-256 it computes', async () => {
    const data = buildInitData(input);
    expect(data.algorithm).toBe('sha256');
    expect(data.digest).toBe(createHash('sha256').update(data.toml).digest('hex'));
    expect(data.measurement).toEqual({ name: 'host_data', value: data.digest });
    const verified = await verifyInitData(
      { body: data.toml },
      evidence('snp', { host_data: data.digest }),
      null,
    );
    expect(verified?.digest).toBe(data.digest);
    expect(verified?.tenant).toBe('acme');
    expect(verified?.component).toBe('serving');
    expect(verified?.imageDigest).toBe(input.imageDigest);
  });

  it('is bound to TDX MRCONFIGID with SHA-384', async () => {
    const data = buildInitData({ ...input, tee: 'tdx' });
    expect(data.algorithm).toBe('sha384');
    expect(data.digest).toHaveLength(96);
    expect(data.measurement.name).toBe('mrconfigid');
    const verified = await verifyInitData(
      { body: data.toml },
      evidence('tdx', { mrconfigid: data.digest }),
      null,
    );
    expect(verified?.algorithm).toBe('sha384');
  });

  it('does not verify against another pod’s launch field', async () => {
    const gateway = buildInitData({ ...input, component: 'gateway', tenant: undefined });
    const serving = buildInitData(input);
    await expect(
      verifyInitData({ body: serving.toml }, evidence('snp', { host_data: gateway.digest }), null),
    ).rejects.toMatchObject({ code: 'INIT_DATA_MISMATCH' });
  });

  it('annotates base64(gzip(TOML)) that decodes back to the measured bytes, the same every time', () => {
    const data = buildInitData(input);
    const decoded = gunzipSync(Buffer.from(data.annotation, 'base64')).toString('utf8');
    expect(decoded).toBe(data.toml);
    expect(buildInitData(input).annotation).toBe(data.annotation);
    const header = Buffer.from(data.annotation, 'base64').subarray(0, 10);
    expect([...header.subarray(4, 8)]).toEqual([0, 0, 0, 0]); // mtime 0
    expect(header[9]).toBe(3); // OS fixed to Unix
  });

  it('changes the digest when anything measured changes', () => {
    const base = buildInitData(input).digest;
    const variants: Partial<InitDataInput>[] = [
      { imageDigest: `sha256:${'5e'.repeat(32)}` },
      { tenant: 'other' },
      { tenant: undefined },
      { kbsUrl: 'https://trust.example:8443' },
      { kbsCertificate: undefined },
      { release: '1.4.1' },
      { agentPolicy: 'package agent_policy\n' },
    ];
    for (const change of variants) expect(buildInitData({ ...input, ...change }).digest).not.toBe(base);
  });

  it('refuses content that would end the TOML literal early', () => {
    expect(() => renderInitDataToml({ ...input, agentPolicy: "x = '''" })).toThrow(RangeError);
  });

  it('escapes TOML basic strings so any member value parses back unchanged', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme', maxLength: 40 }), (value) => {
        const parsed = parseInitDataToml(
          `version = "0.1.0"\nalgorithm = "sha256"\n[data]\nk = ${tomlString(value)}\n`,
        );
        expect(parsed.data.k).toBe(value);
      }),
      { numRuns: 300 },
    );
  });

  it('round-trips any document through the annotation encoding', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 2000 }), (text) => {
        expect(gunzipSync(Buffer.from(encodeInitDataAnnotation(text), 'base64')).toString('utf8')).toBe(
          Buffer.from(text, 'utf8').toString('utf8'),
        );
      }),
      { numRuns: 100 },
    );
  });

  it('never yields a document the trust service refuses, whatever the tenant and release', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/),
        fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._+-]{0,20}$/),
        (tenant, release) => {
          try {
            parseInitDataToml(renderInitDataToml({ ...input, tenant, release }));
          } catch (err) {
            expect.fail(isTresorError(err) ? err.message : String(err));
          }
        },
      ),
      { numRuns: 100 },
    );
  });
});
