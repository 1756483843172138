import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { lintDockerfile, parseDockerfile, type DockerfileRule } from './dockerfile-lint.js';

const dockerDir = fileURLToPath(new URL('../docker/', import.meta.url));
const dockerfiles = readdirSync(dockerDir).filter((name) => name.endsWith('.Dockerfile'));
const PINNED_NODE = `node:20-bookworm-slim@sha256:${'2c'.repeat(32)}`;

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

  it.each(dockerfiles)('%s: pinned bases, non-root user, npm ci --omit=dev, no latest', (name) => {
    const text = readFileSync(`${dockerDir}${name}`, 'utf8');
    expect(lintDockerfile(text, { allowPlaceholderDigests: true })).toEqual([]);
    // The distroless digest is still the placeholder (see the file's header): release mode refuses it.
    expect(rules(text)).toEqual(['placeholder-digest']);
    expect(text).toMatch(/^USER 65532:65532$/m);
    expect(text).not.toMatch(/:latest\b/);
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
