import {
  checkParsePolicySet,
  preparsePolicySet,
  preparseSchema,
  statefulIsAuthorized,
  validate,
  type DetailedError,
} from '@cedar-policy/cedar-wasm/nodejs';
import { TresorError } from '@tresor/protocol';
import type { ApiKeyRecord, PolicyRecord, PolicyRepository } from '@tresor/storage';

/**
 * Authorization of inner requests with Cedar (tenant × model × operation), default deny: a tenant
 * without a policy, or a request no `permit` matches, is refused; a `forbid` overrides any permit;
 * an evaluation error denies. Policies are validated against {@link GATEWAY_POLICY_SCHEMA} in strict
 * mode when they are set, so a misspelt action or attribute is refused then, not silently false later.
 *
 * - principal `Gateway::ApiKey::"<key id>"`, a member of `Gateway::Tenant::"<tenant>"`, with
 *   attributes `tenant` and `scopes`;
 * - action `Gateway::Action::"chat.completions" | "completions" | "embeddings"`;
 * - resource `Gateway::Model::"<model id>"`.
 *
 * Example: `permit(principal in Gateway::Tenant::"acme", action, resource == Gateway::Model::"tiny");`
 */
export const GATEWAY_POLICY_SCHEMA = `namespace Gateway {
  entity Tenant;
  entity ApiKey in [Tenant] = { tenant: String, scopes: Set<String> };
  entity Model;
  action "chat.completions", "completions", "embeddings" appliesTo { principal: ApiKey, resource: Model };
}`;

export type GatewayOperation = 'chat.completions' | 'completions' | 'embeddings';
export const GATEWAY_OPERATIONS: readonly GatewayOperation[] = [
  'chat.completions',
  'completions',
  'embeddings',
];
const SCHEMA_NAME = 'tresor-gateway-policy';
const MAX_POLICY_LENGTH = 256 * 1024;

function problems(errors: readonly DetailedError[]): string {
  return errors
    .slice(0, 3)
    .map((e) => {
      const at = e.sourceLocations?.[0];
      return at === undefined ? e.message : `${e.message} (at offset ${at.start})`;
    })
    .join('; ');
}

let schemaReady = false;
function ensureSchema(): void {
  if (schemaReady) return;
  const answer = preparseSchema(SCHEMA_NAME, GATEWAY_POLICY_SCHEMA);
  if (answer.type !== 'success')
    throw new TresorError('INTERNAL_ERROR', 'the gateway Cedar schema does not parse');
  schemaReady = true;
}

/** Checks a tenant policy. @throws TresorError INPUT_MALFORMED naming the first problems */
export function checkGatewayPolicy(text: string): void {
  const invalid = (why: string): TresorError => new TresorError('INPUT_MALFORMED', `the Cedar policy ${why}`);
  if (text.length > MAX_POLICY_LENGTH) throw invalid(`is longer than ${MAX_POLICY_LENGTH} characters`);
  const parsed = checkParsePolicySet({ staticPolicies: text });
  if (parsed.type !== 'success') throw invalid(`does not parse: ${problems(parsed.errors)}`);
  const validated = validate({
    schema: GATEWAY_POLICY_SCHEMA,
    policies: { staticPolicies: text },
    validationSettings: { mode: 'strict' },
  });
  if (validated.type !== 'success') throw invalid(`cannot be validated: ${problems(validated.errors)}`);
  if (validated.validationErrors.length > 0) {
    throw invalid(`does not match the schema: ${problems(validated.validationErrors.map((e) => e.error))}`);
  }
}

/** How many decisions one authorizer remembers; the least recently used go first. */
export const DECISION_CACHE_ENTRIES = 4096;
let authorizers = 0;

/** A tenant's policy as last read: its preparsed set (null: none, or one that no longer parses). */
interface TenantPolicy {
  /** Numbers this parse; part of every decision key, so a new parse never sees old answers. */
  readonly generation: number;
  readonly parsed: boolean;
  readonly version: number;
  /** When the stored version is read again (the policy cache TTL). */
  until: number;
}

