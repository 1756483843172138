import { describe, expect, it } from 'vitest';
import { readTestdata, readTestdataJson, vectorDirs } from '../../../../test/support/testdata.js';
import { nvidiaVerifier, type NvidiaEndorsements } from './verifier.js';
import type { GpuClaims, GpuListClaims } from './claims.js';
import { gpuEvidenceHash, gpuEvidenceHashes } from './evidence-hash.js';
import {
  NVIDIA_DEVICE_IDENTITY_CA_SHA256,
  certificateSha256,
  nvidiaDeviceIdentityCa,
} from './device-root.js';
import { parseCertificates } from '../certs.js';

/** The parts of a testdata expected.json this suite reads. */
interface Expected {
  readonly inputs: Readonly<Record<string, string>>;
  readonly cases: readonly {
    readonly verify_at: string;
    readonly expected_outcome: 'valid' | 'invalid';
    readonly computed: { readonly checks: Readonly<Record<string, boolean>> };
  }[];
  readonly claims: Readonly<Record<string, unknown>>;
}

function loadVector(dir: string): {
  evidence: Uint8Array;
  endorsements: NvidiaEndorsements;
  expected: Expected;
} {
  const expected = readTestdataJson(`${dir}/expected.json`) as Expected;
  const file = (role: string): Uint8Array | undefined => {
    const name = expected.inputs[role];
    return name === undefined ? undefined : readTestdata(`${dir}/${name}`);
  };
  const certChain = file('cert_chain');
  const deviceRoot = file('nvidia_device_root');
  return {
    evidence: file('evidence')!,
    endorsements: {
      ...(certChain === undefined ? {} : { certChain }),
      ...(deviceRoot === undefined ? {} : { deviceRoot }),
    },
    expected,
  };
}

const HOPPER = 'attestation/nvidia/nvtrust-hopper-sample';
const PPCIE = 'attestation/nvidia/nvtrust-ppcie-8gpu';
const AT = new Date('2025-06-01T00:00:00Z');

describe('NVIDIA verifier on every testdata vector', () => {
  const dirs = vectorDirs('nvidia');

  it('finds both NVIDIA vectors', () => {
    expect(dirs).toEqual([HOPPER, PPCIE]);
  });

  for (const dir of dirs) {
    const { evidence, endorsements, expected } = loadVector(dir);
    for (const c of expected.cases) {
      it(`${dir} at ${c.verify_at}: ${c.expected_outcome}, every computed check`, async () => {
        const result = await nvidiaVerifier.verify(nvidiaVerifier.parse(evidence), endorsements, {
          now: new Date(c.verify_at),
        });
        expect(result.valid).toBe(c.expected_outcome === 'valid');
        expect(result.error).toBe(c.expected_outcome === 'valid' ? null : expect.any(String));
        for (const [name, ok] of Object.entries(c.computed.checks)) {
          expect({ name, ok: result.checks[name]?.ok }).toEqual({ name, ok });
        }
      });
    }

    it(`${dir}: claims equal expected.json field by field`, async () => {
      const result = await nvidiaVerifier.verify(nvidiaVerifier.parse(evidence), endorsements, { now: AT });
      const claims = result.claims as Record<string, unknown>;
      const wanted = expected.claims;
      if ('gpus' in wanted) {
        const gpus = wanted.gpus as readonly Record<string, unknown>[];
        const got = claims as unknown as GpuListClaims;
        expect(got.gpu_count).toBe(wanted.gpu_count);
        expect(got.gpus).toHaveLength(gpus.length);
        gpus.forEach((gpu, i) => {
          for (const [key, value] of Object.entries(gpu)) {
            expect({ gpu: i, key, value: (got.gpus[i] as unknown as Record<string, unknown>)[key] }).toEqual({
              gpu: i,
              key,
              value,
            });
          }
        });
      } else {
        for (const [key, value] of Object.entries(wanted)) {
          expect({ key, value: claims[key] }).toEqual({ key, value });
        }
      }
      // Claims are plain JSON: what `--json` prints is what the verifier returned.
      expect(JSON.parse(JSON.stringify(result.claims))).toEqual(result.claims);
    });
  }
});

