import { z } from 'zod';
import { TresorError } from '@tresor/protocol';
import { imageRef, parseDeploymentValues, type DeploymentValues } from './values.js';

/**
 * The two small files of the daemonless image build (scripts/build-images.ts, docs/deploy.md
 * "Reproducible images"): the lock of the Debian packages in the base image, and the images file
 * the build writes (`dist-images/images.json`) that `tresor deploy render --images` pins.
 */

export interface BasePackage {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  /** sha256 of the .deb as downloaded from the mirror. */
  readonly sha256: string;
}

const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const PACKAGE_VERSION = /^(?:[0-9]+:)?[0-9][A-Za-z0-9.+~-]*$/;
const ARCHITECTURE = /^(?:all|amd64|arm64)$/;
const SHA256 = /^[0-9a-f]{64}$/;

/** The lock: when the base was resolved (its SOURCE_DATE_EPOCH) and the packages in it. */
export interface BaseLock {
  /** Seconds; the mtime of every base file and the base image's `created`, so the base digest depends on the lock only. */
  readonly sourceDateEpoch: number;
  readonly packages: readonly BasePackage[];
  /**
   * Manifest digest of the base image these packages make (dist-images/base.oci.tar), which the
   * Dockerfiles' runtime stage pins; absent until the first build after an update.
   */
  readonly baseImage?: string;
}

/** `source-date-epoch <seconds>`, then `<name> <version> <architecture> <sha256>` per line, sorted by name. */
export function formatBaseLock(lock: BaseLock, suite: string): string {
  const lines = [...lock.packages]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((p) => `${p.name} ${p.version} ${p.architecture} ${p.sha256}`);
  return [
    `# Debian ${suite} packages of the Tresor base image, exactly as mmdebstrap resolved them.`,
    '# Written by `npm run images -- --update-lock`; the build fails when the mirror resolves anything else.',
    `source-date-epoch ${lock.sourceDateEpoch}`,
    ...(lock.baseImage === undefined ? [] : [`base-image ${lock.baseImage}`]),
    ...lines,
    '',
  ].join('\n');
}

/**
 * Parses the lock.
 * @throws TresorError CONFIG_INVALID naming the first bad line, a repeated package, no epoch, or no package.
 */
export function parseBaseLock(text: string): BaseLock {
  const packages: BasePackage[] = [];
  let sourceDateEpoch: number | undefined;
  let baseImage: string | undefined;
  const seen = new Set<string>();
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const epoch = /^source-date-epoch ([0-9]{1,12})$/.exec(line);
    if (epoch !== null && sourceDateEpoch === undefined) {
      sourceDateEpoch = Number(epoch[1]);
      return;
    }
    const image = /^base-image (sha256:[0-9a-f]{64})$/.exec(line);
    if (image !== null && baseImage === undefined) {
      baseImage = image[1];
      return;
    }
    const [name = '', version = '', architecture = '', sha256 = '', ...rest] = line.split(/\s+/);
    if (
      rest.length > 0 ||
      !PACKAGE_NAME.test(name) ||
      !PACKAGE_VERSION.test(version) ||
      !ARCHITECTURE.test(architecture) ||
      !SHA256.test(sha256)
    ) {
      throw new TresorError(
        'CONFIG_INVALID',
        `base-packages.lock line ${index + 1}: expected "<package> <version> <architecture> <sha256>"; regenerate it with \`npm run images -- --update-lock\``,
      );
    }
    if (seen.has(name)) {
      throw new TresorError(
        'CONFIG_INVALID',
        `base-packages.lock line ${index + 1}: ${name} is listed twice`,
      );
    }
    seen.add(name);
    packages.push({ name, version, architecture, sha256 });
  });
  if (sourceDateEpoch === undefined) {
    throw new TresorError(
      'CONFIG_INVALID',
      'base-packages.lock has no "source-date-epoch <seconds>" line; regenerate it with `npm run images -- --update-lock`',
    );
  }
  if (packages.length === 0) {
    throw new TresorError(
      'CONFIG_INVALID',
      'base-packages.lock lists no package; regenerate it with `npm run images -- --update-lock`',
    );
  }
  return { sourceDateEpoch, packages, ...(baseImage === undefined ? {} : { baseImage }) };
}

/** The images file: each built service's reference pinned by the digest the build printed. */
export const imagesFileSchema = z
  .strictObject({
    trust: imageRef.optional(),
    gateway: imageRef.optional(),
    serving: imageRef.optional(),
  })
  .refine((images) => Object.keys(images).length > 0, 'at least one of trust, gateway, serving');

export type ImagesFile = z.output<typeof imagesFileSchema>;

/** The largest images file read (three references are a few hundred bytes). */
export const MAX_IMAGES_BYTES = 64 * 1024;

export function formatImagesFile(images: ImagesFile): string {
  return `${JSON.stringify(images, null, 2)}\n`;
}

/**
 * Parses an images file (JSON).
 * @throws TresorError CONFIG_INVALID for text that is not JSON or a reference that is not pinned by digest.
 */
export function parseImagesFile(text: string, source: string): ImagesFile {
  if (text.length > MAX_IMAGES_BYTES) {
    throw new TresorError('CONFIG_INVALID', `${source}: larger than ${MAX_IMAGES_BYTES} bytes`);
  }
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch (cause) {
    throw new TresorError('CONFIG_INVALID', `${source}: not JSON (write it with \`npm run images\`)`, {
      cause,
    });
  }
  const parsed = imagesFileSchema.safeParse(document);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue === undefined || issue.path.length === 0 ? '(top level)' : issue.path.join('.');
    throw new TresorError(
      'CONFIG_INVALID',
      `${source}: ${where}: ${issue?.message ?? 'invalid'} (the file \`npm run images\` writes)`,
    );
  }
  return parsed.data;
}

/** The values with the images of `images` in place of theirs (validated and frozen again). */
export function withImages(values: DeploymentValues, images: ImagesFile): DeploymentValues {
  const copy = structuredClone(values) as unknown as Record<
    'trust' | 'gateway' | 'serving',
    { image: string }
  >;
  if (images.trust !== undefined) copy.trust.image = images.trust;
  if (images.gateway !== undefined) copy.gateway.image = images.gateway;
  if (images.serving !== undefined) copy.serving.image = images.serving;
  return parseDeploymentValues(copy, 'values with --images');
}
