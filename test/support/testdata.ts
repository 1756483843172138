import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** Root of the shared, read-only test data (../shared/testdata beside the checkout). */
export const TESTDATA_DIR = fileURLToPath(new URL('../../../shared/testdata/', import.meta.url));

export function testdataPath(rel: string): string {
  return TESTDATA_DIR + rel;
}

export function readTestdata(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(testdataPath(rel)));
}

export function readTestdataText(rel: string): string {
  return readFileSync(testdataPath(rel), 'utf8');
}

export function readTestdataJson(rel: string): unknown {
  return JSON.parse(readTestdataText(rel));
}

/** Vector folders under attestation/<tee>/, e.g. vectorDirs('snp') → ['snp/azure-genoa-v3', …]. */
export function vectorDirs(tee: 'snp' | 'tdx' | 'nvidia'): string[] {
  return readdirSync(testdataPath(`attestation/${tee}`))
    .sort()
    .map((name) => `attestation/${tee}/${name}`);
}
