import type { TeeKind } from '@tresor/attestation';
import type { AttestVerifyOutput } from './attest-verify.js';

const TEE_TITLE: Readonly<Record<TeeKind, string>> = {
  snp: 'AMD SEV-SNP report',
  tdx: 'Intel TDX quote',
  nvidia: 'NVIDIA GPU evidence',
  // The sample TEE says what it is in the first line, wherever it is shown (DESIGN.md §2).
  sample: 'sample TEE evidence (software stand-in: no hardware protects it)',
};

function scalarText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return value === null || value === undefined ? '-' : JSON.stringify(value);
}

/**
 * A top-level list of objects (the GPUs of an NVIDIA evidence list) is shown entry by entry; longer
 * or nested lists (64 measurement blocks) are summarised, since --json has them in full.
 */
const MAX_EXPANDED_ENTRIES = 16;

function claimRows(value: unknown, path: string, depth: number, rows: [string, string][]): void {
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v !== 'object' || v === null)) {
      rows.push([path, value.map(scalarText).join(', ')]);
    } else if (depth > 1 || value.length > MAX_EXPANDED_ENTRIES) {
      rows.push([path, `(${value.length} entries; see --json)`]);
    } else {
      value.forEach((v, i) => {
        claimRows(v, `${path}[${i}]`, depth + 1, rows);
      });
    }
    return;
  }
  if (typeof value === 'object' && value !== null) {
    for (const [key, v] of Object.entries(value))
      claimRows(v, path === '' ? key : `${path}.${key}`, depth + 1, rows);
    return;
  }
  rows.push([path, scalarText(value)]);
}

function table(rows: readonly [string, string][], indent: string): string {
  const width = Math.min(40, Math.max(0, ...rows.map(([k]) => k.length)));
  return rows.map(([k, v]) => `${indent}${k.padEnd(width)}  ${v}`).join('\n');
}

/** The readable rendering of `tresor attest verify` (without --json). */
export function renderAttestVerify(output: AttestVerifyOutput, at: Date): string {
  const verdict = output.valid ? 'VALID' : `INVALID (${output.error ?? 'unknown'})`;
  const lines = [`${TEE_TITLE[output.tee]}: ${verdict}`, `verified at ${at.toISOString()}`];
  if (output.appraisal !== undefined) {
    const submod = Object.values(output.appraisal.ear.submods)[0];
    lines.push(
      `appraised against policy ${submod?.['ear.appraisal-policy-id'] ?? '?'}: ${output.appraisal.status}`,
    );
  }
  lines.push('', 'checks');
  for (const [name, check] of Object.entries(output.checks)) {
    const mark = check.ok ? '✓' : '✗';
    const why = check.ok
      ? (check.detail ?? '')
      : `${check.code ?? ''}${check.detail === undefined ? '' : `: ${check.detail}`}`;
    lines.push(`  ${mark} ${name}${why === '' ? '' : `  ${why}`}`);
  }
  if (output.appraisal !== undefined) {
    const submod = Object.values(output.appraisal.ear.submods)[0];
    if (submod !== undefined) {
      lines.push('', 'trust vector (AR4SI)');
      lines.push(
        table(
          Object.entries(submod['ear.trustworthiness-vector']).map(([k, v]) => [k, String(v)]),
          '  ',
        ),
      );
    }
  }
  const rows: [string, string][] = [];
  claimRows(output.claims, '', 0, rows);
  lines.push('', 'claims', table(rows, '  '), '');
  return lines.join('\n');
}
