import {
  checkParsePolicySet,
  preparsePolicySet,
  preparseSchema,
  statefulIsAuthorized,
  validate,
  type DetailedError,
  type EntityJson,
} from '@cedar-policy/cedar-wasm/nodejs';
import { TresorError } from '@tresor/protocol';
import type { AttestedIdentity } from '../attestation-service/attested-identity.js';
import type { ResourcePath } from '../resources/resource-path.js';
import { RESOURCE_POLICY_SCHEMA } from './cedar-schema.js';

/** The outcome of one authorization: allowed or not, and which policies decided. */
export interface ResourceDecision {
  readonly allowed: boolean;
  /** Ids of the policies that determined the decision (Cedar `diagnostics.reason`). */
  readonly policies: readonly string[];
}

const SCHEMA_NAME = 'tresor-resource-policy';
/**
 * The principal's entity id. Not the token id: that is random per attestation, so no policy can
 * name it usefully, and leaving it out makes equal identities equal requests (decision cache).
 */
export const WORKLOAD_ENTITY_ID = 'attested-workload';
/** Decisions remembered per policy text; more distinct requests than this empty the cache. */
const DECISION_CACHE_ENTRIES = 4096;
const MAX_POLICY_LENGTH = 256 * 1024;
let instances = 0;

function problems(errors: readonly DetailedError[]): string {
  return errors
    .slice(0, 3)
    .map((e) => {
      const at = e.sourceLocations?.[0];
      return at === undefined ? e.message : `${e.message} (at offset ${at.start})`;
    })
    .join('; ');
}

/** The principal and resource entities for one request (see cedar-schema.ts). */
export function policyEntities(identity: AttestedIdentity, path: ResourcePath): EntityJson[] {
  const optional = (name: string, value: string | null): Record<string, string> =>
    value === null ? {} : { [name]: value };
  return [
    {
      uid: { type: 'Tresor::Workload', id: WORKLOAD_ENTITY_ID },
      attrs: {
        tee: identity.tee,
        status: identity.status,
        insecure: identity.insecure,
        debug: identity.debug,
        hardwareIds: [...identity.hardwareIds],
        gpuCount: identity.gpus.length,
        gpusAffirming: identity.gpus.length > 0 && identity.gpus.every((g) => g.status === 'affirming'),
        ...optional('residency', identity.residency),
        ...optional('tenant', identity.tenant),
        ...optional('initDataHash', identity.initDataHash),
        ...optional('imageDigest', identity.imageDigest),
        ...optional('component', identity.component),
        ...optional('release', identity.release),
      },
      parents: [],
      tags: { ...identity.measurements },
    },
    {
      uid: { type: 'Tresor::Resource', id: path.text },
      attrs: { repository: path.repository, type: path.type, tag: path.tag },
      parents: [],
    },
  ];
}

/**
 * The resource policy: which attested identities may read which resource, in Cedar. Default deny:
 * with no policy, or no `permit` that matches, nothing is released; a `forbid` overrides any permit.
 * Policies are validated against RESOURCE_POLICY_SCHEMA when set (RESOURCE_POLICY_INVALID), so an
 * accepted policy cannot fail at evaluation time for a type error. An evaluation error still denies.
 */
export class CedarResourcePolicy {
  readonly #id = `tresor-resource-policy-${++instances}`;
  #text = '';
  #empty = true;
  /**
   * Decisions by request (the entities as JSON: every attribute, tag and the resource). A Cedar
   * decision is a pure function of the policy set, the request and the entities (the context is
   * always empty here), so an equal request gets the same answer without the ~0.2–0.5 ms of
   * passing the entities into the wasm module; replacing the policy drops the cache.
   */
  readonly #decisions = new Map<string, ResourceDecision>();

  constructor(text = '') {
    const answer = preparseSchema(SCHEMA_NAME, RESOURCE_POLICY_SCHEMA);
    if (answer.type !== 'success')
      throw new TresorError('INTERNAL_ERROR', 'the built-in Cedar schema does not parse');
    this.replace(text);
  }

  /** The policy text in force. */
  get text(): string {
    return this.#text;
  }

  /** Checks `text` without installing it. @throws TresorError RESOURCE_POLICY_INVALID */
  static check(text: string): void {
    if (text.length > MAX_POLICY_LENGTH) {
      throw new TresorError(
        'RESOURCE_POLICY_INVALID',
        `the policy is longer than ${MAX_POLICY_LENGTH} characters`,
      );
    }
    const parsed = checkParsePolicySet({ staticPolicies: text });
    if (parsed.type !== 'success') {
      throw new TresorError(
        'RESOURCE_POLICY_INVALID',
        `the policy does not parse: ${problems(parsed.errors)}`,
      );
    }
    const validated = validate({
      schema: RESOURCE_POLICY_SCHEMA,
      policies: { staticPolicies: text },
      validationSettings: { mode: 'strict' },
    });
    if (validated.type !== 'success') {
      throw new TresorError(
        'RESOURCE_POLICY_INVALID',
        `the policy cannot be validated: ${problems(validated.errors)}`,
      );
    }
    if (validated.validationErrors.length > 0) {
      throw new TresorError(
        'RESOURCE_POLICY_INVALID',
        `the policy does not match the schema: ${problems(validated.validationErrors.map((e) => e.error))}`,
      );
    }
  }

  /** Validates and installs a new policy set (replacing the old one whole). @throws TresorError RESOURCE_POLICY_INVALID */
  replace(text: string): void {
    CedarResourcePolicy.check(text);
    const answer = preparsePolicySet(this.#id, { staticPolicies: text });
    if (answer.type !== 'success') {
      throw new TresorError(
        'RESOURCE_POLICY_INVALID',
        `the policy does not parse: ${problems(answer.errors)}`,
      );
    }
    this.#text = text;
    this.#empty = text.trim().length === 0;
    this.#decisions.clear();
  }

  /** Whether `identity` may read `path`. Never throws for a policy outcome: errors deny. */
  authorize(identity: AttestedIdentity, path: ResourcePath): ResourceDecision {
    if (this.#empty) return { allowed: false, policies: [] };
    const entities = policyEntities(identity, path);
    const key = JSON.stringify(entities);
    const known = this.#decisions.get(key);
    if (known !== undefined) return known;
    const decision = this.#evaluate(entities, path);
    if (this.#decisions.size >= DECISION_CACHE_ENTRIES) this.#decisions.clear();
    this.#decisions.set(key, decision);
    return decision;
  }

  #evaluate(entities: EntityJson[], path: ResourcePath): ResourceDecision {
    const answer = statefulIsAuthorized({
      principal: { type: 'Tresor::Workload', id: WORKLOAD_ENTITY_ID },
      action: { type: 'Tresor::Action', id: 'read' },
      resource: { type: 'Tresor::Resource', id: path.text },
      context: {},
      preparsedPolicySetId: this.#id,
      preparsedSchemaName: SCHEMA_NAME,
      validateRequest: false,
      entities,
    });
    if (answer.type !== 'success') return { allowed: false, policies: [] };
    return Object.freeze({
      allowed: answer.response.decision === 'allow' && answer.response.diagnostics.errors.length === 0,
      policies: Object.freeze([...answer.response.diagnostics.reason]),
    });
  }
}
