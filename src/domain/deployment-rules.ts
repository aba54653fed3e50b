import type { EntityManager } from '@mikro-orm/postgresql';
import { Deployment, Environment, PlatformPolicy } from './entities';
import type { Violation } from './errors';
import { buildPolicySet, checkPromotionOrder, prerequisiteTier, type PolicySet } from './policies';

/**
 * The policies read last, per database, and the generation they were read in: every trigger and
 * every deployment's first step needs them, and they change rarely. A change made by this process
 * forgets them at once ({@link forgetPolicies}); one made by another process does when its NOTIFY
 * arrives (src/db/event-notices.ts), a few milliseconds later.
 */
const cached = new Map<string, { set: PolicySet; generation: number }>();
let generation = 0;

/** Forgets the cached policies (a policy changed). */
export function forgetPolicies(): void {
  generation += 1;
  cached.clear();
}

/** The policies in force now. */
export async function loadPolicies(em: EntityManager): Promise<PolicySet> {
  const key = String(em.config.get('clientUrl'));
  const hit = cached.get(key);
  if (hit && hit.generation === generation) return hit.set;
  const read = generation;
  const set = buildPolicySet(await em.find(PlatformPolicy, {}));
  // Read while a change was being forgotten: good for this caller, not for the next one.
  if (read === generation) cached.set(key, { set, generation: read });
  return set;
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
  const succeededSince = first ? (first.finishedAt ?? first.updatedAt) : null;
  const check = (candidates: string[]) =>
    checkPromotionOrder({ version, tier, succeededSince, candidates }, policies);
  // The environments of the tier before are named in the refusal's hint only: read them only then.
  if (check([]) === null) return null;
  const candidates = (
    await em.find(Environment, { serviceId, tier: before }, { orderBy: { id: 'asc' } })
  ).map((e) => e.name);
  return check(candidates);
}
