/**
 * Builds the trust, gateway and serving images daemonless and reproducibly (docs/deploy.md
 * "Reproducible images"): a Debian trixie base made by mmdebstrap from the package versions in
 * deploy/images/base-packages.lock, the built workspaces and production node_modules on top, written
 * as OCI archives dist-images/<service>.oci.tar by deploy/src/oci-image.ts. Prints each image digest
 * and writes dist-images/images.json for `tresor deploy render --images`.
 *
 *   npm run images                      build (needs root, mmdebstrap, dpkg-deb, umoci for the smoke run)
 *   npm run images -- --check           build twice from scratch and compare every digest
 *   npm run images -- --update-lock     resolve the base packages anew and rewrite the lock
 *   options: --out <dir> --registry <prefix> --services trust,gateway --no-build --no-smoke
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import {
  collectTree,
  epochToIso,
  packArchive,
  writeImage,
  writeLayer,
  writeLayoutIndex,
  type Layer,
  type TarEntry,
} from '../deploy/src/oci-image.js';
import {
  formatBaseLock,
  formatImagesFile,
  parseBaseLock,
  type BaseLock,
  type BasePackage,
} from '../deploy/src/image-digests.js';
import { SERVICE_NODE_FLAGS, serviceProcessEnv } from '../apps/cli/src/platform/children.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const LOCK = join(ROOT, 'deploy/images/base-packages.lock');
const SERVICES = ['trust', 'gateway', 'serving'] as const;
type Service = (typeof SERVICES)[number];
const NONROOT = 65532;
const SUITE = 'trixie';
const MIRRORS = (process.env.TRESOR_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian').split(/\s+/);
const SECURITY = process.env.TRESOR_DEBIAN_SECURITY ?? 'http://deb.debian.org/debian-security';
/** Directories dropped from the base: package manager state, caches, logs, documentation. */
const BASE_DROP = [
  'dev',
  'etc/apt',
  'etc/fstab',
  'etc/hostname',
  'etc/resolv.conf',
  'usr/share/doc',
  'usr/share/info',
  'usr/share/lintian',
  'usr/share/locale',
  'usr/share/man',
  'var/cache',
  'var/lib/apt',
  'var/lib/dpkg',
  'var/log',
];
/** Packages of serving only: the llama.cpp engine and its CPU prebuilt. */
const SERVING_ONLY = [
  'node_modules/node-llama-cpp',
  'node_modules/@node-llama-cpp',
  'node_modules/.bin/nlc',
  'node_modules/.bin/node-llama-cpp',
];
const CMD: Record<Service, string[]> = {
  trust: ['trust', 'serve', '--config', '/etc/tresor/config.json'],
  gateway: ['gateway', 'serve', '--config', '/etc/tresor/config.json'],
  serving: ['serving', 'serve', '--config', '/etc/tresor/config.json'],
};

const { values: opts } = parseArgs({
  options: {
    check: { type: 'boolean', default: false },
    'update-lock': { type: 'boolean', default: false },
    out: { type: 'string', default: 'dist-images' },
    registry: { type: 'string', default: 'ghcr.io/tresor' },
    services: { type: 'string', default: SERVICES.join(',') },
    'no-build': { type: 'boolean', default: false },
    'no-smoke': { type: 'boolean', default: false },
  },
});
const SELECTED = opts.services.split(',').map((s) => {
  if (!(SERVICES as readonly string[]).includes(s)) fail(`--services: unknown service ${s}`);
  return s as Service;
});
const OUT = resolve(ROOT, opts.out);

function fail(message: string): never {
  process.stderr.write(`build-images: ${message}\n`);
  process.exit(1);
}

function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): void {
  const result = spawnSync(command, args, { stdio: ['ignore', 'inherit', 'inherit'], ...options });
  if (result.status !== 0)
    fail(`${command} ${args.slice(0, 3).join(' ')}… exited with ${String(result.status ?? result.signal)}`);
}

function git(...args: string[]): string {
  return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
}

const sourceDateEpoch = Number(process.env.SOURCE_DATE_EPOCH ?? git('log', '-1', '--pretty=%ct'));
if (!Number.isSafeInteger(sourceDateEpoch) || sourceDateEpoch < 0)
  fail('SOURCE_DATE_EPOCH must be whole seconds');