describe('NVIDIA verifier results beyond expected.json', () => {
  const hopper = loadVector(HOPPER);
  const ppcie = loadVector(PPCIE);

  it('adds the FWID binding check, the measurement blocks and the chip identity', async () => {
    const result = await nvidiaVerifier.verify(nvidiaVerifier.parse(hopper.evidence), hopper.endorsements, {
      now: AT,
    });
    expect(Object.keys(result.checks)).toEqual([
      'spdm_signature',
      'chain_signatures',
      'chain_anchored_to_nvidia_device_root',
      'chain_valid_at_time',
      'fwid_matches_leaf_certificate',
    ]);
    expect(result.checks.fwid_matches_leaf_certificate).toEqual({ ok: true });
    const claims = result.claims as GpuClaims;
    expect(claims.measurement_blocks).toHaveLength(64);
    expect(claims.measurement_blocks[1]).toEqual({
      index: 2,
      dmtf_type: 1,
      value:
        '8048dfd18fe229bf16eb9d30cca0f11a24dafe6eb731de1462984645a0b189b77c4e4e17de727a5e19e3d07de51da338',
    });
    // The BROM certificate's serialNumber, the leaf's issuer: 2.5.4.5=41431D480FE5E87274.
    expect(claims.device_id).toBe('41431d480fe5e87274');
    expect(claims.opaque_data.driver_version).toBe('3535302e39302e303700');
    expect(claims.opaque_data.vbios_version).toBe('009f009601000000');
    expect(claims.evidence_sha256).toBe('c438e7e714c05a9b6734ac33d7024f4732ba23ca08894424e9e755853c0f8618');
  });

  it('fills the appraisal input: gpu<i>.block<n> measurements, chip ids, nonce, driver and VBIOS', async () => {
    const single = await nvidiaVerifier.verify(nvidiaVerifier.parse(hopper.evidence), hopper.endorsements, {
      now: AT,
    });
    expect(single.appraisal).toMatchObject({
      tee: 'nvidia',
      insecure: false,
      debug: false,
      reportData: null,
      vmpl: null,
      hardwareIds: ['41431d480fe5e87274'],
      nonce: '931d8dd0add203ac3d8b4fbde75e115278eefcdceac5b87671a748f32364dfcb',
      tcb: { 'gpu0.driver_version': '550.90.07', 'gpu0.vbios_version': '96.00.9f.00.01' },
    });
    expect(Object.keys(single.appraisal.measurements)).toHaveLength(64);
    expect(single.appraisal.measurements['gpu0.block2']).toBe(
      '8048dfd18fe229bf16eb9d30cca0f11a24dafe6eb731de1462984645a0b189b77c4e4e17de727a5e19e3d07de51da338',
    );

    const list = await nvidiaVerifier.verify(nvidiaVerifier.parse(ppcie.evidence), ppcie.endorsements, {
      now: AT,
    });
    expect(Object.keys(list.appraisal.measurements)).toHaveLength(8 * 64);
    expect(list.appraisal.measurements['gpu7.block64']).toMatch(/^[0-9a-f]{96}$/);
    expect(new Set(list.appraisal.hardwareIds).size).toBe(8);
    expect(list.appraisal.hardwareIds[0]).toBe('412921ce551e4eeda3');
    expect(list.appraisal.nonce).toBe('4760e30534a0621357d458b1a7936551b5dc4cd1e69718adf7ed9fb0252a537e');
    expect(list.appraisal.tcb['gpu7.driver_version']).toBe('590.12');
  });

  it('passes an expected nonce, a supplied pinned root and a complete reference manifest', async () => {
    const evidence = nvidiaVerifier.parse(hopper.evidence);
    const first = await nvidiaVerifier.verify(evidence, hopper.endorsements, { now: AT });
    const blocks = (first.claims as GpuClaims).measurement_blocks;
    const manifest = {
      measurements: Object.fromEntries(blocks.map((b) => [String(b.index), [b.value]])),
    };
    const result = await nvidiaVerifier.verify(
      evidence,
      {
        ...hopper.endorsements,
        expectedNonce: '931D8DD0ADD203AC3D8B4FBDE75E115278EEFCDCEAC5B87671A748F32364DFCB',
        referenceManifest: manifest,
      },
      { now: AT },
    );
    expect(result.error).toBeNull();
    expect(result.checks.nonce_matches_expected_nonce).toEqual({ ok: true });
    expect(result.checks.measurements_match_reference_manifest).toEqual({ ok: true });
  });

  it('verifies without a supplied root (the pinned one is used) and is deterministic', async () => {
    const evidence = nvidiaVerifier.parse(hopper.evidence);
    const { certChain } = hopper.endorsements;
    const a = await nvidiaVerifier.verify(evidence, { certChain: certChain! }, { now: AT });
    const b = await nvidiaVerifier.verify(evidence, { certChain: certChain! }, { now: AT });
    expect(a.valid).toBe(true);
    expect(b).toEqual(a);
  });

  it('accepts the raw binary report, and a Trustee capture with one extra byte after the signature', async () => {
    const hex = new TextDecoder().decode(hopper.evidence).trim();
    const raw = Uint8Array.from(hex.match(/../g)!.map((h) => parseInt(h, 16)));
    const trustee = new Uint8Array([...raw, 0]);
    for (const [bytes, trailing] of [
      [raw, 0],
      [trustee, 1],
    ] as const) {
      const result = await nvidiaVerifier.verify(nvidiaVerifier.parse(bytes), hopper.endorsements, {
        now: AT,
      });
      expect(result.valid).toBe(true);
      expect((result.claims as GpuClaims).trailing_bytes_after_signature).toBe(trailing);
      expect((result.claims as GpuClaims).evidence_sha256).toBe(gpuEvidenceHash(bytes));
    }
  });

  it('hashes each GPU evidence as transmitted (after hex/base64 decoding), in order', () => {
    expect(gpuEvidenceHashes(nvidiaVerifier.parse(hopper.evidence))).toEqual([
      'c438e7e714c05a9b6734ac33d7024f4732ba23ca08894424e9e755853c0f8618',
    ]);
    const list = JSON.parse(new TextDecoder().decode(ppcie.evidence)) as { evidence: string }[];
    expect(gpuEvidenceHashes(nvidiaVerifier.parse(ppcie.evidence))).toEqual(
      list.map((g) => gpuEvidenceHash(Uint8Array.from(atob(g.evidence), (c) => c.charCodeAt(0)))),
    );
    expect(gpuEvidenceHash(new Uint8Array())).toBe(
      'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    );
  });

  it('pins the NVIDIA Device Identity CA by fingerprint, equal to the nvtrust root in testdata', () => {
    const pinned = nvidiaDeviceIdentityCa();
    expect(certificateSha256(pinned)).toBe(NVIDIA_DEVICE_IDENTITY_CA_SHA256);
    for (const dir of [HOPPER, PPCIE]) {
      const [root] = parseCertificates(readTestdata(`${dir}/nvidia_device_identity_root.pem`));
      expect(certificateSha256(root!)).toBe(NVIDIA_DEVICE_IDENTITY_CA_SHA256);
    }
  });
});
