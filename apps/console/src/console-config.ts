/**
 * Where the page finds its gateway, trust policy and admin audience. `tresor console` serves
 * `console-config.json` beside the page; the gateway does not (a gateway must not hand out the
 * policy it is verified against). There the policy comes from the user: in the link `tresor up`
 * prints (`/console/#policy=<base64url JSON>&aud=<audience>` — a fragment, which the browser never
 * sends to any server), or as a file the user picks. The page keeps it in localStorage (a policy
 * is public; nothing secret is ever stored there) and removes the fragment from the address bar.
 */
export const CONFIG_FILE = 'console-config.json';
const POLICY_STORAGE_KEY = 'tresor.console.policy';

export interface ConsoleConfig {
  readonly gatewayUrl: string;
  readonly policy: unknown;
  readonly adminAudience: string;
  /** Where the policy came from, for the trust panel. */
  readonly policySource: 'console-config' | 'link' | 'stored' | 'none';
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

const MAX_LINK_POLICY_LENGTH = 16 * 1024;

function base64UrlToText(text: string): string {
  if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error('not base64url');
  const binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  return new TextDecoder('utf-8', { fatal: true }).decode(Uint8Array.from(binary, (c) => c.charCodeAt(0)));
}

/** The link's fragment, `#policy=<base64url of the policy JSON>&aud=<admin audience>` (both optional). */
export function parseConsoleLink(fragment: string): { policy?: unknown; adminAudience?: string } {
  const params = new URLSearchParams(fragment.replace(/^#/, ''));
  const out: { policy?: unknown; adminAudience?: string } = {};
  const policy = params.get('policy');
  if (policy !== null) {
    if (policy.length > MAX_LINK_POLICY_LENGTH) throw new Error('the policy in the link is too long');
    let value: unknown;
    try {
      value = JSON.parse(base64UrlToText(policy));
    } catch {
      throw new Error('the policy in the link is not base64url-encoded JSON: copy the whole link again');
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new Error('the policy in the link is not a JSON object');
    out.policy = value;
  }
  const aud = params.get('aud');
  if (aud !== null) {
    if (aud.length === 0 || aud.length > 200)
      throw new Error('the admin audience in the link is not 1-200 characters');
    out.adminAudience = aud;
  }
  return out;
}

export async function loadConsoleConfig(pageUrl: string): Promise<ConsoleConfig> {
  let served: Partial<ConsoleConfig> = {};
  const response = await fetch(new URL(CONFIG_FILE, pageUrl), { cache: 'no-store' }).catch(() => null);
  if (response?.ok === true) served = parseConsoleConfig(await response.json(), pageUrl);
  const linked = parseConsoleLink(new URL(pageUrl).hash);
  if (linked.policy !== undefined) storePolicy(linked.policy);
  const stored = linked.policy === undefined ? readStoredPolicy() : undefined;
  const policy = served.policy ?? linked.policy ?? stored;
  return {
    gatewayUrl: served.gatewayUrl ?? gatewayUrlFor(pageUrl),
    policy,
    adminAudience: served.adminAudience ?? linked.adminAudience ?? '',
    policySource:
      served.policy !== undefined
        ? 'console-config'
        : linked.policy !== undefined
          ? 'link'
          : stored !== undefined
            ? 'stored'
            : 'none',
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
