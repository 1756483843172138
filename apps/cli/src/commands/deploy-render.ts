import { readFileSync } from 'node:fs';
import { basename, isAbsolute, relative, resolve } from 'node:path';
import { TresorError } from '@tresor/protocol';
import {
  loadDeploymentValues,
  parseDeploymentValues,
  parseImagesFile,
  referenceValuesJson,
  renderDeployment,
  withImages,
  writeOutputDirectory,
  MAX_IMAGES_BYTES,
  MAX_VALUES_BYTES,
  type DeploymentValues,
} from '@tresor/deploy';
import type { CliIo } from '../io.js';

interface RenderOptions {
  readonly out: string;
  readonly values?: string;
  readonly images?: string;
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
  const images = raw.images;
  if (images !== undefined && (typeof images !== 'string' || images.length === 0)) {
    throw new TresorError(
      'USAGE_INVALID',
      '--images needs a file (dist-images/images.json from `npm run images`)',
    );
  }
  return {
    out,
    ...(values === undefined ? {} : { values }),
    ...(images === undefined ? {} : { images }),
    force: raw.force === true,
    strict: raw.strict === true,
  };
}

function readText(option: string, path: string, cwd: string, limit: number): string {
  try {
    const bytes = readFileSync(resolve(cwd, path));
    if (bytes.length > limit) {
      throw new TresorError('CONFIG_INVALID', `${path}: larger than ${limit} bytes`);
    }
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    if (cause instanceof TresorError) throw cause;
    throw new TresorError('INPUT_UNREADABLE', `cannot read ${option} ${path} as UTF-8 text`, { cause });
  }
}

function readValues(path: string | undefined, cwd: string): DeploymentValues {
  if (path === undefined) return parseDeploymentValues({}, 'default values');
  return loadDeploymentValues(readText('--values', path, cwd, MAX_VALUES_BYTES), path);
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
  const fromValues = readValues(options.values, io.cwd);
  const values =
    options.images === undefined
      ? fromValues
      : withImages(
          fromValues,
          parseImagesFile(readText('--images', options.images, io.cwd, MAX_IMAGES_BYTES), options.images),
        );
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
