import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  collectTree,
  comparePaths,
  entryHeader,
  layoutManifestDigest,
  packArchive,
  tarStream,
  writeImage,
  writeLayer,
  writeLayoutIndex,
  type ImageConfig,
  type TarEntry,
} from './oci-image.js';

const EPOCH = 1_765_065_600;
const scratch: string[] = [];
const temp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'tresor-oci-'));
  scratch.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of scratch.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const LONG = `${'deep/'.repeat(30)}file-with-a-long-name.js`;

/** The same tree, written in the order given, with the mtimes given. */
function makeTree(root: string, order: 'forward' | 'reverse', mtime: number): void {
  const files: [string, string][] = [
    ['b.txt', 'bee\n'],
    ['a/z.js', 'export const z = 1;\n'],
    ['a/é-unicode.txt', 'accent\n'],
    [LONG, 'long path\n'],
    ['bin/run', '#!/usr/bin/node\n'],
  ];
  for (const [path, content] of order === 'forward' ? files : [...files].reverse()) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), content);
    utimesSync(join(root, path), mtime, mtime);
  }
  chmodSync(join(root, 'bin/run'), 0o775);
  symlinkSync('../b.txt', join(root, 'a/link'));
  symlinkSync(`../${'x'.repeat(120)}`, join(root, 'a/long-link'));
}

async function layerOf(root: string, owner?: (path: string) => readonly [number, number]) {
  const entries = await collectTree(root, {
    ...(owner === undefined ? {} : { owner }),
    mode: (_p, type, onDisk) =>
      type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : onDisk & 0o111 ? 0o755 : 0o644,
  });
  return writeLayer(temp(), entries, EPOCH);
}

