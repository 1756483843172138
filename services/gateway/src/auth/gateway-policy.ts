import {
  checkParsePolicySet,
  preparsePolicySet,
  preparseSchema,
  statefulIsAuthorized,
  validate,
  type DetailedError,
} from '@cedar-policy/cedar-wasm/nodejs';
import { TresorError } from '@tresor/protocol';
import type { ApiKeyRecord, PolicyRepository } from '@tresor/storage';

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

/** Decides requests with each tenant's stored policy, parsed once per policy version. */
export class GatewayAuthorizer {
  readonly #policies: PolicyRepository;
  readonly #cacheMs: number;
  readonly #now: () => Date;
  readonly #loaded = new Map<string, { id: string | null; version: number; until: number }>();
  #counter = 0;

  constructor(policies: PolicyRepository, now: () => Date, cacheMs = 2_000) {
    ensureSchema();
    this.#policies = policies;
    this.#now = now;
    this.#cacheMs = cacheMs;
  }

  /** Drops the cached policy of a tenant (after a change through this gateway's admin API). */
  forget(tenant: string): void {
    this.#loaded.delete(tenant);
  }

  /** Whether `key` may run `operation` on `model`; errors and missing policies deny. */
  async allows(key: ApiKeyRecord, operation: GatewayOperation, model: string): Promise<boolean> {
    const policyId = await this.#policySetId(key.tenant);
    if (policyId === null) return false;
    const answer = statefulIsAuthorized({
      principal: { type: 'Gateway::ApiKey', id: key.id },
      action: { type: 'Gateway::Action', id: operation },
      resource: { type: 'Gateway::Model', id: model },
      context: {},
      preparsedPolicySetId: policyId,
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
    return (
      answer.type === 'success' &&
      answer.response.decision === 'allow' &&
      answer.response.diagnostics.errors.length === 0
    );
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

  async #policySetId(tenant: string): Promise<string | null> {
    const nowMs = this.#now().getTime();
    const cached = this.#loaded.get(tenant);
    if (cached !== undefined && cached.until > nowMs) return cached.id;
    const record = await this.#policies.get(tenant);
    if (record === undefined || record.policy.trim() === '') {
      this.#loaded.set(tenant, { id: null, version: 0, until: nowMs + this.#cacheMs });
      return null;
    }
    if (cached?.version === record.version) {
      this.#loaded.set(tenant, { ...cached, until: nowMs + this.#cacheMs });
      return cached.id;
    }
    const id = `gateway-${tenant}-${record.version}-${++this.#counter}`;
    const answer = preparsePolicySet(id, { staticPolicies: record.policy });
    // A stored policy that no longer parses denies everything (fail closed).
    const usable = answer.type === 'success' ? id : null;
    this.#loaded.set(tenant, { id: usable, version: record.version, until: nowMs + this.#cacheMs });
    return usable;
  }
}
