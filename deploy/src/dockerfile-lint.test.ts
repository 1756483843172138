import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lintDockerfile, parseDockerfile, type DockerfileRule } from './dockerfile-lint.js';
import { parseBaseLock } from './image-digests.js';

const dockerDir = fileURLToPath(new URL('../docker/', import.meta.url));
const dockerfiles = readdirSync(dockerDir).filter((name) => name.endsWith('.Dockerfile'));
const PINNED_NODE = `node:20-bookworm-slim@sha256:${'2c'.repeat(32)}`;
const lock = parseBaseLock(
  readFileSync(fileURLToPath(new URL('../images/base-packages.lock', import.meta.url)), 'utf8'),
);
/** The base `npm run images` builds from the lock: the runtime stage of every Dockerfile. */
const RUNTIME_BASE = `ghcr.io/tresor/base:trixie-nodejs20@${lock.baseImage ?? 'missing'}`;

const GOOD = `ARG BASE=${PINNED_NODE}
FROM \${BASE} AS build
RUN npm ci && npm run build
FROM build AS deps
RUN npm ci --omit=dev
FROM gcr.io/distroless/nodejs20-debian12@sha256:${'ab'.repeat(32)}
COPY --from=deps /src /app
USER 65532:65532
`;

function rules(text: string, allowPlaceholderDigests = false): DockerfileRule[] {
  return lintDockerfile(text, { allowPlaceholderDigests }).map((f) => f.rule);
}

describe('Dockerfile lint', () => {
  it('finds one Dockerfile per service', () => {
    expect(dockerfiles.sort()).toEqual(['gateway.Dockerfile', 'serving.Dockerfile', 'trust.Dockerfile']);
  });

  it.each(dockerfiles)(
    '%s: pinned bases, runtime = the base built from the lock, non-root, npm ci --omit=dev',
    (name) => {
      const text = readFileSync(`${dockerDir}${name}`, 'utf8');
      expect(lock.baseImage).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(lintDockerfile(text, { runtimeBase: RUNTIME_BASE })).toEqual([]);
      expect(text).toContain(`ARG RUNTIME_IMAGE=${RUNTIME_BASE}\n`);
      expect(text).toMatch(/^USER 65532:65532$/m);
      // Node flags between node and the bin: test/unit/service-memory-settings.test.ts checks them.
      expect(text).toMatch(
        /^ENTRYPOINT \["\/usr\/bin\/node", (?:"--[^"]+", )*"\/app\/apps\/cli\/bin\/tresor\.js"\]$/m,
      );
      expect(text).not.toMatch(/:latest\b/);
    },
  );

  it('flags a final stage that does not start from the locked base', () => {
    const locked = `ghcr.io/tresor/base:trixie-nodejs20@sha256:${'cd'.repeat(32)}`;
    const distroless = `gcr.io/distroless/nodejs20-debian12@sha256:${'ab'.repeat(32)}`;
    const runtimeBase = (text: string) => lintDockerfile(text, { runtimeBase: locked }).map((f) => f.rule);
    expect(runtimeBase(GOOD.replace(distroless, locked))).toEqual([]);
    expect(runtimeBase(GOOD.replace(distroless, locked.replace('cd', 'ce')))).toEqual(['runtime-base']);
    expect(runtimeBase(GOOD)).toEqual(['runtime-base']);
  });

  it('accepts a well-formed file', () => {
    expect(lintDockerfile(GOOD)).toEqual([]);
  });

  const negatives: [string, string, DockerfileRule][] = [
    ['a tag-only base', GOOD.replace(`@sha256:${'ab'.repeat(32)}`, ':nonroot'), 'unpinned-base'],
    [
      'a latest base',
      GOOD.replace(`gcr.io/distroless/nodejs20-debian12@`, 'gcr.io/distroless/nodejs20-debian12:latest@'),
      'latest-tag',
    ],
    ['an unpinned ARG base', GOOD.replace(PINNED_NODE, 'node:20-bookworm-slim'), 'unpinned-base'],
    ['the placeholder digest', GOOD.replace('ab'.repeat(32), '0'.repeat(64)), 'placeholder-digest'],
    ['no USER in the final stage', GOOD.replace('USER 65532:65532\n', ''), 'no-user'],
    ['USER root', GOOD.replace('USER 65532:65532', 'USER root'), 'root-user'],
    ['USER 0', GOOD.replace('USER 65532:65532', 'USER 0'), 'root-user'],
    ['the root group', GOOD.replace('USER 65532:65532', 'USER 65532:0'), 'root-user'],
    ['npm install', GOOD.replace('npm ci && npm run build', 'npm install && npm run build'), 'npm-install'],
    ['no --omit=dev', GOOD.replace('npm ci --omit=dev', 'npm ci'), 'no-omit-dev'],
    ['ADD of a URL', `${GOOD}ADD https://example.com/x.tgz /x.tgz\n`, 'remote-add'],
  ];
  it.each(negatives)('flags %s', (_what, text, rule) => {
    expect(rules(text)).toContain(rule);
  });

  it('only the final stage USER counts', () => {
    const text = GOOD.replace('FROM build AS deps', 'USER 65532\nFROM build AS deps').replace(
      'USER 65532:65532\n',
      '',
    );
    expect(rules(text)).toContain('no-user');
  });

  it('joins continuation lines and skips comments', () => {
    const parsed = parseDockerfile('# c\nRUN a \\\n  # inner\n  b\nUSER x\n');
    expect(parsed).toEqual([
      { line: 2, keyword: 'RUN', args: 'a  b' },
      { line: 5, keyword: 'USER', args: 'x' },
    ]);
  });
});
