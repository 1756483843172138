import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { bytesToBase64 } from '@tresor/crypto';
import { sampleMachineId } from '@tresor/trust';
import { sendAdminOperation } from '../commands/trust-client.js';
import { LOCAL_JURISDICTION, LOCAL_TRUST_ISSUER } from './trust-setup.js';
import type { PlatformSecrets } from './state.js';

/**
 * The signed admin requests `tresor up` sends to its own trust service, exactly as
 * `tresor trust admin …` would: the residency inventory naming the sample TEE's machine as CH, the
 * reference values of the local build, and model keys.
 */

export interface TrustAdmin {
  call(operation: string, request: unknown): Promise<Record<string, unknown>>;
}

export function trustAdmin(url: string, ca: string, secrets: PlatformSecrets, now: () => Date): TrustAdmin {
  const endpoint = { url: new URL(url), ca };
  return {
    call: (operation, request) =>
      sendAdminOperation(endpoint, secrets.adminKey, LOCAL_TRUST_ISSUER, operation, request, now()),
  };
}

/** The sample TEE's installation key is its "machine": listed as standing in Switzerland. */
export async function putLocalInventory(admin: TrustAdmin, secrets: PlatformSecrets): Promise<void> {
  await admin.call('inventory/replace', {
    hardware: [
      {
        id: sampleMachineId(secrets.sampleKey.verifyKey),
        kind: 'sample-machine',
        jurisdiction: LOCAL_JURISDICTION,
        site: 'this computer (sample TEE, local mode)',
      },
    ],
  });
}

/**
 * The sample TEE measurement of a local build: SHA-384 over the compiled files of the component
 * (path and content, in sorted order), so a rebuilt component is a new release that the trust
 * service must be told about, as a real TEE measurement changes with the image.
 */
export async function localBuildMeasurement(distDir: string): Promise<string> {
  const hash = createHash('sha384');
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      const name = `${prefix}${entry.name}`;
      if (entry.isDirectory()) await walk(path, `${name}/`);
      else if (entry.isFile() && entry.name.endsWith('.js')) {
        hash.update(`${name}\0`);
        hash.update(await readFile(path));
        hash.update('\0');
      }
    }
  };
  await walk(distDir, '');
  return hash.digest('hex');
}

export interface LocalRelease {
  readonly component: string;
  readonly measurement: string;
  readonly modelDigests?: readonly string[];
}

/** `local-<first 12 hex digits of the measurement>`: one release label per build. */
export function localReleaseLabel(measurement: string): string {
  return `local-${measurement.slice(0, 12)}`;
}

export async function putReferenceValues(admin: TrustAdmin, release: LocalRelease): Promise<void> {
  await admin.call('reference-values/put', {
    component: release.component,
    release: localReleaseLabel(release.measurement),
    tee: 'sample',
    measurements: { measurement: [release.measurement] },
    ...(release.modelDigests === undefined ? {} : { modelDigests: [...release.modelDigests] }),
  });
}

export async function putModelKey(admin: TrustAdmin, path: string, key: Uint8Array): Promise<void> {
  await admin.call('resources/put', { path, value: bytesToBase64(key) });
}
