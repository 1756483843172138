import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readTestdataJson, testdataPath } from '../../../../test/support/testdata.js';
import { parseServingConfig } from '../config.js';
import { commandGpuEvidenceSource, evidenceListOf, gpuEvidenceSourceOf } from './gpu-command-source.js';
import { noGpu, requiredGpuEvidence } from './gpu-evidence.js';

// Real evidence of eight H100s (NVIDIA/nvtrust PPCIe verifier test data), all for this nonce.
const RECORDED = 'attestation/nvidia/nvtrust-ppcie-8gpu/gpu_evidence.json';
const RECORDED_NONCE = '4760e30534a0621357d458b1a7936551b5dc4cd1e69718adf7ed9fb0252a537e';
const AT = () => new Date('2025-06-01T00:00:00Z');

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tresor-gpu-command-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A stand-in for nvattest: prints a file, after checking it was given the nonce argument. */
function printing(file: string, extra = ''): string[] {
  return [
    process.execPath,
    '-e',
    `if (!/^[0-9a-f]{64}$/.test(process.argv[2])) process.exit(9); ${extra} process.stdout.write(require('node:fs').readFileSync(process.argv[1]))`,
    file,
    '{nonce}',
  ];
}

async function output(name: string, content: string): Promise<string> {
  const file = join(dir, name);
  await writeFile(file, content);
  return file;
}

