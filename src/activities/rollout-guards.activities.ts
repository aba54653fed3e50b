/**
 * What a deployment's run checks around its rollout: a deploy freeze just before it (the run waits
 * durably for the window's end), and, when the rollout failed in an `auto_rollback` tier, the
 * rollback to the version that succeeded there before — started by the failing run itself, once.
 */
import type { EntityManager } from '@mikro-orm/postgresql';
import { deployInputOf, insertDeployment } from '../db/deployments';
import { AuditLog, Deployment, Environment, Service } from '../domain/entities';
import { loadPolicies } from '../domain/deployment-rules';
import { freezeHolding } from '../domain/freezes';
import { noteDeployment, reminderEntry, rolledBackEntry } from '../domain/lifecycle';
import { approvalRequirement } from '../domain/policies';
import { rollbacksStarted } from '../metrics';
import type { DeploymentStart } from '../workflows/contract';
import type { ActivityDeps } from './activity-deps';
import { isUniqueViolation } from '../db/errors';
import { lockDeployment } from './deployment.activities';
import { SYSTEM_ACTOR, activityLogger, correlationId, moveFacts, record, runInfo } from './run-context';

/** Who starts automatic rollbacks (their `requested_by`); `initiated_by` is `auto-rollback`. */
export const AUTO_ROLLBACK_ACTOR = 'system:auto-rollback';

/** The rollback started for `failed` as its run starts it (a repeat answers the same one). */
function startOf(rollback: Deployment, service: Service, env: Environment): DeploymentStart {
  return {
    deploymentId: rollback.id,
    jobId: rollback.jobId,
    input: deployInputOf(rollback, service, env),
    summary: `Roll back ${service.name} to ${rollback.version} in ${env.name} (${env.tier}) after deployment ${rollback.rollbackOf} failed`,
  };
}

/** Inserts the automatic rollback of the locked, failed deployment `failed`, or null when none is due. */
async function rollbackOf(em: EntityManager, failed: Deployment): Promise<DeploymentStart | null> {
  const env = await em.findOneOrFail(Environment, failed.environmentId);
  const service = await em.findOneOrFail(Service, failed.serviceId);
  if (failed.rolledBackBy !== null) {
    const existing = await em.findOneOrFail(Deployment, failed.rolledBackBy);
    return startOf(existing, service, env);
  }
  const policies = await loadPolicies(em);
  if (!policies.autoRollback?.tiers.includes(failed.tier)) return null;
  const earlier = await em.findOne(
    Deployment,
    { environmentId: failed.environmentId, status: 'succeeded', id: { $lt: failed.id } },
    { orderBy: { id: 'desc' } },
  );
  if (!earlier) return null;
  const approval = approvalRequirement(failed.tier, policies, 'rollback');
  const rollback = await insertDeployment(
    em,
    {
      service,
      environment: { id: env.id, name: env.name, tier: env.tier, target: env.target },
      team: failed.team,
      version: earlier.version,
      config: earlier.config,
      initiatedBy: 'auto-rollback',
      requestedBy: AUTO_ROLLBACK_ACTOR,
      approvalsRequired: approval.required,
      approvalTimeoutSeconds: approval.timeoutSeconds,
      idempotencyKey: null,
      requestHash: null,
      correlationId: correlationId(failed.correlationId) ?? failed.correlationId,
      kind: 'rollback',
      rollbackOf: failed.id,
    },
    { actor: AUTO_ROLLBACK_ACTOR, actorRoles: [], correlationId: correlationId(failed.correlationId) },
    { reason: `deployment ${failed.id} failed: ${failed.error ?? 'no detail'}`, ...runInfo() },
  );
  failed.rolledBackBy = rollback.id;
  record(
    em,
    rolledBackEntry(failed, rollback, {
      actor: AUTO_ROLLBACK_ACTOR,
      correlationId: correlationId(failed.correlationId),
      context: runInfo(),
    }),
    { type: 'deployment', row: failed },
  );
  return startOf(rollback, service, env);
}

/** The activities around a rollout. */
export function rolloutGuardActivities({ orm, logger }: Pick<ActivityDeps, 'orm' | 'logger'>) {
  return {
    /** The deploy freeze holding the deployment now (none when it breaks glass or is an exempt rollback). */
    async freezeCheck(deploymentId: number): Promise<{ window: string; until: string } | null> {
      const em = orm.em.fork();
      const d = await em.findOneOrFail(Deployment, deploymentId);
      if (d.freezeOverride !== null) return null;
      const freeze = freezeHolding((await loadPolicies(em)).deployFreeze, d.tier, d.kind, new Date());
      return freeze ? { window: freeze.window, until: freeze.until.toISOString() } : null;
    },

    /** Sends the `n`-th approval reminder (an audit entry and its event), unless the deployment no longer waits. */
    async remindApproval(deploymentId: number, n: number): Promise<void> {
      await orm.em.fork().transactional(async (em) => {
        const d = await lockDeployment(em, deploymentId);
        if (d.status !== 'awaiting_approval') return;
        const dedupeKey = `${d.jobId}:reminder:${n}`;
        if ((await em.count(AuditLog, { dedupeKey })) > 0) return;
        record(
          em,
          reminderEntry(d, n, {
            actor: SYSTEM_ACTOR,
            correlationId: correlationId(d.correlationId),
            context: runInfo(),
          }),
          { type: 'deployment', row: d },
        );
      });
    },

    /** Notes a wait on the deployment's timeline (and in the audit log), once per `key`. */
    async noteDeploymentWait(deploymentId: number, key: string, detail: string): Promise<void> {
      await orm.em.fork().transactional(async (em) => {
        const d = await lockDeployment(em, deploymentId);
        const dedupe = `${d.jobId}:note:${key}`;
        if (d.timeline.some((t) => t.detail === detail) || d.status === 'succeeded') return;
        record(em, noteDeployment(d, key, { ...moveFacts(SYSTEM_ACTOR, d.correlationId), detail }));
        activityLogger(logger).info({ deployment_id: d.id, dedupe }, 'deployment noted');
      });
    },

    /**
     * After a rollout failed: when its tier rolls back automatically and an earlier version succeeded
     * in the environment, inserts the rollback (`initiated_by: auto-rollback`, `rollback_of` the failed
     * one, whose `rolled_back_by` names it) and answers how to start it; never for a rollback. A repeat
     * answers the same rollback. Null when none is due, or another deployment took the environment.
     */
    async startAutoRollback(deploymentId: number): Promise<DeploymentStart | null> {
      try {
        const start = await orm.em.fork().transactional(async (em) => {
          const failed = await lockDeployment(em, deploymentId);
          if (failed.kind === 'rollback' || failed.status !== 'failed') return null;
          const known = failed.rolledBackBy !== null;
          const s = await rollbackOf(em, failed);
          if (s && !known) rollbacksStarted.inc({ trigger: 'automatic', tier: failed.tier });
          return s;
        });
        if (start)
          activityLogger(logger).info(
            { deployment_id: deploymentId, rollback: start.jobId },
            'automatic rollback',
          );
        return start;
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        activityLogger(logger).warn(
          { deployment_id: deploymentId },
          'no automatic rollback: another deployment holds the environment',
        );
        return null;
      }
    },
  };
}
