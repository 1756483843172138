/**
 * What an audit record says: who (actor), did what (action), to what (target), with which
 * outcome, plus a few non-secret details. Never content (prompts, completions) and never secrets
 * (keys, passphrases, tokens): the validators below refuse the obvious carriers of either, so a
 * careless caller fails loudly instead of writing a secret into a log that is kept for years.
 */

/** `admin`: an administrator's API key id; `workload`: an attested workload's identity; `system`: Tresor itself (retention). */
export type AuditActorType = 'admin' | 'workload' | 'system';

export interface AuditActor {
  readonly type: AuditActorType;
  readonly id: string;
}

export type AuditOutcome = 'success' | 'denied' | 'failure';

export type AuditDetailValue =
  | string
  | number
  | boolean
  | null
  | readonly AuditDetailValue[]
  | { readonly [name: string]: AuditDetailValue };

export type AuditDetails = Readonly<Record<string, AuditDetailValue>>;

/** What a caller appends; the log adds the sequence number, the time and the hashes. */
export interface AuditEntry {
  readonly actor: AuditActor;
  /** Dotted lower-case verb, e.g. `keys.destroy`, `policy.update`, `retention.purge`. */
  readonly action: string;
  /** What was acted on, e.g. `tenant:acme/key:kek-01`; empty when nothing in particular. */
  readonly target: string;
  readonly outcome: AuditOutcome;
  readonly details?: AuditDetails;
}

/** Called with a description of what is wrong; throws the caller's TresorError. */
export type Refuse = (problem: string) => never;

const ACTOR_TYPES: readonly AuditActorType[] = ['admin', 'workload', 'system'];
const OUTCOMES: readonly AuditOutcome[] = ['success', 'denied', 'failure'];
const ACTION = /^[a-z][a-z0-9]*(?:[._-][a-z0-9]+)*$/;
/** Printable ASCII without space: key ids, SPIFFE-style workload URIs. */
const ACTOR_ID = /^[\x21-\x7e]{1,256}$/;
const DETAIL_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

export const MAX_ACTION_LENGTH = 64;
export const MAX_TARGET_LENGTH = 256;
export const MAX_DETAIL_STRING_LENGTH = 1024;
export const MAX_DETAILS_DEPTH = 4;

/**
 * Detail names (lower-cased, without `_ . -`) that name content or secrets. Exact names, so
 * `promptTokens` (a count) passes while `prompt` does not.
 */
const CONTENT_OR_SECRET_NAMES = new Set([
  'prompt',
  'prompts',
  'completion',
  'completions',
  'content',
  'contents',
  'message',
  'messages',
  'input',
  'output',
  'body',
  'text',
  'token',
  'accesstoken',
  'bearertoken',
  'authorization',
  'cookie',
  'pin',
  'seed',
  'datakey',
]);
/** Suffixes that name a secret whatever comes before (`adminPassword`, `clientSecret`). */
const SECRET_SUFFIXES = [
  'secret',
  'password',
  'passphrase',
  'privatekey',
  'apikey',
  'keymaterial',
  'plaintext',
];

function isContentOrSecretName(name: string): boolean {
  const plain = name.toLowerCase().replace(/[_.-]/g, '');
  return CONTENT_OR_SECRET_NAMES.has(plain) || SECRET_SUFFIXES.some((s) => plain.endsWith(s));
}

function isObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function checkText(value: unknown, what: string, maxLength: number, refuse: Refuse): string {
  if (typeof value !== 'string') refuse(`${what} is not a string`);
  if (value.length > maxLength) refuse(`${what} is longer than ${maxLength} characters`);
  if (CONTROL.test(value)) refuse(`${what} contains a control character`);
  if (LONE_SURROGATE.test(value)) refuse(`${what} contains a lone UTF-16 surrogate`);
  return value;
}

export function parseActor(value: unknown, refuse: Refuse): AuditActor {
  if (!isObject(value)) refuse('actor is not an object');
  const { type, id } = value;
  if (!ACTOR_TYPES.includes(type as AuditActorType)) refuse('actor.type is not admin, workload or system');
  if (typeof id !== 'string' || !ACTOR_ID.test(id)) {
    refuse('actor.id is not 1 to 256 printable ASCII characters without spaces');
  }
  if (Object.keys(value).length !== 2) refuse('actor has members other than type and id');
  return { type: type as AuditActorType, id };
}

export function parseAction(value: unknown, refuse: Refuse): string {
  if (typeof value !== 'string' || value.length > MAX_ACTION_LENGTH || !ACTION.test(value)) {
    refuse(`action is not a dotted lower-case name of at most ${MAX_ACTION_LENGTH} characters`);
  }
  return value;
}

export function parseOutcome(value: unknown, refuse: Refuse): AuditOutcome {
  if (!OUTCOMES.includes(value as AuditOutcome)) refuse('outcome is not success, denied or failure');
  return value as AuditOutcome;
}

function parseDetailValue(value: unknown, path: string, depth: number, refuse: Refuse): AuditDetailValue {
  if (value === null || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) refuse(`${path} is not a finite number`);
    return value;
  }
  if (typeof value === 'string') {
    const text = checkText(value, path, MAX_DETAIL_STRING_LENGTH, refuse);
    if (text.includes('PRIVATE KEY-----')) refuse(`${path} holds a private key`);
    return text;
  }
  if (depth >= MAX_DETAILS_DEPTH) refuse(`${path} is nested more than ${MAX_DETAILS_DEPTH} levels deep`);
  if (Array.isArray(value)) {
    return value.map((item: unknown, i) => parseDetailValue(item, `${path}[${i}]`, depth + 1, refuse));
  }
  if (!isObject(value)) refuse(`${path} is not JSON data`);
  return parseDetailObject(value, path, depth + 1, refuse);
}

function parseDetailObject(
  value: Record<string, unknown>,
  path: string,
  depth: number,
  refuse: Refuse,
): AuditDetails {
  // A null prototype keeps a member called "__proto__" an ordinary member.
  const out = Object.create(null) as Record<string, AuditDetailValue>;
  for (const [name, member] of Object.entries(value)) {
    if (!DETAIL_NAME.test(name))
      refuse(`${path} has a member name that is not an identifier of at most 64 characters`);
    if (isContentOrSecretName(name)) {
      refuse(`${path}.${name} names content or a secret, which an audit record must never hold`);
    }
    out[name] = parseDetailValue(member, `${path}.${name}`, depth, refuse);
  }
  return out;
}

/** Non-secret details: a JSON object, at most 4 levels deep, no content- or secret-named members. */
export function parseDetails(value: unknown, refuse: Refuse): AuditDetails {
  if (!isObject(value)) refuse('details is not a JSON object');
  return parseDetailObject(value, 'details', 1, refuse);
}

/** Validates an entry from a caller, returning a normalised copy (details default to `{}`). */
export function parseAuditEntry(value: unknown, refuse: Refuse): AuditEntry {
  if (!isObject(value)) refuse('an audit entry is an object');
  return {
    actor: parseActor(value.actor, refuse),
    action: parseAction(value.action, refuse),
    target: checkText(value.target, 'target', MAX_TARGET_LENGTH, refuse),
    outcome: parseOutcome(value.outcome, refuse),
    details: parseDetails(value.details ?? {}, refuse),
  };
}
