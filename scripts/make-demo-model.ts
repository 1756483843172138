/**
 * Writes the tiny demo GGUF model (random weights from a seed; produces nonsense) so tests and
 * `npm start` have a model without downloading anything.
 *
 *   tsx scripts/make-demo-model.ts --out demo.gguf [--seed 42] [--f16]
 */

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { DEMO_MODEL_DEFAULT_SEED, writeDemoModel } from '@tresor/serving';

const usage = 'usage: tsx scripts/make-demo-model.ts --out <file.gguf> [--seed <0..4294967295>] [--f16]';

async function main(): Promise<number> {
  let values: { out?: string; seed?: string; f16?: boolean };
  try {
    ({ values } = parseArgs({
      options: { out: { type: 'string' }, seed: { type: 'string' }, f16: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`USAGE_INVALID: ${(e as Error).message}\n${usage}`);
    return 2;
  }
  if (values.out === undefined) {
    console.error(`USAGE_INVALID: --out is required\n${usage}`);
    return 2;
  }
  const seed = values.seed === undefined ? DEMO_MODEL_DEFAULT_SEED : Number(values.seed);
  if (!/^\d+$/u.test(values.seed ?? '0') || !Number.isSafeInteger(seed) || seed > 0xffff_ffff) {
    console.error(`USAGE_INVALID: --seed must be an integer between 0 and 4294967295\n${usage}`);
    return 2;
  }
  try {
    await writeDemoModel(values.out, { seed, tensorType: values.f16 === true ? 'f16' : 'f32' });
  } catch (e) {
    console.error(
      `OUTPUT_UNWRITABLE: cannot write ${values.out} (${(e as Error).message}); choose a writable path.`,
    );
    return 1;
  }
  const bytes = await readFile(values.out);
  console.log(
    `${values.out}: ${bytes.length} bytes, sha256 ${createHash('sha256').update(bytes).digest('hex')}`,
  );
  return 0;
}

process.exitCode = await main();