const revision = git('rev-parse', 'HEAD');
if (git('status', '--porcelain', '--untracked-files=no') !== '') {
  process.stderr.write(
    `warning: uncommitted changes: these images are not recomputable from revision ${revision}\n`,
  );
}
const locked: BaseLock | undefined = opts['update-lock']
  ? undefined
  : parseBaseLock(readFileSync(LOCK, 'utf8'));
/** The base's own epoch, from the lock: the base digest depends on the lock only, not on the commit. */
const baseEpoch = locked?.sourceDateEpoch ?? Math.floor(Date.now() / 86_400_000) * 86_400;
const DOCKERFILES = SERVICES.map((s) => join(ROOT, 'deploy/docker', `${s}.Dockerfile`));
const BASE_REPOSITORY = 'ghcr.io/tresor/base';
const BASE_TAG = `${SUITE}-nodejs20`;
const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/** The base root file system: mmdebstrap (extract: no maintainer scripts, so no shell is needed). */
function buildBase(work: string): { rootfs: string; packages: BasePackage[] } {
  const rootfs = join(work, 'base');
  rmSync(rootfs, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  const include =
    locked === undefined ? 'nodejs' : locked.packages.map((p) => `${p.name}=${p.version}`).join(',');
  const started = Date.now();
  run(
    'mmdebstrap',
    [
      '--quiet',
      '--variant=extract',
      `--include=${include}`,
      '--architectures=amd64',
      '--mode=root',
      '--format=directory',
      '--skip=cleanup/apt/cache',
      SUITE,
      rootfs,
      ...MIRRORS.map((m) => `deb ${m} ${SUITE} main`),
      `deb ${SECURITY} ${SUITE}-security main`,
    ],
    { env: { ...process.env, SOURCE_DATE_EPOCH: String(baseEpoch) } },
  );
  const archives = join(rootfs, 'var/cache/apt/archives');
  const packages = readdirSync(archives)
    .filter((f) => f.endsWith('.deb'))
    .map((file): BasePackage => {
      const path = join(archives, file);
      const [name = '', ver = '', arch = ''] = execFileSync(
        'dpkg-deb',
        ['-f', path, 'Package', 'Version', 'Architecture'],
        {
          encoding: 'utf8',
        },
      )
        .trim()
        .split('\n')
        .map((line) => line.replace(/^[A-Za-z]+: /, ''));
      return {
        name,
        version: ver,
        architecture: arch,
        sha256: createHash('sha256').update(readFileSync(path)).digest('hex'),
      };
    })
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (locked !== undefined) {
    const want = formatBaseLock({ sourceDateEpoch: baseEpoch, packages: locked.packages }, SUITE);
    const got = formatBaseLock({ sourceDateEpoch: baseEpoch, packages }, SUITE);
    if (want !== got) {
      fail(
        `the mirror resolved other base packages than ${LOCK}:\n${got}\nUpdate deliberately with \`npm run images -- --update-lock\` and commit the lock.`,
      );
    }
  }
  for (const drop of BASE_DROP) rmSync(join(rootfs, drop), { recursive: true, force: true });
  mkdirSync(join(rootfs, 'dev'));
  for (const dir of ['bin', 'lib', 'lib64', 'sbin']) {
    if (existsSync(join(rootfs, 'usr', dir)) && !existsSync(join(rootfs, dir))) {
      execFileSync('ln', ['-s', `usr/${dir}`, join(rootfs, dir)]);
    }
  }
  writeFileSync(
    join(rootfs, 'etc/passwd'),
    `root:x:0:0:root:/root:/usr/sbin/nologin\nnonroot:x:${NONROOT}:${NONROOT}:nonroot:/home/nonroot:/usr/sbin/nologin\n`,
  );
  writeFileSync(join(rootfs, 'etc/group'), `root:x:0:\nnonroot:x:${NONROOT}:\n`);
  mkdirSync(join(rootfs, 'home/nonroot'), { recursive: true });
  mkdirSync(join(rootfs, 'root'), { recursive: true, mode: 0o700 });
  // Debian's node reads /etc/ssl/certs/ca-certificates.crt; without ca-certificates (which needs a
  // shell and perl to install) the bundle is node's own Mozilla store, written by node itself.
  mkdirSync(join(rootfs, 'etc/ssl/certs'), { recursive: true });
  writeFileSync(join(rootfs, 'etc/ssl/certs/ca-certificates.crt'), '');
  const bundle = execFileSync(
    'chroot',
    [
      rootfs,
      '/usr/bin/node',
      '-e',
      "process.stdout.write(require('tls').rootCertificates.join('\\n')+'\\n')",
    ],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    },
  );
  writeFileSync(join(rootfs, 'etc/ssl/certs/ca-certificates.crt'), bundle);
  process.stdout.write(
    `base: ${packages.length} Debian packages, ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return { rootfs, packages };
}

/**
 * The inputs taken from the checkout once (package.json, package-lock.json, vendor/, each
 * workspace's package.json and dist/, the CLI bin): both builds of `--check` read this copy, so a
 * `tsc -b` running beside the build cannot make them differ.
 */
function snapshotInputs(): string {
  const source = join(OUT, '.work', 'source');
  rmSync(source, { recursive: true, force: true });
  mkdirSync(source, { recursive: true });
  const rootPackage = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
    workspaces: string[];
  };
  for (const file of ['package.json', 'package-lock.json']) cpSync(join(ROOT, file), join(source, file));
  cpSync(join(ROOT, 'vendor'), join(source, 'vendor'), { recursive: true });
  for (const workspace of rootPackage.workspaces) {
    mkdirSync(join(source, workspace), { recursive: true });
    cpSync(join(ROOT, workspace, 'package.json'), join(source, workspace, 'package.json'));
    const dist = join(ROOT, workspace, 'dist');
    if (existsSync(dist)) cpSync(dist, join(source, workspace, 'dist'), { recursive: true });
  }
  cpSync(join(ROOT, 'apps/cli/bin'), join(source, 'apps/cli/bin'), { recursive: true });
  return source;
}

/** /app: package.json of every workspace with its dist/, the CLI bin, production node_modules. */
function buildApp(source: string): string {
  // Always the same directory: node-gyp output may carry its build path.
  const app = join(OUT, '.work', 'app');
  rmSync(app, { recursive: true, force: true });
  mkdirSync(app, { recursive: true });
  const started = Date.now();
  const rootPackage = JSON.parse(readFileSync(join(source, 'package.json'), 'utf8')) as {
    workspaces: string[];
  };
  for (const file of ['package.json', 'package-lock.json']) cpSync(join(source, file), join(app, file));
  cpSync(join(source, 'vendor'), join(app, 'vendor'), { recursive: true });
  for (const workspace of rootPackage.workspaces) {
    mkdirSync(join(app, workspace), { recursive: true });
    cpSync(join(source, workspace, 'package.json'), join(app, workspace, 'package.json'));
  }
  const env = {
    ...process.env,
    npm_config_nodedir: '/usr',
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
    npm_config_audit: 'false',
    npm_config_prefer_offline: 'true',
    SOURCE_DATE_EPOCH: String(sourceDateEpoch),
  };
  // Scripts off for every package, then the two native modules built explicitly (node-gyp against
  // the Node 20 headers in /usr/include/node); node-llama-cpp runs from its prebuilt binary.
  run('npm', ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: app,
    env,
  });
  run('npm', ['rebuild', 'better-sqlite3', 'pkcs11js', '--loglevel=error'], { cwd: app, env });
  for (const native of ['better-sqlite3', 'pkcs11js']) {
    const dir = join(app, 'node_modules', native);
    const built = join(dir, 'build/Release');
    const keep = readdirSync(built).filter((f) => f.endsWith('.node'));
    const saved = keep.map((f) => [f, readFileSync(join(built, f))] as const);
    rmSync(join(dir, 'build'), { recursive: true, force: true });
    mkdirSync(built, { recursive: true });
    for (const [f, bytes] of saved) writeFileSync(join(built, f), bytes);
  }
  rmSync(join(app, 'vendor'), { recursive: true, force: true });
  for (const workspace of rootPackage.workspaces) {
    const dist = join(source, workspace, 'dist');
    if (existsSync(dist)) cpSync(dist, join(app, workspace, 'dist'), { recursive: true });
  }
  cpSync(join(source, 'apps/cli/bin'), join(app, 'apps/cli/bin'), { recursive: true });
  process.stdout.write(
    `app: npm ci --omit=dev + native builds, ${((Date.now() - started) / 1000).toFixed(1)} s\n`,
  );
  return app;
}

const isTestOrBuildInfo = (path: string) =>
  /\.(test|spec)\.(js|d\.ts)(\.map)?$|\.tsbuildinfo$|(^|\/)__snapshots__(\/|$)/.test(path);

/** Normalised modes: directories 0755, files 0755 when any execute bit was set, else 0644. */
const appMode = (_path: string, type: TarEntry['type'], onDisk: number) =>
  type === 'dir' ? 0o755 : type === 'symlink' ? 0o777 : (onDisk & 0o111) !== 0 ? 0o755 : 0o644;

interface Built {
  readonly base: string;
  readonly packages: readonly BasePackage[];
  readonly services: Map<Service, { digest: string; archive: string; size: number }>;
}

const CONFIG_COMMON = {
  architecture: 'amd64',
  user: `${NONROOT}:${NONROOT}`,
  env: [
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    'NODE_ENV=production',
    'HOME=/home/nonroot',
  ],
  exposedPorts: ['8443/tcp'],
} as const;

async function buildImages(work: string, source: string): Promise<Built> {
  const base = buildBase(work);
  const app = buildApp(source);
  const nodeVersion = base.packages.find((p) => p.name === 'nodejs')?.version ?? 'unknown';
  const baseHistory = `mmdebstrap --variant=extract ${SUITE} (${base.packages.length} packages, deploy/images/base-packages.lock)`;
  mkdirSync(OUT, { recursive: true });

  // The base alone, as an image of its own: what the Dockerfiles' runtime stage pins.
  const baseLayout = join(work, 'layout-base');
  const baseEntries = await collectTree(base.rootfs, {
    owner: (path) => (path === 'home/nonroot' ? [NONROOT, NONROOT] : [0, 0]),
    mode: (path, type, onDisk) => (path === 'tmp' ? 0o1777 : type === 'symlink' ? 0o777 : onDisk & ~0o022),
  });
  const baseLayer: Layer = await writeLayer(baseLayout, baseEntries, baseEpoch);
  const baseImage = await writeImage(baseLayout, [baseLayer], {
    ...CONFIG_COMMON,
    created: baseEpoch,
    entrypoint: ['/usr/bin/node'],
    cmd: [],
    workingDir: '/',
    labels: {
      'org.opencontainers.image.created': epochToIso(baseEpoch),
      'org.opencontainers.image.source': 'https://github.com/tresor/tresor',
      'org.opencontainers.image.title': 'tresor-base',
      'org.opencontainers.image.description': `Debian ${SUITE} nodejs ${nodeVersion}, no shell, apt or dpkg`,
    },
    history: [baseHistory],
  });
  await writeLayoutIndex(baseLayout, baseImage, BASE_TAG, `${BASE_REPOSITORY}:${BASE_TAG}`);
  await packArchive(baseLayout, join(OUT, 'base.oci.tar'), baseEpoch);
  process.stdout.write(
    `base: ${BASE_REPOSITORY}:${BASE_TAG}@${baseImage.manifest.digest} (${(baseLayer.size / 1048576).toFixed(1)} MiB compressed)\n`,
  );
  const baseBlob = join(baseLayout, 'blobs/sha256', baseLayer.digest.slice('sha256:'.length));

  const services = new Map<Service, { digest: string; archive: string; size: number }>();
  for (const service of SELECTED) {
    const started = Date.now();
    const dir = join(work, `layout-${service}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(join(dir, 'blobs/sha256'), { recursive: true });
    copyFileSync(baseBlob, join(dir, 'blobs/sha256', baseLayer.digest.slice('sha256:'.length)));
    const appEntries = await collectTree(app, {
      exclude: (path) => isTestOrBuildInfo(path) || (service !== 'serving' && SERVING_ONLY.includes(path)),
      mode: appMode,
    });
    const appLayer = await writeLayer(
      dir,
      [
        { type: 'dir', path: 'app', mode: 0o755, uid: 0, gid: 0 },
        ...appEntries.map((e) => ({ ...e, path: `app/${e.path}` })),
      ],
      sourceDateEpoch,
    );
    const repository = `${opts.registry}/${service}`;
    const image = await writeImage(dir, [baseLayer, appLayer], {
      ...CONFIG_COMMON,
      created: sourceDateEpoch,
      // The memory settings of every service process, as `tresor up` starts them; not in the base's
      // config, whose digest the Dockerfiles pin.
      env: [
        ...CONFIG_COMMON.env,
        ...Object.entries(serviceProcessEnv(service)).map(([name, value]) => `${name}=${value}`),
      ],
      entrypoint: ['/usr/bin/node', ...SERVICE_NODE_FLAGS, '/app/apps/cli/bin/tresor.js'],
      cmd: CMD[service],
      workingDir: '/app',
      labels: {
        'org.opencontainers.image.created': epochToIso(sourceDateEpoch),
        'org.opencontainers.image.revision': revision,
        'org.opencontainers.image.source': 'https://github.com/tresor/tresor',
        'org.opencontainers.image.title': `tresor-${service}`,
        'org.opencontainers.image.version': version,
        'org.opencontainers.image.base.name': `${BASE_REPOSITORY}:${BASE_TAG}`,
        'org.opencontainers.image.base.digest': baseImage.manifest.digest,
      },
      history: [baseHistory, `npm ci --omit=dev; tsc -b output of every workspace (${service})`],
    });
    await writeLayoutIndex(dir, image, version, `${repository}:${version}`);
    const archive = join(OUT, `${service}.oci.tar`);
    await packArchive(dir, archive, sourceDateEpoch);
    const size = image.layers.reduce((sum, l) => sum + l.size, 0);
    services.set(service, { digest: image.manifest.digest, archive, size });
    process.stdout.write(
      `${service}: ${repository}:${version}@${image.manifest.digest} (app layer ${(appLayer.size / 1048576).toFixed(1)} MiB, image ${(size / 1048576).toFixed(1)} MiB compressed, ${((Date.now() - started) / 1000).toFixed(1)} s)\n`,
    );
  }
  return { base: baseImage.manifest.digest, packages: base.packages, services };
}

