import { z } from 'zod';
import type { Violation } from './errors';
import { durationSeconds, policyDuration } from './durations';
import { deployFreezeConfig } from './freezes';
import { findRestrictedKeys } from './restricted-keys';

export { durationSeconds, policyDuration };

/** Config shapes per policy kind; `PUT /api/policies/:name` validates against these. */
export const POLICY_CONFIG_SCHEMAS = {
  mandatory_tags: z.strictObject({ tags: z.array(z.string().min(1).max(63)).max(50) }),
  allowed_values: z.strictObject({
    tag: z.string().min(1).max(63),
    values: z.array(z.string().min(1).max(255)).min(1).max(200),
  }),
  restricted_config_keys: z.strictObject({ patterns: z.array(z.string().min(1).max(63)).max(50) }),
  promotion_order: z.strictObject({
    tiers: z
      .array(z.string().regex(/^[a-z][a-z0-9-]{0,62}$/))
      .min(1)
      .max(10)
      .refine((t) => new Set(t).size === t.length, 'tiers must be distinct'),
  }),
  prod_approvals: z.strictObject({
    tier: z.string().min(1).max(63),
    required: z.number().int().min(1).max(10),
    timeout: policyDuration,
    /** Rollbacks into the tier need no approval. */
    rollbacks_exempt: z.boolean().optional(),
    /** While a deployment waits, a `deployment.approval_reminder` event at this interval. */
    remind_every: policyDuration.optional(),
  }),
  auto_rollback: z.strictObject({ tiers: z.array(z.string().min(1).max(63)).max(10) }),
  promotion_gates: z.strictObject({
    gates: z
      .array(z.strictObject({ tier: z.string().min(1).max(63), soak: policyDuration }))
      .max(10)
      .refine((g) => new Set(g.map((x) => x.tier)).size === g.length, 'one gate per tier'),
  }),
  deploy_freeze: deployFreezeConfig,
} as const;

export type PolicyKind = keyof typeof POLICY_CONFIG_SCHEMAS;
export const POLICY_KINDS = Object.keys(POLICY_CONFIG_SCHEMAS) as PolicyKind[];
export type PolicyConfig<K extends PolicyKind> = z.infer<(typeof POLICY_CONFIG_SCHEMAS)[K]>;

/** The policies the platform shipped with first; the first migration seeds them (later kinds: their own migrations). */
export const DEFAULT_POLICIES: { name: PolicyKind; kind: PolicyKind; config: Record<string, unknown> }[] = [
  { name: 'mandatory_tags', kind: 'mandatory_tags', config: { tags: ['owner', 'data_sensitivity'] } },
  {
    name: 'allowed_values',
    kind: 'allowed_values',
    config: { tag: 'data_sensitivity', values: ['public', 'internal', 'confidential', 'restricted'] },
  },
  {
    name: 'restricted_config_keys',
    kind: 'restricted_config_keys',
    config: { patterns: ['password', 'secret', 'token'] },
  },
  { name: 'promotion_order', kind: 'promotion_order', config: { tiers: ['dev', 'staging', 'prod'] } },
  { name: 'prod_approvals', kind: 'prod_approvals', config: { tier: 'prod', required: 1, timeout: '24h' } },
];

/** A policy as stored: its kind, whether it applies, and its (unchecked) config. */
export interface StoredPolicy {
  name: string;
  kind: string;
  enabled: boolean;
  config: unknown;
}

/** The enabled, well-formed policies of each kind, ready to evaluate. */
export interface PolicySet {
  mandatoryTags: PolicyConfig<'mandatory_tags'>[];
  allowedValues: PolicyConfig<'allowed_values'>[];
  restrictedKeys: PolicyConfig<'restricted_config_keys'>[];
  promotionOrder: PolicyConfig<'promotion_order'> | null;
  prodApprovals: PolicyConfig<'prod_approvals'> | null;
  autoRollback: PolicyConfig<'auto_rollback'> | null;
  promotionGates: PolicyConfig<'promotion_gates'> | null;
  deployFreeze: PolicyConfig<'deploy_freeze'> | null;
}