async function tarBytes(entries: readonly TarEntry[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of tarStream(entries, EPOCH)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

const CONFIG: ImageConfig = {
  created: EPOCH,
  architecture: 'amd64',
  user: '65532:65532',
  env: ['NODE_ENV=production'],
  entrypoint: ['/usr/bin/node', '/app/apps/cli/bin/tresor.js'],
  cmd: ['trust', 'serve'],
  workingDir: '/app',
  exposedPorts: ['8443/tcp'],
  labels: {
    'org.opencontainers.image.revision': 'abc',
    'org.opencontainers.image.created': '2025-12-07T00:00:00Z',
  },
  history: ['base'],
};

describe('collectTree', () => {
  it('returns entries in byte order of their paths, whatever order they were written in', async () => {
    const root = temp();
    makeTree(root, 'reverse', 1000);
    const paths = (await collectTree(root)).map((e) => e.path);
    expect(paths).toEqual([...paths].sort(comparePaths));
    expect(paths).toContain('a/é-unicode.txt');
    expect(paths.indexOf('a')).toBeLessThan(paths.indexOf('a/z.js'));
  });

  it('applies owner, mode and exclusion, and keeps symlinks as links', async () => {
    const root = temp();
    makeTree(root, 'forward', 1000);
    const entries = await collectTree(root, {
      owner: (path) => (path.startsWith('bin') ? [65532, 65532] : [0, 0]),
      exclude: (path) => path === 'deep',
      mode: (_p, type, onDisk) => (type === 'file' ? onDisk & ~0o022 : 0o755),
    });
    expect(entries.some((e) => e.path.startsWith('deep'))).toBe(false);
    const run = entries.find((e) => e.path === 'bin/run');
    expect(run).toMatchObject({ type: 'file', uid: 65532, gid: 65532, mode: 0o755 });
    expect(entries.find((e) => e.path === 'b.txt')).toMatchObject({ uid: 0, gid: 0, mode: 0o644 });
    expect(entries.find((e) => e.path === 'a/link')).toMatchObject({ type: 'symlink', target: '../b.txt' });
  });
});

describe('writeLayer', () => {
  it('gives the same digest and diff id for the same tree written at other times and in another order', async () => {
    const one = temp();
    const two = temp();
    makeTree(one, 'forward', 1000);
    makeTree(two, 'reverse', 2_000_000_000);
    const [a, b] = [await layerOf(one), await layerOf(two)];
    expect(a.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(b).toEqual(a);
  });

  it('changes the digest when one byte of content changes', async () => {
    const one = temp();
    const two = temp();
    makeTree(one, 'forward', 1000);
    makeTree(two, 'forward', 1000);
    writeFileSync(join(two, 'b.txt'), 'bEe\n');
    expect((await layerOf(two)).diffId).not.toBe((await layerOf(one)).diffId);
  });

  it('changes the digest when an owner changes', async () => {
    const root = temp();
    makeTree(root, 'forward', 1000);
    const plain = await layerOf(root);
    const owned = await layerOf(root, (path) => (path === 'b.txt' ? [65532, 65532] : [0, 0]));
    expect(owned.diffId).not.toBe(plain.diffId);
  });

  it('writes the blob under its digest, a gzip whose header carries no time or name', async () => {
    const root = temp();
    makeTree(root, 'forward', 1000);
    const layout = temp();
    const layer = await writeLayer(layout, await collectTree(root), EPOCH);
    const blob = readFileSync(join(layout, 'blobs/sha256', layer.digest.slice(7)));
    expect(`sha256:${createHash('sha256').update(blob).digest('hex')}`).toBe(layer.digest);
    expect(blob.length).toBe(layer.size);
    expect([...blob.subarray(0, 4)]).toEqual([0x1f, 0x8b, 8, 0]);
    expect(blob.readUInt32LE(4)).toBe(0);
  });
});

describe('tarStream', () => {
  it('is read back by GNU tar: names (long, unicode), links, modes, owners and one mtime', async () => {
    const root = temp();
    makeTree(root, 'forward', 1000);
    const entries = await collectTree(root, {
      owner: (path) => (path === 'b.txt' ? [65532, 65532] : [0, 0]),
    });
    const archive = join(temp(), 'layer.tar');
    writeFileSync(archive, await tarBytes(entries));
    const listing = execFileSync(
      'tar',
      ['--list', '--verbose', '--numeric-owner', '--full-time', '-f', archive],
      {
        encoding: 'utf8',
        env: { ...process.env, TZ: 'UTC', LC_ALL: 'C.UTF-8' },
      },
    );
    expect(listing).toContain(LONG);
    expect(listing).toMatch(/65532\/65532 +4 2025-12-07 00:00:00 b\.txt/);
    expect(listing).toMatch(/lrwxrwxrwx 0\/0 .* a\/long-link -> \.\.\/x{120}/);
    expect(listing).toMatch(/-rwxrwxr-x 0\/0 .* bin\/run/);
    expect(
      listing
        .split('\n')
        .filter((l) => l !== '')
        .every((l) => l.includes('2025-12-07 00:00:00')),
    ).toBe(true);
    const out = temp();
    execFileSync('tar', ['-xf', archive, '-C', out]);
    expect(readFileSync(join(out, LONG), 'utf8')).toBe('long path\n');
    expect(readFileSync(join(out, 'a/é-unicode.txt'), 'utf8')).toBe('accent\n');
  });

  it('refuses a file whose size changed after it was listed', async () => {
    const root = temp();
    writeFileSync(join(root, 'grows'), 'ab');
    const entries = await collectTree(root);
    writeFileSync(join(root, 'grows'), 'abc');
    await expect(tarBytes(entries)).rejects.toThrow(/changed size/);
  });

  it('refuses a uid that does not fit the header', () => {
    expect(() =>
      entryHeader({ type: 'dir', path: 'x', mode: 0o755, uid: 0o10000000, gid: 0 }, EPOCH),
    ).toThrow(/does not fit/);
  });

  it('round-trips arbitrary file names and contents through GNU tar', async () => {
    const name = fc.stringMatching(/^[a-zA-Z0-9._é-]{1,40}$/).filter((n) => n !== '.' && n !== '..');
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.tuple(name, fc.uint8Array({ maxLength: 700 })), {
          selector: ([n]) => n,
          minLength: 1,
          maxLength: 6,
        }),
        fc.nat({ max: 3 }),
        async (files, depth) => {
          const prefix = 'dir-with-some-length/'.repeat(depth * 2);
          const entries: TarEntry[] = files
            .map(([n, bytes]): TarEntry => ({
              type: 'file',
              path: `${prefix}${n}`,
              mode: 0o644,
              uid: 0,
              gid: 0,
              size: bytes.length,
              source: bytes,
            }))
            .sort((a, b) => comparePaths(a.path, b.path));
          const dir = temp();
          writeFileSync(join(dir, 'x.tar'), await tarBytes(entries));
          mkdirSync(join(dir, 'out'));
          execFileSync('tar', ['-xf', join(dir, 'x.tar'), '-C', join(dir, 'out')]);
          for (const [n, bytes] of files)
            expect(readFileSync(join(dir, 'out', prefix, n))).toEqual(Buffer.from(bytes));
          rmSync(dir, { recursive: true, force: true });
        },
      ),
      { numRuns: 12 },
    );
  });

  it('writes PAX records whose length prefix counts their own bytes', () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 101, maxLength: 400 }).map((s) => s.replace(/[\0\n]/g, 'x')),
        (path) => {
          const header = entryHeader({ type: 'dir', path, mode: 0o755, uid: 0, gid: 0 }, EPOCH);
          const size = parseInt(header.subarray(124, 135).toString('ascii'), 8);
          const record = header.subarray(512, 512 + size).toString('utf8');
          const length = Number(record.slice(0, record.indexOf(' ')));
          expect(Buffer.byteLength(record, 'utf8')).toBe(length);
          expect(record).toBe(`${length} path=${path}/\n`);
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('writeImage and packArchive', () => {
  async function build(
    root: string,
  ): Promise<{ layout: string; archive: string; digest: string; archiveDigest: string }> {
    const layout = temp();
    const layer = await writeLayer(layout, await collectTree(root), EPOCH);
    const image = await writeImage(layout, [layer], CONFIG);
    await writeLayoutIndex(layout, image, '0.1.0', 'ghcr.io/tresor/trust:0.1.0');
    const archive = join(temp(), 'trust.oci.tar');
    const archiveDigest = await packArchive(layout, archive, EPOCH);
    return { layout, archive, digest: image.manifest.digest, archiveDigest };
  }

  it('builds byte-identical archives twice, with the manifest named in index.json', async () => {
    const root = temp();
    makeTree(root, 'forward', 1000);
    const a = await build(root);
    const b = await build(root);
    expect(b.digest).toBe(a.digest);
    expect(b.archiveDigest).toBe(a.archiveDigest);
    expect(await layoutManifestDigest(a.layout)).toBe(a.digest);
    const manifest = JSON.parse(readFileSync(join(a.layout, 'blobs/sha256', a.digest.slice(7)), 'utf8')) as {
      config: { digest: string };
      layers: unknown[];
    };
    const config = JSON.parse(
      readFileSync(join(a.layout, 'blobs/sha256', manifest.config.digest.slice(7)), 'utf8'),
    ) as {
      created: string;
      config: { User: string; Entrypoint: string[]; Labels: Record<string, string> };
      rootfs: { diff_ids: string[] };
    };
    expect(config.created).toBe('2025-12-07T00:00:00Z');
    expect(config.config.User).toBe('65532:65532');
    expect(Object.keys(config.config.Labels)).toEqual([
      'org.opencontainers.image.created',
      'org.opencontainers.image.revision',
    ]);
    expect(config.rootfs.diff_ids).toHaveLength(1);
    const listing = execFileSync('tar', ['-tf', a.archive], { encoding: 'utf8' }).split('\n');
    expect(listing).toContain('index.json');
    expect(listing).toContain('oci-layout');
    expect(listing).toContain(`blobs/sha256/${a.digest.slice(7)}`);
  });

  it('gives another image digest when the command changes, the layer staying the same', async () => {
    const root = temp();
    makeTree(root, 'forward', 1000);
    const layout = temp();
    const layer = await writeLayer(layout, await collectTree(root), EPOCH);
    const trust = await writeImage(layout, [layer], CONFIG);
    const gateway = await writeImage(layout, [layer], { ...CONFIG, cmd: ['gateway', 'serve'] });
    expect(gateway.manifest.digest).not.toBe(trust.manifest.digest);
    expect(gateway.layers[0]?.digest).toBe(trust.layers[0]?.digest);
  });

  it('refuses a history that does not match the layers', async () => {
    await expect(writeImage(temp(), [], CONFIG)).rejects.toThrow(/one history line per layer/);
  });

  it('refuses to pack a layout holding a symbolic link', async () => {
    const layout = temp();
    writeFileSync(join(layout, 'index.json'), '{}');
    symlinkSync('/etc/passwd', join(layout, 'stray'));
    await expect(packArchive(layout, join(temp(), 'x.tar'), EPOCH)).rejects.toThrow(
      /unexpected symlink stray/,
    );
  });

  it('refuses an index.json that names no sha256 manifest', async () => {
    const layout = temp();
    writeFileSync(join(layout, 'index.json'), JSON.stringify({ manifests: [{ digest: 'md5:abc' }] }));
    await expect(layoutManifestDigest(layout)).rejects.toThrow(/names no sha256 manifest/);
  });
});