/** Pins the base image in the lock and in the Dockerfiles' runtime stage. */
function recordBase(packages: readonly BasePackage[], digest: string): void {
  writeFileSync(LOCK, formatBaseLock({ sourceDateEpoch: baseEpoch, baseImage: digest, packages }, SUITE));
  for (const file of DOCKERFILES) {
    const text = readFileSync(file, 'utf8');
    const next = text.replace(
      /^ARG RUNTIME_IMAGE=.*$/m,
      `ARG RUNTIME_IMAGE=${BASE_REPOSITORY}:${BASE_TAG}@${digest}`,
    );
    if (next === text && !text.includes(digest)) fail(`${file}: no ARG RUNTIME_IMAGE line to pin`);
    writeFileSync(file, next);
  }
  process.stdout.write(`pinned base ${digest} in ${LOCK} and deploy/docker/*.Dockerfile\n`);
}

/** Unpacks an image with umoci (an independent OCI reader) and runs the CLI in it as uid 65532. */
function smoke(work: string, service: Service): void {
  const bundle = join(work, `bundle-${service}`);
  rmSync(bundle, { recursive: true, force: true });
  run('umoci', ['unpack', '--image', `${join(work, `layout-${service}`)}:${version}`, bundle]);
  const rootfs = join(bundle, 'rootfs');
  const result = spawnSync(
    '/usr/sbin/chroot',
    [`--userspec=${NONROOT}:${NONROOT}`, rootfs, '/usr/bin/node', '/app/apps/cli/bin/tresor.js', '--version'],
    { encoding: 'utf8', env: { PATH: '/usr/bin', HOME: '/home/nonroot', NODE_ENV: 'production' } },
  );
  if (result.status !== 0) {
    fail(`${service}: tresor --version in the image failed: ${result.error?.message ?? result.stderr}`);
  }
  // The native modules load on the image's Node (Debian's libnode, not the build machine's node).
  const natives = [
    "const Database = require('/app/node_modules/better-sqlite3'); const db = new Database(':memory:');",
    "db.prepare('select sqlite_version() as v').get().v + ' pkcs11js ' + typeof require('/app/node_modules/pkcs11js').PKCS11",
  ].join(' ');
  const native = spawnSync(
    '/usr/sbin/chroot',
    [`--userspec=${NONROOT}:${NONROOT}`, rootfs, '/usr/bin/node', '-p', natives],
    { encoding: 'utf8', env: { PATH: '/usr/bin', HOME: '/home/nonroot' } },
  );
  if (native.status !== 0) fail(`${service}: native modules do not load in the image: ${native.stderr}`);
  const shells = ['bin/sh', 'bin/bash', 'usr/bin/dpkg', 'usr/bin/apt'].filter((p) =>
    existsSync(join(rootfs, p)),
  );
  if (shells.length > 0) fail(`${service}: the image contains ${shells.join(', ')}`);
  process.stdout.write(
    `${service}: runs as ${NONROOT}: tresor --version → ${result.stdout.trim()}; sqlite ${native.stdout.trim()}; no shell, apt or dpkg\n`,
  );
  rmSync(bundle, { recursive: true, force: true });
}