describe('GPU evidence from a local attestation command', () => {
  it('returns the recorded nvtrust list for its own nonce, verified', async () => {
    const source = commandGpuEvidenceSource({ command: printing(testdataPath(RECORDED)), now: AT });
    const evidence = await source.collect(RECORDED_NONCE);
    expect(evidence).not.toBeNull();
    const list = evidence!.kbsEvidence as { nonce: string }[];
    expect(list).toHaveLength(8);
    expect(list.every((gpu) => gpu.nonce === RECORDED_NONCE)).toBe(true);
    expect(JSON.parse(new TextDecoder().decode(evidence!.bytes))).toEqual(readTestdataJson(RECORDED));
  });

  it("accepts nvattest's document shape (evidences, result_code 0)", async () => {
    const document = { evidences: readTestdataJson(RECORDED), result_code: 0, result_message: 'Ok' };
    const file = await output('nvattest.json', JSON.stringify(document));
    const evidence = await commandGpuEvidenceSource({ command: printing(file), now: AT }).collect(
      RECORDED_NONCE,
    );
    expect((evidence!.kbsEvidence as unknown[]).length).toBe(8);
  });

  it('refuses evidence for another nonce (GPU_NONCE_MISMATCH) — never returns unbound evidence', async () => {
    const source = commandGpuEvidenceSource({ command: printing(testdataPath(RECORDED)), now: AT });
    await expect(source.collect('00'.repeat(32))).rejects.toMatchObject({ code: 'GPU_NONCE_MISMATCH' });
  });

  it('refuses evidence whose signature does not verify', async () => {
    const list = readTestdataJson(RECORDED) as { evidence: string }[];
    const bytes = Buffer.from(list[3]!.evidence, 'base64');
    bytes[bytes.length - 10] = (bytes[bytes.length - 10] ?? 0) ^ 0x01;
    list[3]!.evidence = bytes.toString('base64');
    const file = await output('flipped.json', JSON.stringify(list));
    const source = commandGpuEvidenceSource({ command: printing(file), now: AT });
    await expect(source.collect(RECORDED_NONCE)).rejects.toMatchObject({
      code: 'ATTESTATION_SIGNATURE_INVALID',
      message: expect.stringContaining('gpu3_spdm_signature') as unknown,
    });
  });

  it('refuses garbage output with ATTESTATION_EVIDENCE_MALFORMED', async () => {
    for (const [name, content] of [
      ['text', 'NVML: Success\nCC status: ON\n'],
      ['object', '{"gpus": []}'],
      ['not-evidence', '[{"hello": 1}]'],
      ['bad-base64', JSON.stringify([{ evidence: '!!', certificate: '!!' }])],
    ] as const) {
      const source = commandGpuEvidenceSource({ command: printing(await output(name, content)), now: AT });
      await expect(source.collect(RECORDED_NONCE), name).rejects.toMatchObject({
        code: 'ATTESTATION_EVIDENCE_MALFORMED',
      });
    }
  });

  it('refuses a failed collection: non-zero exit, non-zero result_code, too much output', async () => {
    const failing = commandGpuEvidenceSource({
      command: [process.execPath, '-e', 'process.exit(4)', '{nonce}'],
    });
    await expect(failing.collect(RECORDED_NONCE)).rejects.toMatchObject({ code: 'EVIDENCE_UNAVAILABLE' });
    const file = await output(
      'rc.json',
      JSON.stringify({ evidences: [], result_code: 12, result_message: 'NVML error' }),
    );
    await expect(
      commandGpuEvidenceSource({ command: printing(file) }).collect(RECORDED_NONCE),
    ).rejects.toMatchObject({
      code: 'EVIDENCE_UNAVAILABLE',
    });
    const large = commandGpuEvidenceSource({
      command: printing(testdataPath(RECORDED)),
      maxOutputBytes: 1000,
    });
    await expect(large.collect(RECORDED_NONCE)).rejects.toMatchObject({
      code: 'ATTESTATION_EVIDENCE_MALFORMED',
    });
  });

  it('answers null when no GPU is in CC mode: the command is missing, or lists no GPU', async () => {
    const missing = commandGpuEvidenceSource({ command: [join(dir, 'no-nvattest'), '--nonce', '{nonce}'] });
    expect(await missing.collect(RECORDED_NONCE)).toBeNull();
    const empty = await output(
      'empty.json',
      JSON.stringify({ evidences: [], result_code: 0, result_message: 'Ok' }),
    );
    expect(await commandGpuEvidenceSource({ command: printing(empty) }).collect(RECORDED_NONCE)).toBeNull();
  });

  it('makes a replica that requires a GPU refuse with GPU_CC_REQUIRED, naming why', async () => {
    const missing = commandGpuEvidenceSource({ command: [join(dir, 'no-nvattest'), '{nonce}'] });
    await expect(requiredGpuEvidence(missing, RECORDED_NONCE, true)).rejects.toMatchObject({
      code: 'GPU_CC_REQUIRED',
    });
    expect(await requiredGpuEvidence(missing, RECORDED_NONCE, false)).toBeNull();
    const wrong = commandGpuEvidenceSource({ command: printing(testdataPath(RECORDED)), now: AT });
    await expect(requiredGpuEvidence(wrong, '11'.repeat(32), true)).rejects.toMatchObject({
      code: 'GPU_CC_REQUIRED',
      details: { refusal: 'GPU_NONCE_MISMATCH' },
    });
  });

  it('refuses a command without {nonce}', () => {
    expect(() => commandGpuEvidenceSource({ command: ['nvattest', 'collect-evidence'] })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });

  it('output parser: any bytes either parse to a list or refuse with a catalogue code', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc.json().map((j) => new TextEncoder().encode(j)),
        ),
        (bytes) => {
          try {
            const list = evidenceListOf(bytes);
            expect(list === null || (Array.isArray(list) && list.length > 0)).toBe(true);
          } catch (e) {
            expect(['ATTESTATION_EVIDENCE_MALFORMED', 'EVIDENCE_UNAVAILABLE']).toContain(
              (e as { code?: string }).code,
            );
          }
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });
});

describe('gpu configuration', () => {
  const base = {
    mode: 'local',
    trust: { url: 'https://127.0.0.1:1' },
    tee: { source: 'sample', signingKeyFile: 'k.jwk' },
    engine: { kind: 'echo' },
  };
  it('defaults to no GPU source', () => {
    expect(gpuEvidenceSourceOf(parseServingConfig(base).gpu)).toBe(noGpu);
  });
  it('builds the command source', () => {
    const config = parseServingConfig({
      ...base,
      gpu: { source: 'command', command: ['nvattest', '--nonce', '{nonce}'] },
    });
    expect(gpuEvidenceSourceOf(config.gpu).kind).toBe('command');
  });
  it('refuses a command source without a command, a command without {nonce}, or a command with source none', () => {
    for (const gpu of [
      { source: 'command' },
      { source: 'command', command: ['nvattest'] },
      { source: 'none', command: ['nvattest', '{nonce}'] },
      { source: 'nvml' },
    ]) {
      expect(() => parseServingConfig({ ...base, gpu }), JSON.stringify(gpu)).toThrow(
        expect.objectContaining({ code: 'CONFIG_INVALID' }),
      );
    }
  });
});
