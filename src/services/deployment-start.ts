/**
 * What every way of starting a deployment from the API shares (a trigger, a rollback): the
 * break-glass check, the freeze refusal, the 409 of a held environment, and starting the run.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { deployInputOf } from '../db/deployments';
import { Deployment, type Environment, type Service } from '../domain/entities';
import { ConflictError, FreezeError } from '../domain/errors';
import { freezeHolding, freezeViolation } from '../domain/freezes';
import { ACTIVE_DEPLOYMENT_STATUSES } from '../domain/lifecycle';
import type { PolicySet } from '../domain/policies';
import { deploymentsStarted, freezeOverrides, freezeRefusals } from '../metrics';
import { deny, recordAlone, type RefusalFacts } from './audit-trail';
import type { Caller } from './caller';
import { endUnstarted } from './deployment-records';
import type { ServiceDeps } from './service-deps';

/** What a deployment is about: the service, its team and the environment, found once. */
export interface TriggerTarget {
  service: Service;
  teamName: string | null;
  env: Environment;
}

/** A PLATFORM_ADMIN's break-glass through a deploy freeze, as a trigger body spells it. */
export interface FreezeOverride {
  reason: string;
}

/**
 * The reason of a `freeze_override`, refused (403, audited) unless the caller is a PLATFORM_ADMIN;
 * null when the body has none.
 */
export async function admitOverride(
  deps: ServiceDeps,
  caller: Caller,
  facts: RefusalFacts,
  override: FreezeOverride | undefined,
): Promise<string | null> {
  if (!override) return null;
  if (!caller.actor.roles.includes('PLATFORM_ADMIN'))
    await deny(deps.orm, caller, facts, 'only PLATFORM_ADMIN may break a deploy freeze (freeze_override)');
  return override.reason;
}

/**
 * Refuses (409, audited as a violation) a deployment of `kind` into a tier a deploy freeze holds
 * now, unless it breaks glass with `override` (counted).
 */
export async function refuseFrozen(
  deps: ServiceDeps,
  caller: Caller,
  facts: RefusalFacts,
  policies: PolicySet,
  tier: string,
  kind: 'deploy' | 'rollback',
  override: string | null,
): Promise<void> {
  const freeze = freezeHolding(policies.deployFreeze, tier, kind, new Date());
  if (!freeze) return;
  if (override !== null) {
    freezeOverrides.inc({ tier });
    return;
  }
  const violation = freezeViolation(tier, freeze);
  freezeRefusals.inc({ tier });
  await recordAlone(deps.orm, caller, {
    ...facts,
    outcome: 'violation',
    details: { ...facts.details, violations: [violation] },
  });
  throw new FreezeError(violation.message, [violation]);
}

/** The 409 for an environment whose lock another deployment holds, naming that deployment. */
export async function lockConflict(em: EntityManager, env: Environment): Promise<ConflictError> {
  const active = await em.findOne(Deployment, {
    environmentId: env.id,
    status: { $in: [...ACTIVE_DEPLOYMENT_STATUSES] },
  });
  return new ConflictError(
    active
      ? `environment '${env.name}' is locked by active deployment ${active.jobId} (${active.status}); wait for it or cancel it`
      : `environment '${env.name}' is locked by another deployment; retry`,
    active ? { active_job_id: active.jobId, active_deployment_id: active.id } : {},
  );
}

/**
 * Starts the deployment's run. When the start failed, or its answer was lost, the deployment is
 * ended if it is still `pending`, so it does not hold the environment's lock, and the 503 goes on;
 * if the run did start and has moved it on already, the deployment is under way: no error.
 */
export async function startRun(
  deps: ServiceDeps,
  caller: Caller,
  t: TriggerTarget,
  d: Deployment,
): Promise<void> {
  const { service, env } = t;
  const approvals = d.approvalsRequired > 0 ? `, ${d.approvalsRequired} approval(s)` : '';
  const what =
    d.kind === 'rollback'
      ? `Roll back ${service.name} to ${d.version} in`
      : `Deploy ${service.name} ${d.version} to`;
  try {
    await deps.jobs.start(
      d.jobId,
      {
        kind: 'deployment',
        input: deployInputOf(d, service, env),
        summary: `${what} ${env.name} (${env.tier}) through '${d.target}'${approvals}`,
      },
      caller.correlationId,
    );
  } catch (err) {
    const detail = 'the workflow could not be started: Temporal unavailable';
    if (await endUnstarted(deps, caller, d.id, ['pending'], 'failed', detail)) throw err;
  }
  deploymentsStarted.inc({ tier: env.tier });
}