if (process.getuid?.() !== 0) fail('run as root (mmdebstrap --mode=root, chroot); see docs/deploy.md');
if (!opts['no-build']) run('npm', ['run', 'build', '--silent'], { cwd: ROOT });
const startedAll = Date.now();
const workRoot = join(OUT, '.work');
const source = snapshotInputs();
const first = await buildImages(join(workRoot, 'a'), source);
if (locked?.baseImage === undefined) {
  recordBase(first.packages, first.base);
} else if (locked.baseImage !== first.base) {
  fail(
    `the base image is ${first.base}, the lock says ${locked.baseImage}: same packages, other bytes (compare the build machine's Node/zlib and mmdebstrap with docs/deploy.md)`,
  );
}
if (!opts['no-smoke']) for (const service of SELECTED) smoke(join(workRoot, 'a'), service);
const imagesFile = join(OUT, 'images.json');
writeFileSync(
  imagesFile,
  formatImagesFile(
    Object.fromEntries(
      [...first.services].map(([service, r]) => [
        service,
        `${opts.registry}/${service}:${version}@${r.digest}`,
      ]),
    ),
  ),
);
process.stdout.write(`wrote ${imagesFile} (tresor deploy render --images ${opts.out}/images.json)\n`);
if (opts.check) {
  const archives = new Map(
    [...first.services].map(([s, r]) => [
      s,
      createHash('sha256').update(readFileSync(r.archive)).digest('hex'),
    ]),
  );
  const second = await buildImages(join(workRoot, 'b'), source);
  const differ: string[] = first.base === second.base ? [] : ['base'];
  process.stdout.write(
    `check base: ${first.base} ${first.base === second.base ? '=' : '≠'} ${second.base}\n`,
  );
  for (const s of SELECTED) {
    const [a, b] = [first.services.get(s)?.digest, second.services.get(s)?.digest];
    const again = createHash('sha256')
      .update(readFileSync(second.services.get(s)?.archive ?? ''))
      .digest('hex');
    if (a !== b || archives.get(s) !== again) differ.push(s);
    process.stdout.write(
      `check ${s}: ${a} ${a === b ? '=' : '≠'} ${b}; archive ${archives.get(s) === again ? 'identical' : 'DIFFERENT'}\n`,
    );
  }
  if (differ.length > 0)
    fail(`not reproducible: ${differ.join(', ')} (compare ${workRoot}/a and ${workRoot}/b)`);
}
rmSync(workRoot, { recursive: true, force: true });
process.stdout.write(`done in ${((Date.now() - startedAll) / 1000).toFixed(0)} s\n`);
