import { z } from 'zod';
import type { Violation } from './errors';
import { findRestrictedKeys } from './restricted-keys';

const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };
const DURATION = /^(\d{1,7})(ms|s|m|h|d)$/;
// A year: the deployment row keeps the approval timeout in an int column, and no approval waits longer.
const MAX_DURATION_SECONDS = 31_536_000;

/** The seconds a duration spells, unrounded, or null when it is not one (`"1.5h"`, `1.5`, `"24H"`). */
function spelledSeconds(value: string | number): number | null {
  if (typeof value === 'number') return Number.isInteger(value) ? value : null;
  const m = DURATION.exec(value);
  return m ? Number(m[1]) * UNIT_SECONDS[m[2]!]! : null;
}

const inDurationRange = (seconds: number | null): seconds is number =>
  seconds !== null && seconds >= 1 && seconds <= MAX_DURATION_SECONDS;

/**
 * A policy duration: `"30m"`, `"24h"`, `"7d"`, `"1500ms"` or whole seconds, from 1 s to a year. Below
 * a second is refused rather than rounded up (`"0s"` used to become 1 s without a word).
 */
export const policyDuration = z
  .union([z.string(), z.number()])
  .refine((v) => inDurationRange(spelledSeconds(v)), {
    message: 'not a duration from 1 s to a year',
    params: {
      hint: 'give digits and a unit (ms, s, m, h, d), e.g. "30m", "24h", "7d", "1000ms", or whole seconds from 1 to 31536000',
    },
  });

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
  }),
} as const;

export type PolicyKind = keyof typeof POLICY_CONFIG_SCHEMAS;
export const POLICY_KINDS = Object.keys(POLICY_CONFIG_SCHEMAS) as PolicyKind[];
export type PolicyConfig<K extends PolicyKind> = z.infer<(typeof POLICY_CONFIG_SCHEMAS)[K]>;

/** The policies the platform ships with; the first migration seeds them. */
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
}

/** Builds a {@link PolicySet} from stored rows, skipping disabled ones and kinds it does not know. */
export function buildPolicySet(rows: StoredPolicy[]): PolicySet {
  const set: PolicySet = {
    mandatoryTags: [],
    allowedValues: [],
    restrictedKeys: [],
    promotionOrder: null,
    prodApprovals: null,
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
      default:
        break;
    }
  }
  return set;
}

/** Turns a policy duration (see {@link policyDuration}) into whole seconds; throws for anything else. */
export function durationSeconds(value: string | number): number {
  const seconds = spelledSeconds(value);
  if (!inDurationRange(seconds)) throw new Error(`not a duration between 1 s and a year: ${value}`);
  return Math.round(seconds);
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

/**
 * Checks promotion order: `version` may go to `tier` only after it succeeded in the tier before.
 * `succeededTiers` are the tiers where this version of this service succeeded; `candidates` are the
 * service's environments of the prerequisite tier, named in the hint.
 */
export function checkPromotionOrder(
  args: { version: string; tier: string; succeededTiers: string[]; candidates: string[] },
  policies: PolicySet,
): Violation | null {
  const before = prerequisiteTier(args.tier, policies);
  if (before === null || args.succeededTiers.includes(before)) return null;
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

/** Approval requirements for a deployment to `tier`: how many, and how long to wait. */
export function approvalRequirement(
  tier: string,
  policies: PolicySet,
): { required: number; timeoutSeconds: number } {
  const rule = policies.prodApprovals;
  if (!rule || rule.tier !== tier) return { required: 0, timeoutSeconds: 0 };
  return { required: rule.required, timeoutSeconds: durationSeconds(rule.timeout) };
}
