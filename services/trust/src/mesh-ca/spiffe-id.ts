import { TresorError } from '@tresor/protocol';
import { COMPONENT_PATTERN } from '../reference-values/reference-value-set.js';

/** The trust domain of mesh identities unless configured otherwise. */
export const DEFAULT_TRUST_DOMAIN = 'tresor.local';

/** The path segment that stands for "no tenant" (a shared workload). */
export const NO_TENANT = '_';

/** SPIFFE trust domain names: lower-case letters, digits, `.`, `-`, `_` (SPIFFE-ID §2.1). */
const TRUST_DOMAIN = /^[a-z0-9._-]{1,255}$/;
/** A tenant: the keystore's tenant alphabet (letters, digits, `_`, `-`), which SPIFFE-ID §2.2 allows in a segment. */
const TENANT = /^[A-Za-z0-9_-]{1,64}$/;

/** Who a mesh certificate names: `spiffe://<trust domain>/<component>/<tenant or _>`. */
export interface MeshIdentity {
  readonly trustDomain: string;
  readonly component: string;
  /** null for a workload that serves no tenant in particular. */
  readonly tenant: string | null;
}

/** Checks a configured trust domain. @throws TresorError CONFIG_INVALID */
export function parseTrustDomain(value: string): string {
  if (!TRUST_DOMAIN.test(value) || value.startsWith('.') || value.endsWith('.')) {
    throw new TresorError(
      'CONFIG_INVALID',
      `meshCa.trustDomain ${JSON.stringify(value)} is not a SPIFFE trust domain name`,
    );
  }
  return value;
}

/**
 * The SPIFFE ID of a mesh identity. Every part is checked, so the URI needs no escaping and no
 * segment can be `.`, `..` or empty (SPIFFE-ID §2.2). A tenant literally named `_` is refused: it
 * would read as "no tenant".
 *
 * @throws TresorError USAGE_INVALID
 */
export function meshSpiffeId(identity: MeshIdentity): string {
  const { trustDomain, component, tenant } = identity;
  if (!TRUST_DOMAIN.test(trustDomain))
    throw new TresorError('USAGE_INVALID', 'the trust domain is not a SPIFFE trust domain name');
  if (!COMPONENT_PATTERN.test(component))
    throw new TresorError('USAGE_INVALID', `"${component}" is not a component name`);
  if (tenant !== null && (!TENANT.test(tenant) || tenant === NO_TENANT)) {
    throw new TresorError(
      'USAGE_INVALID',
      'a tenant id is 1 to 64 characters of letters, digits, "_" and "-", and not "_" alone',
    );
  }
  return `spiffe://${trustDomain}/${component}/${tenant ?? NO_TENANT}`;
}

/**
 * Reads a mesh SPIFFE ID back (what a peer does with the URI SAN of a certificate it was shown).
 * Anything but exactly `spiffe://<domain>/<component>/<tenant or _>` is refused.
 *
 * @throws TresorError USAGE_INVALID
 */
export function parseMeshSpiffeId(uri: string): MeshIdentity {
  const match = /^spiffe:\/\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(uri);
  const [, trustDomain, component, tenant] = match ?? [];
  if (trustDomain === undefined || component === undefined || tenant === undefined) {
    throw new TresorError(
      'USAGE_INVALID',
      'not a Tresor mesh SPIFFE ID (spiffe://<domain>/<component>/<tenant>)',
    );
  }
  const identity = { trustDomain, component, tenant: tenant === NO_TENANT ? null : tenant };
  if (meshSpiffeId(identity) !== uri)
    throw new TresorError('USAGE_INVALID', 'not a canonical Tresor mesh SPIFFE ID');
  return identity;
}
