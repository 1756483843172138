/**
 * Reproducible OCI images without a container daemon: a directory tree becomes a layer (a tar with
 * sorted entries, one fixed mtime, owners chosen by the caller, no user or group names, gzip with
 * a fixed header), layers plus a config become an image (config, manifest, OCI layout), and the
 * layout is packed into one `.oci.tar` archive (`docker load`, `skopeo copy oci-archive:…`,
 * `podman load`). Same input tree and options, same bytes, same digests (docs/deploy.md
 * "Reproducible images").
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants as zlibConstants, createGzip } from 'node:zlib';
import { TresorError } from '@tresor/protocol';

export const OCI_MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const OCI_CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';
export const OCI_LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar+gzip';

/** One entry of a layer, already normalised. `path` is relative, without a leading or trailing `/`. */
export type TarEntry =
  | {
      readonly type: 'dir';
      readonly path: string;
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
    }
  | {
      readonly type: 'file';
      readonly path: string;
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
      readonly size: number;
      /** Absolute path the content is read from, or the bytes themselves. */
      readonly source: string | Uint8Array;
    }
  | {
      readonly type: 'symlink';
      readonly path: string;
      readonly mode: number;
      readonly uid: number;
      readonly gid: number;
      readonly target: string;
    };

export interface CollectOptions {
  /** Owner of an entry (default 0:0). */
  readonly owner?: (path: string, type: TarEntry['type']) => readonly [number, number];
  /** Drop an entry (and, for a directory, everything under it). */
  readonly exclude?: (path: string) => boolean;
  /**
   * Permission bits of an entry from the bits found on disk (default: kept as they are). Setuid,
   * setgid and sticky bits are kept only when this returns them.
   */
  readonly mode?: (path: string, type: TarEntry['type'], onDisk: number) => number;
}

const BLOCK = 512;

/** Byte-wise order of UTF-8 paths: the same on every machine and locale. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Walks `root` (not following symbolic links) and returns its entries sorted by path. Devices,
 * sockets and FIFOs are skipped (the container runtime provides /dev); hard links become copies.
 */
export async function collectTree(root: string, options: CollectOptions = {}): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  const owner = options.owner ?? (() => [0, 0] as const);
  const walk = async (relative: string): Promise<void> => {
    const names = (await readdir(join(root, relative))).sort(comparePaths);
    for (const name of names) {
      const path = relative === '' ? name : `${relative}/${name}`;
      if (options.exclude?.(path) === true) continue;
      const absolute = join(root, path);
      const info = await lstat(absolute);
      const type = info.isDirectory()
        ? 'dir'
        : info.isFile()
          ? 'file'
          : info.isSymbolicLink()
            ? 'symlink'
            : undefined;
      if (type === undefined) continue;
      const onDisk = info.mode & 0o7777;
      const mode = options.mode?.(path, type, onDisk) ?? onDisk;
      const [uid, gid] = owner(path, type);
      if (type === 'dir') {
        entries.push({ type, path, mode, uid, gid });
        await walk(path);
      } else if (type === 'file') {
        entries.push({ type, path, mode, uid, gid, size: info.size, source: absolute });
      } else {
        entries.push({ type, path, mode, uid, gid, target: await readlink(absolute) });
      }
    }
  };
  await walk('');
  return entries.sort((a, b) => comparePaths(a.path, b.path));
}

function octal(value: number, width: number): string {
  const text = value.toString(8);
  if (text.length > width - 1) {
    throw new TresorError('INPUT_MALFORMED', `tar: ${value} does not fit a ${width}-byte field`);
  }
  return `${text.padStart(width - 1, '0')}\0`;
}

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body, 'utf8') + 1;
  while (String(length).length + Buffer.byteLength(body, 'utf8') !== length) length += 1;
  return `${length}${body}`;
}

function header(fields: {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
}): Buffer {
  const block = Buffer.alloc(BLOCK);
  block.write(fields.name, 0, 100, 'utf8');
  block.write(octal(fields.mode, 8), 100, 'ascii');
  block.write(octal(fields.uid, 8), 108, 'ascii');
  block.write(octal(fields.gid, 8), 116, 'ascii');
  block.write(octal(fields.size, 12), 124, 'ascii');
  block.write(octal(fields.mtime, 12), 136, 'ascii');
  block.write('        ', 148, 'ascii');
  block.write(fields.typeflag, 156, 'ascii');
  block.write(fields.linkname, 157, 100, 'utf8');
  block.write('ustar\0', 257, 'ascii');
  block.write('00', 263, 'ascii');
  block.write(octal(0, 8), 329, 'ascii');
  block.write(octal(0, 8), 337, 'ascii');
  let sum = 0;
  for (const byte of block) sum += byte;
  block.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return block;
}

