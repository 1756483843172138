/**
 * `npm run audit:deps`: dependency hygiene for what Tresor ships (production dependencies only).
 *
 * 1. `npm audit --omit=dev --json` against the registry: every advisory must be fixed or listed,
 *    with its reason, under `advisories` in scripts/dependency-exceptions.json.
 * 2. Licences: every installed production package's `license` field (read from its own
 *    package.json) must be an allowlisted permissive licence, or an SPDX expression that allows
 *    choosing one (`(MIT OR Apache-2.0)`), or be listed with a reason under `licences`.
 *
 * Exit 0 when both are clean; 1 on any finding (the report says which and what to do); 2 when the
 * audit could not run (no registry access): this check fails closed, never "passes" offline.
 * `--licences-only` skips the registry audit (offline checkouts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = new URL('..', import.meta.url).pathname;
const EXCEPTIONS_FILE = join(ROOT, 'scripts/dependency-exceptions.json');

/** Permissive licences: use, modification and redistribution in a closed product with notice only. */
const ALLOWED = new Set([
  'MIT',
  'MIT-0',
  'Apache-2.0',
  'ISC',
  'BSD-2-Clause',
  'BSD-3-Clause',
  '0BSD',
  'BlueOak-1.0.0',
  'CC0-1.0',
  'Unlicense',
  'Zlib',
  'Python-2.0',
]);

interface Exceptions {
  /** Package name → why its licence is acceptable. */
  readonly licences: Readonly<Record<string, string>>;
  /** Advisory id (GHSA-…) or package name → why it does not affect Tresor, and until when. */
  readonly advisories: Readonly<Record<string, string>>;
}

interface QueriedPackage {
  readonly name: string;
  readonly version: string;
  readonly path: string;
  readonly location: string;
  readonly private?: boolean;
}

interface AuditVulnerability {
  readonly name: string;
  readonly severity: string;
  readonly range: string;
  readonly via: readonly (
    string | { readonly source?: number; readonly url?: string; readonly title?: string }
  )[];
  readonly fixAvailable: unknown;
}

const { values } = parseArgs({ options: { 'licences-only': { type: 'boolean', default: false } } });

function readExceptions(): Exceptions {
  if (!existsSync(EXCEPTIONS_FILE)) return { licences: {}, advisories: {} };
  const parsed = JSON.parse(readFileSync(EXCEPTIONS_FILE, 'utf8')) as Partial<Exceptions>;
  return { licences: parsed.licences ?? {}, advisories: parsed.advisories ?? {} };
}

function npm(args: readonly string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('npm', args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The SPDX licence of an installed package, from its own package.json (legacy `licenses` arrays too). */
function licenceOf(pkg: QueriedPackage): string | null {
  const manifest = JSON.parse(readFileSync(join(pkg.path, 'package.json'), 'utf8')) as {
    license?: unknown;
    licenses?: unknown;
  };
  if (typeof manifest.license === 'string') return manifest.license;
  if (typeof manifest.license === 'object' && manifest.license !== null) {
    const type = (manifest.license as { type?: unknown }).type;
    return typeof type === 'string' ? type : null;
  }
  if (Array.isArray(manifest.licenses)) {
    const types = manifest.licenses
      .map((l: unknown) => (typeof l === 'object' && l !== null ? (l as { type?: unknown }).type : undefined))
      .filter((t): t is string => typeof t === 'string');
    return types.length === 0 ? null : `(${types.join(' OR ')})`;
  }
  return null;
}

/** True when the expression lets us use the package under allowlisted terms only. */
function permitted(expression: string): boolean {
  const bare = expression.replace(/[()]/g, ' ').trim();
  if (/\bAND\b/.test(bare)) return bare.split(/\s+AND\s+/).every((part) => permitted(part));
  return bare.split(/\s+OR\s+/).some((id) => ALLOWED.has(id.trim()));
}

function checkLicences(exceptions: Exceptions): string[] {
  const query = npm(['query', '.prod']);
  if (query.status !== 0) throw new Error(`npm query .prod failed: ${query.stderr}`);
  const packages = (JSON.parse(query.stdout) as QueriedPackage[]).filter(
    // Our own workspaces (private, linked from the repository) are not third-party dependencies.
    (p) => p.location.includes('node_modules/') && p.private !== true,
  );
  const seen = new Map<string, { licence: string | null; versions: Set<string> }>();
  for (const p of packages) {
    const entry = seen.get(p.name) ?? { licence: licenceOf(p), versions: new Set<string>() };
    entry.versions.add(p.version);
    seen.set(p.name, entry);
  }
  const tally = new Map<string, number>();
  const findings: string[] = [];
  for (const [name, { licence, versions }] of [...seen.entries()].sort()) {
    tally.set(licence ?? '(none)', (tally.get(licence ?? '(none)') ?? 0) + 1);
    if (licence !== null && permitted(licence)) continue;
    if (exceptions.licences[name] !== undefined) continue;
    findings.push(
      `${name}@${[...versions].join(',')}: licence ${licence ?? '(none declared)'} is not on the allowlist — replace the package, or add it to scripts/dependency-exceptions.json "licences" with the reason it is acceptable`,
    );
  }
  console.log(`licences of ${seen.size} production packages (${packages.length} installed copies):`);
  for (const [licence, n] of [...tally.entries()].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${String(n).padStart(4)}  ${licence}`);
  }
  return findings;
}

function checkAdvisories(exceptions: Exceptions): string[] | null {
  const audit = npm(['audit', '--omit=dev', '--json']);
  let report: { vulnerabilities?: Record<string, AuditVulnerability>; metadata?: unknown; error?: unknown };
  try {
    report = JSON.parse(audit.stdout) as typeof report;
  } catch {
    report = {};
  }
  if (report.vulnerabilities === undefined) {
    console.error(
      `npm audit did not produce a report (exit ${audit.status}): ${audit.stderr.trim() || JSON.stringify(report.error)}`,
    );
    return null;
  }
  const vulnerabilities = Object.values(report.vulnerabilities);
  console.log(`npm audit --omit=dev: ${vulnerabilities.length} vulnerable packages`);
  const findings: string[] = [];
  for (const v of vulnerabilities) {
    const advisories = v.via.flatMap((via) =>
      typeof via === 'string' ? [] : [via.url?.split('/').pop() ?? String(via.source)],
    );
    const documented =
      exceptions.advisories[v.name] !== undefined ||
      advisories.some((id) => exceptions.advisories[id] !== undefined);
    const line = `${v.name} ${v.range} (${v.severity})${advisories.length > 0 ? `: ${advisories.join(', ')}` : ` via ${v.via.filter((x): x is string => typeof x === 'string').join(', ')}`}`;
    console.log(`  ${documented ? 'documented' : 'OPEN      '}  ${line}`);
    if (!documented) {
      findings.push(
        `${line} — upgrade it (fix available: ${JSON.stringify(v.fixAvailable)}), or document why it does not affect Tresor in scripts/dependency-exceptions.json "advisories"`,
      );
    }
  }
  return findings;
}

const exceptions = readExceptions();
const findings = checkLicences(exceptions);
let auditRan = true;
if (!values['licences-only']) {
  const advisories = checkAdvisories(exceptions);
  if (advisories === null) auditRan = false;
  else findings.push(...advisories);
}
for (const f of findings) console.error(`FINDING ${f}`);
if (findings.length > 0) process.exit(1);
if (!auditRan) {
  console.error(
    'INPUT_UNREADABLE: the npm audit could not run; check registry access and rerun (licences are clean)',
  );
  process.exit(2);
}
console.log('dependency hygiene: clean');
