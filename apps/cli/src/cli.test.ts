import { describe, expect, it } from 'vitest';
import { TresorError } from '@tresor/protocol';
import { captureIo } from '../../../test/support/cli-io.js';
import { run, type CommandModule } from './index.js';

const failing: CommandModule = (program) => {
  program
    .command('refuse')
    .description('always refuses')
    .action(() => {
      throw new TresorError('ATTESTATION_SIGNATURE_INVALID', 'bad signature');
    });
  program
    .command('crash')
    .description('throws a plain error')
    .action(() => {
      throw new Error('boom');
    });
};

describe('tresor CLI contract', () => {
  it('prints help and exits 0 with no arguments or --help', async () => {
    for (const args of [[], ['--help']]) {
      const io = captureIo();
      expect(await run(args, io)).toBe(0);
      expect(io.out()).toContain('Usage: tresor');
      expect(io.out()).toContain('Exit codes');
    }
  });

  it('prints the version and exits 0', async () => {
    const io = captureIo();
    expect(await run(['--version'], io)).toBe(0);
    expect(io.out()).toMatch(/^\d+\.\d+\.\d+\n$/);
  });

  it('exits 2 with USAGE_INVALID and a fix line for unknown commands and options', async () => {
    for (const args of [['frobnicate'], ['--nope']]) {
      const io = captureIo();
      expect(await run(args, io)).toBe(2);
      expect(io.err()).toMatch(/^error USAGE_INVALID: .+\nfix: .+\n$/);
    }
  });

  it('exits 1 for refusals with the code on stderr, and never prints a stack for unexpected errors', async () => {
    const io = captureIo();
    expect(await run(['refuse'], io, [failing])).toBe(1);
    expect(io.err()).toBe(
      'error ATTESTATION_SIGNATURE_INVALID: bad signature\nfix: The evidence was altered or signed by another key; collect fresh evidence from the TEE.\n',
    );
    const io2 = captureIo();
    expect(await run(['crash'], io2, [failing])).toBe(1);
    expect(io2.err()).toMatch(/^error INTERNAL_ERROR: unexpected error: boom\nfix: /);
    expect(io2.err()).not.toContain('    at ');
  });
});