/**
 * One Cedar evaluation, synchronous and outside any async function: V8 11.3 (Node 20) dies in
 * `Deoptimizer::DoComputeBuiltinContinuation` ("unreachable code") when TurboFan code that inlined a
 * JS-to-Wasm call returning `externref` (every cedar-wasm export) is lazily deoptimized while the
 * call runs. Keeping the call in this small function, reached only on a decision-cache miss, keeps it
 * cold: neither it nor cedar-wasm's wrapper runs often enough to be optimized. Errors deny.
 */
function evaluate(
  policySetId: string,
  key: ApiKeyRecord,
  operation: GatewayOperation,
  model: string,
): { allowed: boolean; definite: boolean } {
  let answer: ReturnType<typeof statefulIsAuthorized>;
  try {
    answer = statefulIsAuthorized({
      principal: { type: 'Gateway::ApiKey', id: key.id },
      action: { type: 'Gateway::Action', id: operation },
      resource: { type: 'Gateway::Model', id: model },
      context: {},
      preparsedPolicySetId: policySetId,
      preparsedSchemaName: SCHEMA_NAME,
      validateRequest: false,
      entities: [
        {
          uid: { type: 'Gateway::ApiKey', id: key.id },
          attrs: { tenant: key.tenant, scopes: [...key.scopes] },
          parents: [{ type: 'Gateway::Tenant', id: key.tenant }],
        },
        { uid: { type: 'Gateway::Tenant', id: key.tenant }, attrs: {}, parents: [] },
        { uid: { type: 'Gateway::Model', id: model }, attrs: {}, parents: [] },
      ],
    });
  } catch {
    // A trap in the wasm module: deny, and ask again next time rather than remember it.
    return { allowed: false, definite: false };
  }
  const allowed =
    answer.type === 'success' &&
    answer.response.decision === 'allow' &&
    answer.response.diagnostics.errors.length === 0;
  return { allowed, definite: true };
}

/**
 * Decides requests with each tenant's stored policy, parsed once per policy version, and remembers
 * each decision so Cedar runs once per distinct question, not per request.
 *
 * A decision is a pure function of the policy set and the request (key id, tenant, scopes,
 * operation, model; the context is empty), so it is keyed by those and by the parse it came from.
 * The stored policy version is read again every `cacheMs` (the policy cache TTL); a new version, or
 * {@link forget}, starts a new parse and drops that tenant's decisions. So no decision is used more
 * than `cacheMs` after its policy was last confirmed current — the same bound as the policy cache.
 *
 * Each tenant's policy is preparsed under one id per authorizer, which a new version replaces inside
 * cedar-wasm (it has no call to free a preparsed set; a fresh id per version grew its memory by the
 * size of the policy with every change).
 */
export class GatewayAuthorizer {
  readonly #policies: PolicyRepository;
  readonly #cacheMs: number;
  readonly #now: () => Date;
  readonly #maxDecisions: number;
  readonly #instance = ++authorizers;
  readonly #loaded = new Map<string, TenantPolicy>();
  readonly #refreshing = new Map<string, Promise<void>>();
  /** Decisions by `generation|question`, oldest use first (a Map iterates in insertion order). */
  readonly #decisions = new Map<string, boolean>();
  #generation = 0;
  #forgets = 0;

  constructor(
    policies: PolicyRepository,
    now: () => Date,
    cacheMs = 2_000,
    maxDecisions = DECISION_CACHE_ENTRIES,
  ) {
    ensureSchema();
    this.#policies = policies;
    this.#now = now;
    this.#cacheMs = cacheMs;
    this.#maxDecisions = Math.max(1, maxDecisions);
  }

  /** How many decisions are remembered (for tests and metrics). */
  get cachedDecisions(): number {
    return this.#decisions.size;
  }