const ASCII_SHORT = (text: string, limit: number) => /^[\x20-\x7e]*$/.test(text) && text.length <= limit;

/** The header block(s) of one entry: a PAX extended header first when a name does not fit ustar. */
export function entryHeader(entry: TarEntry, mtime: number): Buffer {
  const name = entry.type === 'dir' ? `${entry.path}/` : entry.path;
  const linkname = entry.type === 'symlink' ? entry.target : '';
  const size = entry.type === 'file' ? entry.size : 0;
  const typeflag = entry.type === 'dir' ? '5' : entry.type === 'symlink' ? '2' : '0';
  const blocks: Buffer[] = [];
  let records = '';
  if (!ASCII_SHORT(name, 100)) records += paxRecord('path', name);
  if (!ASCII_SHORT(linkname, 100)) records += paxRecord('linkpath', linkname);
  if (records !== '') {
    const body = Buffer.from(records, 'utf8');
    blocks.push(
      header({
        name: 'PaxHeader',
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: body.length,
        mtime,
        typeflag: 'x',
        linkname: '',
      }),
      body,
      Buffer.alloc(padding(body.length)),
    );
  }
  const short = (text: string) => (ASCII_SHORT(text, 100) ? text : '');
  blocks.push(
    header({
      name: short(name),
      mode: entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      size,
      mtime,
      typeflag,
      linkname: short(linkname),
    }),
  );
  return Buffer.concat(blocks);
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}

/** The tar stream of `entries` in the order given, every mtime = `mtime` (seconds), no user/group names. */
export async function* tarStream(entries: readonly TarEntry[], mtime: number): AsyncGenerator<Buffer> {
  for (const entry of entries) {
    yield entryHeader(entry, mtime);
    if (entry.type !== 'file') continue;
    let written = 0;
    if (typeof entry.source === 'string') {
      for await (const chunk of createReadStream(entry.source)) {
        written += (chunk as Buffer).length;
        yield chunk as Buffer;
      }
    } else {
      written = entry.source.length;
      yield Buffer.from(entry.source);
    }
    if (written !== entry.size) {
      throw new TresorError(
        'INPUT_MALFORMED',
        `tar: ${entry.path} changed size while being read (${entry.size} → ${written})`,
      );
    }
    yield Buffer.alloc(padding(written));
  }
  yield Buffer.alloc(BLOCK * 2);
}

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

class Measure extends Transform {
  readonly hash = createHash('sha256');
  size = 0;
  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    done(null, chunk);
  }
}

/** Writes a blob under `<layout>/blobs/sha256/` and returns its descriptor. */
export async function writeBlob(layout: string, mediaType: string, bytes: Uint8Array): Promise<Descriptor> {
  const hex = createHash('sha256').update(bytes).digest('hex');
  const dir = join(layout, 'blobs', 'sha256');
  await mkdir(dir, { recursive: true });
  await pipeline(Readable.from([Buffer.from(bytes)]), createWriteStream(join(dir, hex)));
  return { mediaType, digest: `sha256:${hex}`, size: bytes.length };
}

export interface Layer extends Descriptor {
  /** sha256 of the uncompressed tar (the config's `rootfs.diff_ids`). */
  readonly diffId: string;
}

/**
 * Writes `entries` as a gzip-compressed layer blob. Node's zlib writes a gzip header without a
 * name or a time (mtime 0, OS 3), so the bytes depend only on the tar and the zlib version.
 */
export async function writeLayer(
  layout: string,
  entries: readonly TarEntry[],
  mtime: number,
): Promise<Layer> {
  const dir = join(layout, 'blobs', 'sha256');
  await mkdir(dir, { recursive: true });
  const temporary = join(dir, `.layer-${process.pid}-${Date.now()}`);
  const raw = new Measure();
  const compressed = new Measure();
  await pipeline(
    Readable.from(tarStream(entries, mtime)),
    raw,
    createGzip({ level: 6, memLevel: 8, strategy: zlibConstants.Z_DEFAULT_STRATEGY }),
    compressed,
    createWriteStream(temporary),
  );
  const hex = compressed.hash.digest('hex');
  await rename(temporary, join(dir, hex));
  return {
    mediaType: OCI_LAYER_MEDIA_TYPE,
    digest: `sha256:${hex}`,
    size: compressed.size,
    diffId: `sha256:${raw.hash.digest('hex')}`,
  };
}

