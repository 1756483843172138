import { access } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONSOLE_PREFIX, loadConsoleBuild, type ConsoleBuild } from '@tresor/gateway';
import { localReleaseLabel, type TrustAdmin } from './provision-trust.js';

/**
 * The web console in `tresor up`: the gateway serves the build at /console/ (when one is there:
 * `npm start` builds it), its page hash goes into the signed reference values as a release of
 * component `console`, and the ready output prints a link that carries the trust policy in its
 * fragment — from `tresor up`, which made the policy, not from the gateway it verifies.
 */

/** apps/console/dist of this checkout (apps/cli/dist/platform -> apps/console/dist). */
export const CONSOLE_DIST = fileURLToPath(new URL('../../../console/dist', import.meta.url));
/** The measurement name a console release lists its page hash under (apps/console/src/page-reference.ts). */
export const PAGE_HASH_MEASUREMENT = 'page_sha256';

/**
 * The console build in `dir`, or undefined when there is none (not built). A build that is there
 * but differs from its manifest is refused (CONFIG_INVALID): it must not be served, and a hash
 * nobody released must not go into the reference values.
 */
export async function findConsoleBuild(dir: string): Promise<ConsoleBuild | undefined> {
  try {
    await access(join(dir, 'index.html'));
  } catch {
    return undefined;
  }
  return loadConsoleBuild(dir);
}

/**
 * A console release: component `console`, the page hash as measurement `page_sha256`. The TEE kind
 * is the one of the gateway serving it (a reference value set needs one); no verifier reports a
 * measurement of that name, so the set never matches a workload's evidence.
 */
export async function putConsoleReferenceValues(admin: TrustAdmin, pageHash: string): Promise<void> {
  await admin.call('reference-values/put', {
    component: 'console',
    release: localReleaseLabel(pageHash),
    tee: 'sample',
    measurements: { [PAGE_HASH_MEASUREMENT]: [pageHash] },
  });
}

/**
 * The console's URL at the gateway, with the trust policy and the admin audience in the fragment
 * (`#policy=<base64url JSON>&aud=<audience>`): a browser never sends a fragment to the server, and
 * the page removes it from the address bar once read (apps/console/src/console-config.ts).
 */
export function consoleLink(gatewayUrl: string, policy: unknown, audience: string): string {
  const encoded = Buffer.from(JSON.stringify(policy), 'utf8').toString('base64url');
  return `${gatewayUrl}${CONSOLE_PREFIX}/#policy=${encoded}&aud=${encodeURIComponent(audience)}`;
}