  /** Drops the cached policy and decisions of a tenant (after a change through this gateway's admin API). */
  forget(tenant: string): void {
    this.#forgets += 1;
    const cached = this.#loaded.get(tenant);
    this.#loaded.delete(tenant);
    if (cached !== undefined) this.#dropGeneration(cached.generation);
  }

  /** Whether `key` may run `operation` on `model`; errors and missing policies deny. */
  async allows(key: ApiKeyRecord, operation: GatewayOperation, model: string): Promise<boolean> {
    const cached = this.#loaded.get(key.tenant);
    if (cached === undefined || cached.until <= this.#now().getTime()) await this.#refresh(key.tenant);
    return this.#decide(key, operation, model);
  }

  /** @throws TresorError POLICY_DENIED */
  async require(key: ApiKeyRecord, operation: GatewayOperation, model: string): Promise<void> {
    if (!(await this.allows(key, operation, model))) {
      throw new TresorError(
        'POLICY_DENIED',
        `the policy of tenant ${key.tenant} does not allow ${operation} on model ${model}`,
      );
    }
  }

  /** Synchronous from the lookup to the answer, so the preparsed set is the one `policy` names. */
  #decide(key: ApiKeyRecord, operation: GatewayOperation, model: string): boolean {
    const policy = this.#loaded.get(key.tenant);
    if (policy?.parsed !== true) return false;
    const question = `${String(policy.generation)}|${JSON.stringify([
      key.id,
      key.tenant,
      [...key.scopes].sort(),
      operation,
      model,
    ])}`;
    const known = this.#decisions.get(question);
    if (known !== undefined) {
      // Most recently used last.
      this.#decisions.delete(question);
      this.#decisions.set(question, known);
      return known;
    }
    const { allowed, definite } = evaluate(this.#policySetId(key.tenant), key, operation, model);
    if (definite) {
      if (this.#decisions.size >= this.#maxDecisions) {
        const oldest = this.#decisions.keys().next();
        if (oldest.done !== true) this.#decisions.delete(oldest.value);
      }
      this.#decisions.set(question, allowed);
    }
    return allowed;
  }

  #policySetId(tenant: string): string {
    return `gateway-${String(this.#instance)}-${tenant}`;
  }

  #dropGeneration(generation: number): void {
    const prefix = `${String(generation)}|`;
    for (const question of [...this.#decisions.keys()]) {
      if (question.startsWith(prefix)) this.#decisions.delete(question);
    }
  }

  /** One read per tenant at a time, so an older read can never land after a newer one. */
  #refresh(tenant: string): Promise<void> {
    const running = this.#refreshing.get(tenant);
    if (running !== undefined) return running;
    const refresh = this.#read(tenant).finally(() => this.#refreshing.delete(tenant));
    this.#refreshing.set(tenant, refresh);
    return refresh;
  }

  async #read(tenant: string): Promise<void> {
    let record: PolicyRecord | undefined;
    for (;;) {
      const forgets = this.#forgets;
      record = await this.#policies.get(tenant);
      // forget() while reading: this read may predate the change it announces, so read again.
      if (forgets === this.#forgets) break;
    }
    const nowMs = this.#now().getTime();
    const version = record?.version ?? 0;
    const current = this.#loaded.get(tenant);
    if (current?.version === version) {
      current.until = nowMs + this.#cacheMs;
      return;
    }
    // A new version: a new parse, and the decisions of the old one go.
    if (current !== undefined) this.#dropGeneration(current.generation);
    // An empty or unparsable policy denies everything (fail closed). On failure cedar-wasm keeps the
    // previous set under the id, which `parsed: false` stops anyone from asking.
    const parsed =
      record !== undefined &&
      record.policy.trim() !== '' &&
      preparsePolicySet(this.#policySetId(tenant), { staticPolicies: record.policy }).type === 'success';
    this.#loaded.set(tenant, {
      generation: ++this.#generation,
      parsed,
      version,
      until: nowMs + this.#cacheMs,
    });
  }
}
