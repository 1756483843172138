/**
 * A textual check of Tresor's Dockerfiles (no Docker needed): every base image pinned by digest,
 * never `latest`, the final stage running as a non-root user, production dependencies installed with
 * `npm ci --omit=dev`, nothing fetched by `ADD <url>`. The image digest is what the reference values
 * and the init data (`tresor-image`) name, so an unpinned base would make it unreproducible.
 */
export type DockerfileRule =
  | 'unpinned-base'
  | 'latest-tag'
  | 'placeholder-digest'
  | 'root-user'
  | 'no-user'
  | 'npm-install'
  | 'no-omit-dev'
  | 'remote-add'
  | 'runtime-base';

export interface DockerfileFinding {
  readonly rule: DockerfileRule;
  readonly line: number;
  readonly message: string;
}

export interface DockerfileLintOptions {
  /**
   * Accept the all-zero placeholder digest (an image whose digest could not be verified when the
   * file was written). Release builds leave this off: the placeholder cannot be pulled anyway.
   */
  readonly allowPlaceholderDigests?: boolean;
  /**
   * The exact image the final stage must start from: for Tresor's Dockerfiles, the base image built
   * daemonlessly from deploy/images/base-packages.lock (`npm run images`), pinned by its digest.
   */
  readonly runtimeBase?: string;
}

interface Instruction {
  readonly line: number;
  readonly keyword: string;
  readonly args: string;
}

const PINNED = /@sha256:[0-9a-f]{64}$/;
const PLACEHOLDER = /@sha256:0{64}$/;

/** Joins continuation lines and drops comments; keeps the line number where each instruction starts. */
export function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  const lines = text.split(/\r?\n/);
  let pending: { line: number; text: string } | undefined;
  lines.forEach((raw, index) => {
    const trimmed = raw.trim();
    if (pending === undefined && (trimmed === '' || trimmed.startsWith('#'))) return;
    if (pending !== undefined && trimmed.startsWith('#')) return;
    const continued = trimmed.endsWith('\\');
    const body = continued ? trimmed.slice(0, -1) : trimmed;
    pending =
      pending === undefined
        ? { line: index + 1, text: body }
        : { ...pending, text: `${pending.text} ${body}` };
    if (!continued) {
      const match = /^(\S+)\s*(.*)$/.exec(pending.text);
      if (match !== null) {
        instructions.push({ line: pending.line, keyword: match[1]!.toUpperCase(), args: match[2]!.trim() });
      }
      pending = undefined;
    }
  });
  return instructions;
}

/** Replaces ${NAME} / $NAME with ARG defaults seen so far. */
function substitute(text: string, args: ReadonlyMap<string, string>): string {
  return text.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, braced, bare) => {
    const name = (braced ?? bare) as string;
    return args.get(name) ?? whole;
  });
}

export function lintDockerfile(text: string, options: DockerfileLintOptions = {}): DockerfileFinding[] {
  const findings: DockerfileFinding[] = [];
  const add = (rule: DockerfileRule, line: number, message: string) => findings.push({ rule, line, message });
  const args = new Map<string, string>();
  const stages = new Set<string>();
  let finalStageUser: { line: number; user: string } | undefined;
  let finalStageLine = 0;
  let finalStageImage = '';
  let omitDev = false;

  for (const instruction of parseDockerfile(text)) {
    const { keyword, line } = instruction;
    if (keyword === 'ARG') {
      const match = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(instruction.args);
      if (match?.[2] !== undefined) args.set(match[1]!, match[2].replace(/^["']|["']$/g, ''));
    } else if (keyword === 'FROM') {
      const words = instruction.args.split(/\s+/).filter((w) => !w.startsWith('--'));
      const image = substitute(words[0] ?? '', args);
      const alias = words[1]?.toUpperCase() === 'AS' ? words[2] : undefined;
      finalStageLine = line;
      finalStageImage = image;
      finalStageUser = undefined;
      if (!stages.has(image) && image !== 'scratch') {
        if (/:latest(@|$)/.test(image)) add('latest-tag', line, `base image ${image} uses the tag "latest"`);
        if (!PINNED.test(image)) {
          add('unpinned-base', line, `base image ${image} is not pinned by @sha256 digest`);
        } else if (PLACEHOLDER.test(image) && options.allowPlaceholderDigests !== true) {
          add('placeholder-digest', line, `base image ${image} has the placeholder digest; pin the real one`);
        }
      }
      if (alias !== undefined) stages.add(alias);
    } else if (keyword === 'USER') {
      finalStageUser = { line, user: substitute(instruction.args, args) };
    } else if (keyword === 'RUN') {
      if (/\bnpm\s+(?:install|i)\b/.test(instruction.args)) {
        add('npm-install', line, 'use `npm ci` (exactly the lockfile), not `npm install`');
      }
      if (/\bnpm\s+ci\b[^;&|]*--omit=dev/.test(instruction.args)) omitDev = true;
    } else if (keyword === 'ADD' && /\bhttps?:\/\//.test(instruction.args)) {
      add('remote-add', line, 'ADD <url> fetches unpinned bytes; download in a RUN step and check a digest');
    }
  }
  if (finalStageUser === undefined) {
    add('no-user', finalStageLine, 'the final stage sets no USER, so the image would run as root');
  } else {
    const [user = '', group] = finalStageUser.user.split(':');
    if (user === 'root' || user === '0' || group === '0' || group === 'root') {
      add('root-user', finalStageUser.line, `the final stage runs as ${finalStageUser.user} (root)`);
    }
  }
  if (options.runtimeBase !== undefined && finalStageImage !== options.runtimeBase) {
    add(
      'runtime-base',
      finalStageLine,
      `the final stage starts from ${finalStageImage}, not ${options.runtimeBase} (run \`npm run images -- --update-lock\` to pin the base)`,
    );
  }
  if (!omitDev) add('no-omit-dev', 1, 'production dependencies must be installed with `npm ci --omit=dev`');
  return findings;
}
