import { readFileSync } from 'node:fs';
import { basename, isAbsolute, relative, resolve } from 'node:path';
import { TresorError } from '@tresor/protocol';
import {
  loadDeploymentValues,
  parseDeploymentValues,
  referenceValuesJson,
  renderDeployment,
  writeOutputDirectory,
  MAX_VALUES_BYTES,
  type DeploymentValues,
} from '@tresor/deploy';
import type { CliIo } from '../io.js';

interface RenderOptions {
  readonly out: string;
  readonly values?: string;
  readonly force: boolean;
  readonly strict: boolean;
}

/** The file the reference values are written to, beside the manifests. */
export const REFERENCE_VALUES_FILE = 'reference-values.json';

function parseOptions(raw: Record<string, unknown>): RenderOptions {
  const out = raw.out;
  if (typeof out !== 'string' || out.length === 0)
    throw new TresorError('USAGE_INVALID', '--out needs a directory');
  const values = raw.values;
  if (values !== undefined && (typeof values !== 'string' || values.length === 0)) {
    throw new TresorError('USAGE_INVALID', '--values needs a file');
  }
  return {
    out,
    ...(values === undefined ? {} : { values }),
    force: raw.force === true,
    strict: raw.strict === true,
  };
}

function readValues(path: string | undefined, cwd: string): DeploymentValues {
  if (path === undefined) return parseDeploymentValues({}, 'default values');
  const file = resolve(cwd, path);
  let text: string;
  try {
    const bytes = readFileSync(file);
    if (bytes.length > MAX_VALUES_BYTES) {
      throw new TresorError('CONFIG_INVALID', `${path}: larger than ${MAX_VALUES_BYTES} bytes`);
    }
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    if (cause instanceof TresorError) throw cause;
    throw new TresorError('INPUT_UNREADABLE', `cannot read --values ${path} as UTF-8 text`, { cause });
  }
  return loadDeploymentValues(text, path);
}

/** A path relative to the working directory when it lies inside it, else absolute. */
function displayPath(path: string, cwd: string): string {
  const rel = relative(cwd, path);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

/**
 * `tresor deploy render --out <dir> [--values <file>]`: renders, validates (schemas, then the
 * deployment policy) and only then writes, all files at once. Exit 0 written, 1 policy refused,
 * 2 bad values or output directory.
 */
export async function renderDeployCommand(raw: Record<string, unknown>, io: CliIo): Promise<void> {
  const options = parseOptions(raw);
  const values = readValues(options.values, io.cwd);
  const rendered = renderDeployment(values);
  if (options.strict && rendered.warnings.length > 0) {
    throw new TresorError(
      'CONFIG_INVALID',
      `--strict: ${rendered.warnings.join('; ')} (set them in the values file)`,
    );
  }
  const files = [
    ...rendered.files.map((f) => ({ name: f.name, content: f.yaml })),
    { name: REFERENCE_VALUES_FILE, content: referenceValuesJson(rendered.referenceValues) },
  ];
  const written = await writeOutputDirectory(resolve(io.cwd, options.out), files, { force: options.force });
  const counts = new Map(rendered.files.map((f) => [f.name, f.objects.length]));
  for (const path of written) {
    const count = counts.get(basename(path));
    const what =
      count === undefined
        ? `${rendered.referenceValues.referenceValues.length} reference value sets`
        : `${count} objects`;
    io.stdout.write(`wrote ${displayPath(path, io.cwd)} (${what})\n`);
  }
  for (const entry of rendered.initData) {
    io.stdout.write(
      `init data ${entry.component} (${entry.tee}): ${entry.initData.algorithm}:${entry.initData.digest}\n`,
    );
  }
  for (const warning of rendered.warnings) io.stderr.write(`warning: ${warning}\n`);
}
