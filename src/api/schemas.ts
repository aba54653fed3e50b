import { z } from 'zod';
import { POLICY_KINDS } from '../domain/policies';
import { TARGET_KINDS, httpUrl, targetName, verificationSchema } from '../domain/targets';
import { isEventFilter } from '../domain/events';

/** Lower-case names usable in URLs and workflow IDs. */
export const slug = z
  .string()
  .regex(
    /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/,
    'lower-case letters, digits and dashes, 1-63 characters, no dash at either end',
  );

function depth(value: unknown, level = 0): number {
  if (value === null || typeof value !== 'object' || level > 40) return level;
  return Math.max(level, ...Object.values(value as object).map((v) => depth(v, level + 1)));
}

/** A free-form JSON object (environment or deployment config), at most 32 levels deep. */
export const configObject = z
  .record(z.string().max(255), z.unknown())
  .refine((v) => depth(v) <= 32, 'config may be at most 32 levels deep');

/** Service tags: string values, at most 50. */
export const tags = z
  .record(z.string().min(1).max(63), z.string().max(255))
  .refine((t) => Object.keys(t).length <= 50, 'at most 50 tags');

export const teamCreate = z.strictObject({
  name: slug,
  display_name: z.string().min(1).max(200).optional(),
});

export const teamUpdate = z.strictObject({
  display_name: z.string().min(1).max(200).nullable(),
});

export const serviceCreate = z.strictObject({
  name: slug,
  tags,
  team: slug.nullable().optional(),
  description: z.string().max(2000).nullable().optional(),
});

export const serviceUpdate = z
  .strictObject({
    tags: tags.optional(),
    team: slug.nullable().optional(),
    description: z.string().max(2000).nullable().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'give at least one of tags, team, description');

export const environmentCreate = z.strictObject({
  name: slug,
  tier: slug,
  config: configObject.optional(),
  target: targetName.optional(),
});

export const environmentPatch = z
  .strictObject({
    target: targetName.optional(),
    config: configObject.optional(),
    verification: verificationSchema.nullable().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'give at least one of target, config, verification');

export const targetCreate = z.strictObject({
  name: targetName,
  kind: z.enum(TARGET_KINDS),
  config: configObject.default({}),
  description: z.string().max(2000).nullable().optional(),
});

export const targetPatch = z
  .strictObject({
    config: configObject.optional(),
    description: z.string().max(2000).nullable().optional(),
  })
  .refine((b) => Object.keys(b).length > 0, 'give at least one of config, description');

/** A version as deployments and releases name it. */
export const version = z
  .string()
  .min(1)
  .max(128)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._+-]*$/, 'a version such as 1.0.0 or 2024.06.1-rc.1');

/** A PLATFORM_ADMIN's break-glass through a deploy freeze: the reason is audited. */
export const freezeOverride = z.strictObject({ reason: z.string().min(1).max(2000) });

export const deploymentCreate = z.strictObject({
  version,
  initiated_by: z.string().min(1).max(255).optional(),
  config: configObject.optional(),
  freeze_override: freezeOverride.optional(),
});

export const rollbackCreate = z
  .strictObject({
    to_version: version.optional(),
    reason: z.string().max(2000).optional(),
    initiated_by: z.string().min(1).max(255).optional(),
    freeze_override: freezeOverride.optional(),
  })
  .optional();

export const releaseCreate = z.strictObject({
  version,
  config: configObject.optional(),
  through: slug.optional(),
  description: z.string().max(2000).optional(),
  freeze_override: freezeOverride.optional(),
});

export const decisionCreate = z.strictObject({
  decision: z.enum(['approve', 'reject']),
  comment: z.string().max(2000).optional(),
});

export const cancelBody = z.strictObject({ reason: z.string().max(2000).optional() }).optional();

/**
 * A policy as PUT takes it: `kind`, `enabled`, `config`. The representation GET returns is accepted
 * as it is (read it, change a value, send it back): its read-only fields `updated_at` and
 * `updated_by` are ignored, and `name`, when present, must be the name in the path.
 */
export const policyPut = z.strictObject({
  kind: z.enum(POLICY_KINDS as [string, ...string[]]),
  enabled: z.boolean().default(true),
  config: z.record(z.string(), z.unknown()),
  name: z.string().max(63).optional(),
  updated_at: z.string().max(64).nullable().optional(),
  updated_by: z.string().max(255).nullable().optional(),
});

export const EVALUATE_ACTIONS = [
  'service.create',
  'service.update',
  'environment.create',
  'deployment.create',
] as const;

export const policyEvaluate = z.strictObject({
  action: z.enum(EVALUATE_ACTIONS),
  payload: z.record(z.string(), z.unknown()),
});

/** Idempotency keys as clients send them. */
export const idempotencyKey = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,255}$/, '1-255 characters of A-Z a-z 0-9 . _ : -');

/**
 * A positive integer as a path or query string, spelled one way only: decimal digits without a sign,
 * leading zeros, spaces, exponent or fraction (`42`, never `+42`, `042`, `0x2a`, `4.2e1`), at most
 * `max`. Coercing (`Number('0x10')` is 16) would let many strings name one row.
 */
export function canonicalInt(max: number, example: string) {
  const hint = `write it as decimal digits without sign, leading zeros or spaces, from 1 to ${max}, e.g. ${example}`;
  return z
    .string()
    .refine((s) => /^[1-9][0-9]*$/.test(s) && Number(s) <= max, {
      message: `not a whole number from 1 to ${max} in canonical form`,
      params: { hint },
    })
    .transform(Number);
}

/** Positive integer path ids (PostgreSQL int: at most 2^31 - 1). */
export const idParam = canonicalInt(2_147_483_647, '42');

/** An event type of the contract's list, or `*`. */
export const eventFilter = z.string().refine(isEventFilter, {
  message: 'not an event type',
  params: { hint: 'use a type of the contract (deployment.succeeded, release.failed, …) or "*" for all' },
});

export const webhookCreate = z.strictObject({
  url: httpUrl,
  events: z.array(eventFilter).min(1).max(20),
  team: slug.nullable().optional(),
  description: z.string().max(2000).optional(),
});
