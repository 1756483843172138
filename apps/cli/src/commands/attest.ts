import { Option, type Command } from 'commander';
import type { CliIo } from '../io.js';
import { registerAttestFetch } from './attest-fetch.js';
import { FILE_FLAGS } from './attest-inputs.js';
import { renderAttestVerify } from './attest-render.js';
import { attestVerify, refusal, verificationTime, type AttestVerifyOptions } from './attest-verify.js';

/**
 * `tresor attest verify`: verifies TEE evidence offline (issue #4). Exit 0 valid, 1 invalid (the
 * error names the first failed check), 2 unreadable input. `tresor attest fetch` (attest-fetch.ts)
 * fetches the collateral it takes.
 */
export function attestCommands(program: Command, io: CliIo): void {
  const attest = program
    .command('attest')
    .description(
      'verify TEE attestation evidence (SEV-SNP, TDX, NVIDIA GPU, sample) and fetch its collateral',
    );
  const verify = attest
    .command('verify')
    .description(
      'verify evidence: signatures, certificate chains to the pinned vendor roots, validity at --at, revocation, TCB and collateral; with --policy also appraise it (measurements, debug, TCB minimum, binding, residency)',
    )
    .addOption(
      new Option(
        '--tee <kind>',
        'TEE kind: snp, tdx, nvidia or sample (default: recognised from the evidence)',
      ),
    );
  for (const { flag, help } of FILE_FLAGS) verify.option(flag, help);
  verify
    .option(
      '--product <name>',
      'SEV-SNP: processor product (Milan, Genoa, Turin) for v2 reports whose chain does not say',
    )
    .option('--gpu-nonce <hex>', 'NVIDIA: the nonce the GPU must have signed (64 hex digits)')
    .option(
      '--allow-unsigned-sample',
      'sample TEE: accept unsigned Trustee-style evidence (interop tests only)',
    )
    .option('--at <time>', 'RFC 3339 time to verify at (default: now)')
    .option('--policy <file>', 'appraisal policy (JSON); without it only the hardware checks run')
    .option('--runtime-data <file>', 'with --policy: the runtime data (JSON) the report data must bind')
    .option(
      '--evidence-time <time>',
      'with --policy: RFC 3339 time the evidence was produced (for maxEvidenceAgeSeconds)',
    )
    .option('--json', 'print {"tee","valid","error","checks","claims"} (and "appraisal") as JSON')
    .addHelpText(
      'after',
      `
Examples:
  tresor attest verify --tee snp --report report.bin --signer-cert vcek.der --ca-chain ask_ark.pem
  tresor attest verify --tee tdx --quote quote.bin --collateral collateral.json --at 2025-07-01T00:00:00Z
  tresor attest verify --tee nvidia --evidence report.hex --cert-chain chain.pem --json
  tresor attest verify --tee sample --evidence evidence.json --sample-key sample-key.jwk --policy policy.json

Exit codes: 0 valid, 1 invalid (the error names the first failed check), 2 unreadable input.
Docs: docs/attestation.md`,
    )
    .action(async (options: AttestVerifyOptions) => {
      const at = verificationTime(options, io);
      const output = await attestVerify(options, io, at);
      io.stdout.write(
        options.json === true ? `${JSON.stringify(output, null, 2)}\n` : renderAttestVerify(output, at),
      );
      const refused = refusal(output);
      if (refused !== null) throw refused;
    });
  registerAttestFetch(attest, io);
}
