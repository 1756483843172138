/**
 * Where the page finds its gateway, trust policy and admin audience. `tresor console` serves
 * `console-config.json` beside the page; the gateway does not (a gateway must not hand out the
 * policy it is verified against), so there the user supplies the policy file, which the page keeps
 * in localStorage (a policy is public; nothing secret is ever stored there).
 */
export const CONFIG_FILE = 'console-config.json';
const POLICY_STORAGE_KEY = 'tresor.console.policy';

export interface ConsoleConfig {
  readonly gatewayUrl: string;
  readonly policy: unknown;
  readonly adminAudience: string;
  /** Where the policy came from, for the trust panel. */
  readonly policySource: 'console-config' | 'stored' | 'none';
}

/** The gateway URL for a page served at `pageUrl`: its origin (the gateway serves /console/ itself). */
export function gatewayUrlFor(pageUrl: string): string {
  return new URL(pageUrl).origin;
}

/** Parses console-config.json; unknown members are ignored, wrong types refused. */
export function parseConsoleConfig(value: unknown, pageUrl: string): Partial<ConsoleConfig> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw new Error(`${CONFIG_FILE} is not a JSON object`);
  const v = value as Record<string, unknown>;
  const out: { gatewayUrl?: string; policy?: unknown; adminAudience?: string } = {};
  if (v.gatewayUrl !== undefined) {
    if (typeof v.gatewayUrl !== 'string') throw new Error(`${CONFIG_FILE}: gatewayUrl is not a string`);
    out.gatewayUrl = new URL(v.gatewayUrl, pageUrl).origin;
  }
  if (v.policy !== undefined) {
    if (typeof v.policy !== 'object' || v.policy === null)
      throw new Error(`${CONFIG_FILE}: policy is not an object`);
    out.policy = v.policy;
  }
  if (v.adminAudience !== undefined) {
    if (typeof v.adminAudience !== 'string') throw new Error(`${CONFIG_FILE}: adminAudience is not a string`);
    out.adminAudience = v.adminAudience;
  }
  return out;
}

export async function loadConsoleConfig(pageUrl: string): Promise<ConsoleConfig> {
  let served: Partial<ConsoleConfig> = {};
  const response = await fetch(new URL(CONFIG_FILE, pageUrl), { cache: 'no-store' }).catch(() => null);
  if (response?.ok === true) served = parseConsoleConfig(await response.json(), pageUrl);
  const stored = readStoredPolicy();
  const policy = served.policy ?? stored;
  return {
    gatewayUrl: served.gatewayUrl ?? gatewayUrlFor(pageUrl),
    policy,
    adminAudience: served.adminAudience ?? '',
    policySource: served.policy !== undefined ? 'console-config' : stored !== undefined ? 'stored' : 'none',
  };
}

function readStoredPolicy(): unknown {
  try {
    const text = localStorage.getItem(POLICY_STORAGE_KEY);
    return text === null ? undefined : (JSON.parse(text) as unknown);
  } catch {
    return undefined;
  }
}

export function storePolicy(policy: unknown): void {
  try {
    localStorage.setItem(POLICY_STORAGE_KEY, JSON.stringify(policy));
  } catch {
    // Private browsing: the policy is kept for this page only.
  }
}