/** Builds a {@link PolicySet} from stored rows, skipping disabled ones and kinds it does not know. */
export function buildPolicySet(rows: StoredPolicy[]): PolicySet {
  const set: PolicySet = {
    mandatoryTags: [],
    allowedValues: [],
    restrictedKeys: [],
    promotionOrder: null,
    prodApprovals: null,
    autoRollback: null,
    promotionGates: null,
    deployFreeze: null,
  };
  for (const row of [...rows].sort((a, b) => a.name.localeCompare(b.name))) {
    if (!row.enabled) continue;
    switch (row.kind) {
      case 'mandatory_tags':
        set.mandatoryTags.push(POLICY_CONFIG_SCHEMAS.mandatory_tags.parse(row.config));
        break;
      case 'allowed_values':
        set.allowedValues.push(POLICY_CONFIG_SCHEMAS.allowed_values.parse(row.config));
        break;
      case 'restricted_config_keys':
        set.restrictedKeys.push(POLICY_CONFIG_SCHEMAS.restricted_config_keys.parse(row.config));
        break;
      case 'promotion_order':
        set.promotionOrder ??= POLICY_CONFIG_SCHEMAS.promotion_order.parse(row.config);
        break;
      case 'prod_approvals':
        set.prodApprovals ??= POLICY_CONFIG_SCHEMAS.prod_approvals.parse(row.config);
        break;
      case 'auto_rollback':
        set.autoRollback ??= POLICY_CONFIG_SCHEMAS.auto_rollback.parse(row.config);
        break;
      case 'promotion_gates':
        set.promotionGates ??= POLICY_CONFIG_SCHEMAS.promotion_gates.parse(row.config);
        break;
      case 'deploy_freeze':
        set.deployFreeze ??= POLICY_CONFIG_SCHEMAS.deploy_freeze.parse(row.config);
        break;
      default:
        break;
    }
  }
  return set;
}

function restrictedKeyViolations(value: unknown, policies: PolicySet, prefix: string): Violation[] {
  const patterns = policies.restrictedKeys.flatMap((p) => p.patterns);
  if (patterns.length === 0) return [];
  return findRestrictedKeys(value, patterns, prefix).map((path) => ({
    rule: 'restricted_config_keys',
    field: path,
    message: `key '${path}' matches a restricted pattern (${patterns.join(', ')})`,
    hint: 'keep secrets out of platform config: store them in your secret manager and reference them by name (e.g. "db_credentials_ref")',
  }));
}

/** Checks a service's tags against mandatory tags, allowed values and restricted keys. */
export function evaluateServiceTags(tags: Record<string, unknown>, policies: PolicySet): Violation[] {
  const violations: Violation[] = [];
  for (const rule of policies.mandatoryTags) {
    for (const tag of rule.tags) {
      const value = tags[tag];
      if (typeof value !== 'string' || value.trim() === '') {
        violations.push({
          rule: 'mandatory_tags',
          field: `tags.${tag}`,
          message: `tag '${tag}' is mandatory and must be a non-empty string`,
          hint: `add "${tag}" to tags, e.g. "tags": {"${tag}": "…"}`,
        });
      }
    }
  }
  for (const rule of policies.allowedValues) {
    const value = tags[rule.tag];
    if (value !== undefined && !(typeof value === 'string' && rule.values.includes(value))) {
      violations.push({
        rule: 'allowed_values',
        field: `tags.${rule.tag}`,
        message: `tag '${rule.tag}' has a value that is not allowed`,
        hint: `use one of: ${rule.values.join(', ')}`,
      });
    }
  }
  violations.push(...restrictedKeyViolations(tags, policies, 'tags'));
  return violations;
}

