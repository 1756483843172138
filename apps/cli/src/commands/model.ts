import type { CommandModule } from '../program.js';
import { registerModelInspect } from './model-inspect.js';
import { registerModelSeal } from './model-seal.js';
import { registerModelUnseal } from './model-unseal.js';

/** `tresor model seal|unseal|inspect`: the sealed model format (.tresor, docs/crypto.md). */
export const modelCommands: CommandModule = (program, io) => {
  const model = program
    .command('model')
    .description('seal, unseal and inspect model files in the .tresor format')
    .addHelpText(
      'after',
      '\nKey files hold 32 raw bytes or 64 hex digits. See docs/cli.md and docs/crypto.md.',
    );
  registerModelSeal(model, io);
  registerModelUnseal(model, io);
  registerModelInspect(model, io);
};