export interface ImageConfig {
  readonly created: number;
  readonly architecture: string;
  readonly user: string;
  readonly env: readonly string[];
  readonly entrypoint: readonly string[];
  readonly cmd: readonly string[];
  readonly workingDir: string;
  readonly exposedPorts: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  /** One line per layer for `history` (what made it). */
  readonly history: readonly string[];
}

function sortedRecord<T>(record: Readonly<Record<string, T>>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => comparePaths(a, b)));
}

/** RFC 3339 time of a SOURCE_DATE_EPOCH. */
export function epochToIso(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

export interface BuiltImage {
  readonly manifest: Descriptor;
  readonly config: Descriptor;
  readonly layers: readonly Layer[];
}

/** Writes config and manifest for `layers` (bottom first) into `layout` and returns the manifest descriptor. */
export async function writeImage(
  layout: string,
  layers: readonly Layer[],
  config: ImageConfig,
): Promise<BuiltImage> {
  if (layers.length !== config.history.length) {
    throw new TresorError('INPUT_MALFORMED', 'oci: one history line per layer');
  }
  const created = epochToIso(config.created);
  const configJson = {
    created,
    architecture: config.architecture,
    os: 'linux',
    config: {
      User: config.user,
      ExposedPorts: Object.fromEntries([...config.exposedPorts].sort(comparePaths).map((p) => [p, {}])),
      Env: [...config.env],
      Entrypoint: [...config.entrypoint],
      Cmd: [...config.cmd],
      WorkingDir: config.workingDir,
      Labels: sortedRecord(config.labels),
    },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
    history: config.history.map((line) => ({ created, created_by: line })),
  };
  const configBlob = await writeBlob(layout, OCI_CONFIG_MEDIA_TYPE, Buffer.from(JSON.stringify(configJson)));
  const manifestJson = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST_MEDIA_TYPE,
    config: configBlob,
    layers: layers.map(({ mediaType, digest, size }) => ({ mediaType, digest, size })),
    annotations: sortedRecord(config.labels),
  };
  const manifest = await writeBlob(
    layout,
    OCI_MANIFEST_MEDIA_TYPE,
    Buffer.from(JSON.stringify(manifestJson)),
  );
  return { manifest, config: configBlob, layers };
}

/**
 * Writes `oci-layout`, `index.json` (one manifest, named `refName`) and a Docker `manifest.json`
 * (so older `docker load` accepts the archive too) beside the blobs.
 */
export async function writeLayoutIndex(
  layout: string,
  image: BuiltImage,
  refName: string,
  repoTag: string,
): Promise<void> {
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ ...image.manifest, annotations: { 'org.opencontainers.image.ref.name': refName } }],
    }),
  );
  const blob = (d: Descriptor) => `blobs/sha256/${d.digest.slice('sha256:'.length)}`;
  await writeFile(
    join(layout, 'manifest.json'),
    JSON.stringify([{ Config: blob(image.config), RepoTags: [repoTag], Layers: image.layers.map(blob) }]),
  );
}

/**
 * Packs an OCI layout directory into one uncompressed tar (sorted, mtime fixed, 0:0, files 0644).
 * Only blobs referenced from index.json may be in it: stray files are refused, so the archive
 * holds exactly one image.
 */
export async function packArchive(layout: string, archive: string, mtime: number): Promise<string> {
  const entries = await collectTree(layout, {
    mode: (_path, type) => (type === 'dir' ? 0o755 : 0o644),
  });
  const stray = entries.find((e) => e.type !== 'dir' && e.type !== 'file');
  if (stray !== undefined)
    throw new TresorError('INPUT_MALFORMED', `oci: unexpected ${stray.type} ${stray.path} in the layout`);
  const measure = new Measure();
  const temporary = `${archive}.partial`;
  await pipeline(Readable.from(tarStream(entries, mtime)), measure, createWriteStream(temporary));
  await rename(temporary, archive);
  return `sha256:${measure.hash.digest('hex')}`;
}

/** Reads the manifest digest named in a layout's index.json. */
export async function layoutManifestDigest(layout: string): Promise<string> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
    manifests?: { digest?: unknown }[];
  };
  const digest = index.manifests?.[0]?.digest;
  if (typeof digest !== 'string' || !/^sha256:[0-9a-f]{64}$/.test(digest)) {
    throw new TresorError('INPUT_MALFORMED', `oci: ${layout}/index.json names no sha256 manifest`);
  }
  return digest;
}

/** Removes a directory if present (build scratch). */
export async function removeTree(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true });
}

/** True when `path` exists. */
export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