/** Checks an environment's tier and config. */
export function evaluateEnvironment(
  input: { tier: string; config?: Record<string, unknown> },
  policies: PolicySet,
): Violation[] {
  const violations: Violation[] = [];
  const tiers = policies.promotionOrder?.tiers;
  if (tiers && !tiers.includes(input.tier)) {
    violations.push({
      rule: 'promotion_order',
      field: 'tier',
      message: `tier '${input.tier}' is not part of the promotion order`,
      hint: `use one of: ${tiers.join(', ')}`,
    });
  }
  violations.push(...restrictedKeyViolations(input.config ?? {}, policies, 'config'));
  return violations;
}

/** Checks a deployment's config (restricted keys). Promotion order needs history: see {@link checkPromotionOrder}. */
export function evaluateDeploymentConfig(
  config: Record<string, unknown> | undefined,
  policies: PolicySet,
): Violation[] {
  return restrictedKeyViolations(config ?? {}, policies, 'config');
}

/**
 * The tier a version must have succeeded in before `tier`, or null when `tier` has no prerequisite
 * (the first tier, or a tier outside the order, or no order policy).
 */
export function prerequisiteTier(tier: string, policies: PolicySet): string | null {
  const tiers = policies.promotionOrder?.tiers;
  if (!tiers) return null;
  const index = tiers.indexOf(tier);
  return index > 0 ? tiers[index - 1]! : null;
}

/** The soak a version needs in `tier` before it may go on to the next tier (0 when no gate). */
export function soakSeconds(tier: string, policies: PolicySet): number {
  const gate = policies.promotionGates?.gates.find((g) => g.tier === tier);
  return gate ? durationSeconds(gate.soak) : 0;
}

/**
 * Checks promotion order: `version` may go to `tier` only after it succeeded in the tier before,
 * and (with a promotion gate on that tier) only once it has been succeeded there for the gate's
 * soak. `succeededSince` is when the version first succeeded in the tier before (null: never);
 * `candidates` are the service's environments of the prerequisite tier, named in the hint.
 */
export function checkPromotionOrder(
  args: { version: string; tier: string; succeededSince: Date | null; candidates: string[]; now?: Date },
  policies: PolicySet,
): Violation | null {
  const before = prerequisiteTier(args.tier, policies);
  if (before === null) return null;
  if (args.succeededSince === null) {
    const where =
      args.candidates.length > 0
        ? `environment ${args.candidates.map((c) => `'${c}'`).join(' or ')} (tier ${before})`
        : `an environment of tier '${before}' (provision one first)`;
    return {
      rule: 'promotion_order',
      field: 'version',
      message: `version '${args.version}' has not succeeded in tier '${before}', which comes before '${args.tier}'`,
      hint: `deploy version '${args.version}' to ${where} first`,
    };
  }
  const soak = soakSeconds(before, policies);
  const ready = new Date(args.succeededSince.getTime() + soak * 1000);
  if (ready <= (args.now ?? new Date())) return null;
  return {
    rule: 'promotion_order',
    field: 'version',
    message: `version '${args.version}' has soaked in tier '${before}' since ${args.succeededSince.toISOString()}; the promotion gate asks for ${soak}s: it may go to '${args.tier}' from ${ready.toISOString()}`,
    hint: `wait until ${ready.toISOString()}, or release it (POST /api/services/:id/releases waits for the soak)`,
  };
}

/**
 * Approval requirements for a deployment to `tier`: how many, and how long to wait. A rollback
 * needs none when the rule exempts rollbacks.
 */
export function approvalRequirement(
  tier: string,
  policies: PolicySet,
  kind: 'deploy' | 'rollback' = 'deploy',
): { required: number; timeoutSeconds: number } {
  const rule = policies.prodApprovals;
  if (!rule || rule.tier !== tier) return { required: 0, timeoutSeconds: 0 };
  if (kind === 'rollback' && rule.rollbacks_exempt) return { required: 0, timeoutSeconds: 0 };
  return { required: rule.required, timeoutSeconds: durationSeconds(rule.timeout) };
}
