import { TresorError } from '@tresor/protocol';
import { sendAdminOperation } from '../commands/trust-client.js';
import type { PlatformSecrets } from './state.js';
import { LOCAL_GATEWAY_AUDIENCE } from './service-configs.js';
import type { TrustAdmin } from './provision-trust.js';

/**
 * The gateway's tenant set-up for local use, through its signed admin API (what `tresor tenant
 * create` and `tresor key create` send): one tenant, a Cedar policy allowing it every model and
 * operation, and an API key — shown once by the gateway, kept in `<dir>/local.json` (0600).
 */

export const LOCAL_TENANT = 'local';

/** Default deny at the gateway; this tenant may use every model for every operation. */
export const LOCAL_TENANT_POLICY = `@id("local tenant may use every model")
permit (principal in Gateway::Tenant::"${LOCAL_TENANT}", action, resource);
`;

export function gatewayAdmin(url: string, ca: string, secrets: PlatformSecrets, now: () => Date): TrustAdmin {
  const endpoint = { url: new URL(url), ca };
  return {
    call: (operation, request) =>
      sendAdminOperation(endpoint, secrets.adminKey, LOCAL_GATEWAY_AUDIENCE, operation, request, now()),
  };
}

export async function createLocalTenant(admin: TrustAdmin): Promise<void> {
  try {
    await admin.call('tenants/create', { id: LOCAL_TENANT, name: 'Local developer (tresor up)' });
  } catch (err) {
    // Created by an earlier start that stopped before it could record it.
    if (!(err instanceof TresorError && err.code === 'STORAGE_CONFLICT')) throw err;
  }
  await admin.call('policies/set', { tenant: LOCAL_TENANT, policy: LOCAL_TENANT_POLICY });
}

/** A new API key for the local tenant; the gateway stores only its salted hash. */
export async function createLocalApiKey(admin: TrustAdmin): Promise<string> {
  const answer = await admin.call('api-keys/create', { tenant: LOCAL_TENANT, name: 'tresor up' });
  if (typeof answer.key !== 'string' || answer.key === '') {
    throw new TresorError('UPSTREAM_FAILED', 'the gateway created an API key but did not return it');
  }
  return answer.key;
}
