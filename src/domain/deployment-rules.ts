import type { EntityManager } from '@mikro-orm/postgresql';
import { Deployment, Environment, PlatformPolicy } from './entities';
import type { Violation } from './errors';
import { buildPolicySet, checkPromotionOrder, prerequisiteTier, type PolicySet } from './policies';

/** The policies in force now. */
export async function loadPolicies(em: EntityManager): Promise<PolicySet> {
  return buildPolicySet(await em.find(PlatformPolicy, {}));
}

/**
 * Promotion order against the record: has `version` of this service succeeded in the tier before
 * `tier`? The API asks first (a fast 400); the workflow's first activity asks again, authoritatively.
 */
export async function promotionViolation(
  em: EntityManager,
  policies: PolicySet,
  serviceId: number,
  tier: string,
  version: string,
): Promise<Violation | null> {
  const before = prerequisiteTier(tier, policies);
  if (before === null) return null;
  const first = await em.findOne(
    Deployment,
    { serviceId, version, tier: before, status: 'succeeded' },
    { orderBy: { finishedAt: 'asc' }, fields: ['finishedAt', 'updatedAt'] },
  );
  const candidates = (
    await em.find(Environment, { serviceId, tier: before }, { orderBy: { id: 'asc' } })
  ).map((e) => e.name);
  return checkPromotionOrder(
    { version, tier, succeededSince: first ? (first.finishedAt ?? first.updatedAt) : null, candidates },
    policies,
  );
}
