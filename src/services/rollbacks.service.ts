/** Rolling an environment back: the use case behind `POST …/environments/:envId/rollback`. */
import type { EntityManager } from '@mikro-orm/postgresql';
import { insertDeployment } from '../db/deployments';
import { Deployment, type Environment } from '../domain/entities';
import { ConflictError, InputError } from '../domain/errors';
import { loadPolicies } from '../domain/deployment-rules';
import { recordChange } from '../db/changes';
import { ACTIVE_DEPLOYMENT_STATUSES, rolledBackEntry } from '../domain/lifecycle';
import { approvalRequirement } from '../domain/policies';
import { canDeploy } from '../domain/rbac';
import { rollbacksStarted } from '../metrics';
import { byCaller, deny, isUniqueViolation } from './audit-trail';
import type { Caller } from './caller';
import { getDeployment, type DeploymentView } from './deployment-records';
import {
  admitOverride,
  lockConflict,
  refuseFrozen,
  startRun,
  type FreezeOverride,
  type TriggerTarget,
} from './deployment-start';
import { triggerTarget } from './deployments.service';
import type { ServiceDeps } from './service-deps';

/** What a rollback asks for. */
export interface RollbackRequest {
  to_version?: string;
  reason?: string;
  initiated_by?: string;
  freeze_override?: FreezeOverride;
}

/** The environment's current deployment: the newest whose rollout ended (succeeded or failed). */
function currentOf(em: EntityManager, env: Environment): Promise<Deployment | null> {
  return em.findOne(
    Deployment,
    { environmentId: env.id, status: { $in: ['succeeded', 'failed'] } },
    { orderBy: { id: 'desc' } },
  );
}

/**
 * The version to roll back to: `asked` when it succeeded in the environment (400 otherwise), else
 * the version of the newest deployment that succeeded there before the current one (409 when none).
 */
async function versionTo(
  em: EntityManager,
  env: Environment,
  current: Deployment,
  asked: string | undefined,
): Promise<Deployment> {
  if (asked !== undefined) {
    const ran = await em.findOne(
      Deployment,
      { environmentId: env.id, version: asked, status: 'succeeded' },
      { orderBy: { id: 'desc' } },
    );
    if (ran) return ran;
    throw new InputError(`version '${asked}' never succeeded in environment '${env.name}'`, [
      {
        rule: 'rollback',
        field: 'body.to_version',
        message: `version '${asked}' never succeeded in environment '${env.name}'`,
        hint: 'roll back to a version of the environment history (GET …/deployments) that succeeded, or leave to_version out',
      },
    ]);
  }
  const earlier = await em.findOne(
    Deployment,
    { environmentId: env.id, status: 'succeeded', id: { $lt: current.id } },
    { orderBy: { id: 'desc' } },
  );
  if (earlier) return earlier;
  throw new ConflictError(
    `nothing to roll back to: no deployment succeeded in environment '${env.name}' before deployment ${current.id}`,
  );
}

/**
 * Rolls an environment back (who: as triggering a deployment): to `to_version` or the version that
 * succeeded before the current deployment. No promotion-order check (the version ran there); the
 * environment lock, approvals unless `rollbacks_exempt`, freezes unless `exempt_rollbacks`. The
 * current deployment's `rolled_back_by` names the rollback.
 */
export async function rollbackEnvironment(
  deps: ServiceDeps,
  caller: Caller,
  where: { serviceId: number; environmentId: number },
  body: RollbackRequest,
): Promise<DeploymentView> {
  const em = deps.orm.em.fork();
  const t: TriggerTarget = await triggerTarget(em, where);
  const { env } = t;
  const facts = {
    action: 'deployment.rollback',
    targetType: 'environment',
    targetId: env.id,
    team: t.teamName,
    details: { to_version: body.to_version ?? null, tier: env.tier },
  };
  if (!canDeploy(caller.actor, t.teamName))
    await deny(
      deps.orm,
      caller,
      facts,
      `you may not roll back services of ${t.teamName ? `team '${t.teamName}'` : 'no team'}`,
    );
  const override = await admitOverride(deps, caller, facts, body.freeze_override);
  const active = await em.findOne(Deployment, {
    environmentId: env.id,
    status: { $in: [...ACTIVE_DEPLOYMENT_STATUSES] },
  });
  if (active) throw await lockConflict(em, env);
  const current = await currentOf(em, env);
  if (!current)
    throw new ConflictError(`nothing to roll back: environment '${env.name}' has no finished deployment`);
  const to = await versionTo(em, env, current, body.to_version);
  const policies = await loadPolicies(em);
  await refuseFrozen(deps, caller, facts, policies, env.tier, 'rollback', override);
  if (env.status !== 'ready')
    throw new ConflictError(`environment '${env.name}' is ${env.status}, not ready`);
  const approval = approvalRequirement(env.tier, policies, 'rollback');
  let rollback: Deployment;
  try {
    rollback = await deps.orm.em.fork().transactional(async (tx) => {
      const created = await insertDeployment(
        tx,
        {
          service: t.service,
          environment: env,
          team: t.teamName,
          version: to.version,
          config: to.config,
          initiatedBy: body.initiated_by ?? 'rollback',
          requestedBy: caller.actor.sub,
          approvalsRequired: approval.required,
          approvalTimeoutSeconds: approval.timeoutSeconds,
          idempotencyKey: null,
          requestHash: null,
          correlationId: caller.correlationId,
          kind: 'rollback',
          rollbackOf: current.id,
          freezeOverride: override,
        },
        byCaller(caller),
        body.reason ? { reason: body.reason } : {},
      );
      const replaced = await tx.findOneOrFail(Deployment, current.id);
      replaced.rolledBackBy = created.id;
      recordChange(tx, rolledBackEntry(replaced, created, byCaller(caller)), {
        type: 'deployment',
        row: replaced,
      });
      return created;
    });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    throw await lockConflict(deps.orm.em.fork(), env);
  }
  rollbacksStarted.inc({ trigger: 'manual', tier: env.tier });
  await startRun(deps, caller, t, rollback);
  return getDeployment(deps, rollback.id);
}
