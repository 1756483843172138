/**
 * NVIDIA GPU evidence from a local attestation command, the way production collects it: NVIDIA's
 * Attestation SDK CLI, `nvattest collect-evidence --device gpu --nonce <hex> --format json`, which
 * reads each CC-mode GPU's SPDM evidence through NVML (`nvmlDeviceGetConfComputeGpuAttestationReport`
 * with the 32-byte nonce, and `nvmlDeviceGetConfComputeGpuCertificate` for the device chain) and
 * prints `{"evidences": [...], "result_code": 0, "result_message": "Ok"}`; or any tool that prints
 * the nvtrust JSON list (`[{"evidence", "certificate", "nonce", "arch", …}]`) the same SDK reads.
 *
 * Fail closed: the output is parsed and verified with our own NVIDIA verifier (SPDM signature,
 * device chain to NVIDIA's pinned root, and the signed nonce equal to the one asked for) before
 * it is returned, so unbound or forged evidence never leaves this source. A command that is not
 * installed, or a list with no GPU in it, means "no GPU in CC mode" (null): the start-up policy
 * then refuses with GPU_CC_REQUIRED when the configuration requires a GPU.
 */

import { spawn } from 'node:child_process';
import { createNvidiaVerifier } from '@tresor/attestation';
import { nodeSignatureVerifier } from '@tresor/attestation/node';
import { TresorError } from '@tresor/protocol';
import type { ServingConfig } from '../config.js';
import { noGpu, type GpuEvidence, type GpuEvidenceSource } from './gpu-evidence.js';

export interface CommandGpuEvidenceOptions {
  /** argv with `{nonce}` (64 hex digits), e.g. `["nvattest","collect-evidence","--device","gpu","--nonce","{nonce}","--format","json"]`. */
  readonly command: readonly string[];
  /** Bound on one collection; default 60 s. */
  readonly timeoutMs?: number;
  /** Largest output accepted; default 4 MiB (8 GPUs print about 100 KiB). */
  readonly maxOutputBytes?: number;
  /** The clock certificate validity is judged at (tests: the recorded evidence's date). */
  readonly now?: () => Date;
}

const NONCE = /^[0-9a-f]{64}$/;

/** Output of a command, or null when the command is not installed. */
async function runCommand(
  argv: readonly string[],
  timeoutMs: number,
  maxOutputBytes: number,
): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'ignore'], timeout: timeoutMs });
    const parts: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    child.stdout.on('data', (part: Buffer) => {
      size += part.length;
      if (size > maxOutputBytes) {
        tooLarge = true;
        child.kill('SIGKILL');
      } else parts.push(part);
    });
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') resolve(null);
      else
        reject(
          new TresorError(
            'EVIDENCE_UNAVAILABLE',
            `the GPU attestation command failed to run: ${err.message}`,
          ),
        );
    });
    child.once('close', (code, signal) => {
      if (tooLarge) {
        reject(
          new TresorError(
            'ATTESTATION_EVIDENCE_MALFORMED',
            `the GPU attestation command printed over ${String(maxOutputBytes)} bytes`,
          ),
        );
      } else if (code !== 0) {
        reject(
          new TresorError(
            'EVIDENCE_UNAVAILABLE',
            signal === 'SIGTERM'
              ? `the GPU attestation command did not finish within ${String(timeoutMs / 1000)} s`
              : `the GPU attestation command failed (${signal ?? `exit code ${String(code)}`}); check the driver and CC mode (nvidia-smi conf-compute)`,
          ),
        );
      } else resolve(Buffer.concat(parts));
    });
  });
}

/**
 * The nvtrust evidence list in a command's output: the list itself, or nvattest's document
 * (`evidences` with `result_code` 0). Null when it names no GPU.
 */
export function evidenceListOf(output: Uint8Array): unknown[] | null {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(output));
  } catch {
    throw new TresorError('ATTESTATION_EVIDENCE_MALFORMED', 'the GPU attestation command did not print JSON');
  }
  if (json !== null && typeof json === 'object' && !Array.isArray(json)) {
    const document = json as { evidences?: unknown; result_code?: unknown; result_message?: unknown };
    if (document.result_code !== undefined && document.result_code !== 0) {
      throw new TresorError(
        'EVIDENCE_UNAVAILABLE',
        `the GPU attestation command reported result_code ${JSON.stringify(document.result_code)} (${String(document.result_message).slice(0, 200)})`,
      );
    }
    json = document.evidences;
  }
  if (!Array.isArray(json)) {
    throw new TresorError(
      'ATTESTATION_EVIDENCE_MALFORMED',
      'the GPU attestation command printed neither an nvtrust evidence list nor an nvattest document with "evidences"',
    );
  }
  return json.length === 0 ? null : json;
}

/** The production GPU evidence source: a local attestation command, verified before use. */
export function commandGpuEvidenceSource(options: CommandGpuEvidenceOptions): GpuEvidenceSource {
  if (options.command.length === 0 || !options.command.some((part) => part.includes('{nonce}'))) {
    throw new TresorError('CONFIG_INVALID', 'gpu.command must pass {nonce} to the attestation command');
  }
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxOutputBytes = options.maxOutputBytes ?? 4 * 1024 * 1024;
  const now = options.now ?? (() => new Date());
  const verifier = createNvidiaVerifier({ signatures: nodeSignatureVerifier });
  return {
    kind: 'command',
    async collect(nonceHex: string): Promise<GpuEvidence | null> {
      const nonce = nonceHex.toLowerCase();
      if (!NONCE.test(nonce)) throw new TresorError('INTERNAL_ERROR', 'a GPU nonce is 64 hex digits');
      const argv = options.command.map((part) => part.replaceAll('{nonce}', nonce));
      const output = await runCommand(argv, timeoutMs, maxOutputBytes);
      if (output === null) return null;
      const list = evidenceListOf(output);
      if (list === null) return null;
      const bytes = new TextEncoder().encode(JSON.stringify(list));
      const result = await verifier.verify(verifier.parse(bytes), { expectedNonce: nonce }, { now: now() });
      if (!result.valid) {
        const failed = Object.entries(result.checks).find(([, check]) => !check.ok)?.[0];
        throw new TresorError(
          result.error ?? 'ATTESTATION_EVIDENCE_MALFORMED',
          `the GPU evidence does not verify (${failed ?? 'unknown check'}); it is not used`,
        );
      }
      return { bytes, kbsEvidence: list };
    },
  };
}

/** The GPU evidence source a configuration names (`gpu.source`). */
export function gpuEvidenceSourceOf(gpu: ServingConfig['gpu']): GpuEvidenceSource {
  if (gpu.source === 'none' || gpu.command === undefined) return noGpu;
  return commandGpuEvidenceSource({ command: gpu.command, timeoutMs: gpu.timeoutSeconds * 1000 });
}
