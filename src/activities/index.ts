import { Context, ApplicationFailure } from '@temporalio/activity';
import { LockMode, type MikroORM, type EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { DecisionInput, DeploymentState, ProvisionInput } from '../workflows/contract';
import { FAILURE_TYPES } from '../workflows/contract';
import { Approval, AuditLog, Deployment, Environment, Service, Team } from '../domain/entities';
import { applyStatus, loadPolicies, promotionViolation } from '../domain/deployment-rules';
import { isTerminal, type DeploymentStatus } from '../domain/types';
import { approvalWait, deploymentsFinished } from '../metrics';
import { activityCorrelation } from './correlation';
import { DriverError, type Driver } from './drivers/driver';

/** What activities need from the process that runs them. */
export interface ActivityDeps {
  orm: MikroORM;
  logger: Logger;
  driver: Driver;
}

/** Result of {@link Activities.beginDeployment}. */
export interface BeginResult extends DeploymentState {
  proceed: boolean;
  approvalTimeoutSeconds: number;
  error: string | null;
  failureType: string | null;
}

/** What every status change records beside the new status. */
interface TransitionOptions {
  actor: string;
  detail?: string;
  error?: string;
}

const SYSTEM_ACTOR = 'system:worker';

function runInfo(): { workflow_id: string; run_id: string; activity: string } {
  const info = Context.current().info;
  return {
    workflow_id: info.workflowExecution?.workflowId ?? '',
    run_id: info.workflowExecution?.runId ?? '',
    activity: info.activityType,
  };
}

function correlationId(fallback: string | null): string | null {
  return activityCorrelation.getStore() ?? fallback;
}

function stateOf(d: Deployment, approvers: string[]): DeploymentState {
  return { status: d.status, approvalsRequired: d.approvalsRequired, approvers };
}

/**
 * Creates the activities over the ORM, logger and driver. Each activity forks its own
 * EntityManager and is safe to run twice: status changes are guarded by the status they leave, and
 * audit entries carry a key derived from the workflow ID.
 */
export function createActivities({ orm, logger, driver }: ActivityDeps) {
  const log = (): Logger => logger.child({ ...runInfo(), correlation_id: activityCorrelation.getStore() });

  /** Moves a deployment from one of `from` to `to`; a no-op (returning the row) when it is elsewhere. */
  async function transition(
    em: EntityManager,
    deployment: Deployment,
    from: readonly DeploymentStatus[],
    to: DeploymentStatus,
    opts: TransitionOptions,
  ): Promise<boolean> {
    if (!from.includes(deployment.status)) return false;
    const at = new Date();
    const previous = applyStatus(deployment, to, { ...opts, at });
    const info = runInfo();
    em.create(AuditLog, {
      at,
      actor: opts.actor,
      actorRoles: [],
      action: `deployment.${to}`,
      outcome: to === 'failed' ? 'failure' : 'success',
      targetType: 'deployment',
      targetId: String(deployment.id),
      team: deployment.team,
      correlationId: correlationId(deployment.correlationId),
      details: { from: previous, to, ...info, ...(opts.detail ? { detail: opts.detail } : {}) },
      dedupeKey: `${deployment.jobId}:status:${to}`,
    });
    if (isTerminal(to)) deploymentsFinished.inc({ tier: deployment.tier, outcome: to });
    log().info({ deployment_id: deployment.id, from: previous, to }, 'deployment status changed');
    return true;
  }

  async function approversOf(em: EntityManager, deploymentId: number): Promise<string[]> {
    const rows = await em.find(Approval, { deploymentId }, { orderBy: { id: 'asc' } });
    return rows.map((a) => a.approver);
  }

  async function lockDeployment(em: EntityManager, id: number): Promise<Deployment> {
    return em.findOneOrFail(Deployment, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
  }

  return {
    /** Creates the environment's resources through the driver. */
    async provisionResources(input: ProvisionInput): Promise<string> {
      const env = await orm.em.fork().findOneOrFail(Environment, input.environmentId);
      try {
        const result = await driver.provision(
          { jobId: env.jobId, service: input.service, environment: env.name, tier: env.tier, config: env.config },
          () => Context.current().heartbeat(),
          Context.current().cancellationSignal,
        );
        return result.detail;
      } catch (err) {
        if (err instanceof DriverError && !err.retryable) {
          throw ApplicationFailure.nonRetryable(err.message, FAILURE_TYPES.provisionFailed);
        }
        throw err;
      }
    },

    /** Records the outcome of provisioning; only a `provisioning` environment changes. */
    async markEnvironment(environmentId: number, status: 'ready' | 'failed', error: string | null): Promise<string> {
      return orm.em.fork().transactional(async (em) => {
        const env = await em.findOneOrFail(Environment, environmentId, { lockMode: LockMode.PESSIMISTIC_WRITE });
        if (env.status !== 'provisioning') return env.status;
        env.status = status;
        env.error = error;
        const service = await em.findOneOrFail(Service, env.serviceId);
        const team = service.teamId === null ? null : await teamName(em, service.teamId);
        em.create(AuditLog, {
          at: new Date(),
          actor: SYSTEM_ACTOR,
          actorRoles: [],
          action: `environment.${status}`,
          outcome: status === 'ready' ? 'success' : 'failure',
          targetType: 'environment',
          targetId: String(env.id),
          team,
          correlationId: correlationId(null),
          details: { ...runInfo(), ...(error ? { error } : {}) },
          dedupeKey: `${env.jobId}:status:${status}`,
        });
        log().info({ environment_id: env.id, status }, 'environment status changed');
        return env.status;
      });
    },

    /**
     * The authoritative checks before a deployment goes on: the environment is ready and the version
     * succeeded in the tier before (under races the API's check may be stale). Moves `pending` on to
     * `awaiting_approval` or `in_progress`.
     */
    async beginDeployment(deploymentId: number): Promise<BeginResult> {
      return orm.em.fork().transactional(async (em) => {
        const d = await lockDeployment(em, deploymentId);
        const result = (proceed: boolean, error: string | null, failureType: string | null): BeginResult => ({
          ...stateOf(d, []),
          proceed,
          approvalTimeoutSeconds: d.approvalTimeoutSeconds,
          error,
          failureType,
        });
        if (d.status !== 'pending') {
          const proceed = !isTerminal(d.status);
          return { ...result(proceed, d.error, proceed ? null : d.status), approvers: await approversOf(em, d.id) };
        }
        const env = await em.findOneOrFail(Environment, d.environmentId);
        if (env.status !== 'ready') {
          const error = `environment '${env.name}' is ${env.status}, not ready`;
          await transition(em, d, ['pending'], 'failed', { actor: SYSTEM_ACTOR, detail: error, error });
          return result(false, error, FAILURE_TYPES.notReady);
        }
        const violation = await promotionViolation(em, await loadPolicies(em), d.serviceId, d.tier, d.version);
        if (violation) {
          const error = `${violation.message}; ${violation.hint}`;
          await transition(em, d, ['pending'], 'failed', { actor: SYSTEM_ACTOR, detail: error, error });
          return result(false, error, FAILURE_TYPES.promotionOrder);
        }
        const next = d.approvalsRequired > 0 ? 'awaiting_approval' : 'in_progress';
        await transition(em, d, ['pending'], next, {
          actor: SYSTEM_ACTOR,
          detail: next === 'awaiting_approval' ? `waiting for ${d.approvalsRequired} approval(s)` : undefined,
        });
        return result(true, null, null);
      });
    },

    /**
     * Records one approver's decision and, when it settles the deployment, its new status: a rejection
     * ends it, the `required`-th approval moves it on. A decision that can no longer be taken (the
     * deployment moved on, or this approver decided otherwise) is refused with a non-retryable
     * `DecisionRefused` failure, never answered with the state found. Repeating the same decision
     * (a retried step) changes nothing and answers the state.
     */
    async recordDecision(deploymentId: number, decision: DecisionInput): Promise<DeploymentState> {
      return orm.em.fork().transactional(async (em) => {
        const d = await lockDeployment(em, deploymentId);
        const existing = await em.findOne(Approval, { deploymentId, approver: decision.approver });
        if (existing !== null) {
          if (existing.decision === decision.decision) return stateOf(d, await approversOf(em, d.id));
          throw ApplicationFailure.nonRetryable(`${decision.approver} has already decided (${existing.decision})`, FAILURE_TYPES.decisionRefused);
        }
        if (d.status !== 'awaiting_approval') {
          throw ApplicationFailure.nonRetryable(`deployment is ${d.status}, not awaiting approval`, FAILURE_TYPES.decisionRefused);
        }
        const at = new Date();
        em.create(Approval, {
          deploymentId,
          approver: decision.approver,
          decision: decision.decision,
          comment: decision.comment,
          at,
        });
        em.create(AuditLog, {
          at,
          actor: decision.approver,
          actorRoles: decision.roles,
          action: `deployment.${decision.decision}`,
          outcome: 'success',
          targetType: 'deployment',
          targetId: String(d.id),
          team: d.team,
          correlationId: decision.correlationId,
          details: { ...runInfo(), ...(decision.comment ? { comment: decision.comment } : {}) },
          dedupeKey: `${d.jobId}:decision:${decision.approver}`,
        });
        await em.flush();
        const approvals = await em.find(Approval, { deploymentId }, { orderBy: { id: 'asc' } });
        const approvedBy = approvals.filter((a) => a.decision === 'approve').map((a) => a.approver);
        const waitingSince = [...d.timeline].reverse().find((t) => t.status === 'awaiting_approval')?.at;
        const waited = waitingSince ? (at.getTime() - Date.parse(waitingSince)) / 1000 : 0;
        if (decision.decision === 'reject') {
          const detail = `rejected by ${decision.approver}${decision.comment ? `: ${decision.comment}` : ''}`;
          await transition(em, d, ['awaiting_approval'], 'rejected', { actor: decision.approver, detail, error: detail });
          approvalWait.observe({ outcome: 'rejected' }, waited);
        } else if (approvedBy.length >= d.approvalsRequired) {
          await transition(em, d, ['awaiting_approval'], 'in_progress', {
            actor: decision.approver,
            detail: `approved by ${approvedBy.join(', ')}`,
          });
          approvalWait.observe({ outcome: 'approved' }, waited);
        }
        return stateOf(d, approvals.map((a) => a.approver));
      });
    },

    /** Moves a deployment to `to` if it is in one of `from`; returns the status it has afterwards. */
    async transitionDeployment(
      deploymentId: number,
      from: DeploymentStatus[],
      to: DeploymentStatus,
      detail: string | null,
    ): Promise<DeploymentStatus> {
      return orm.em.fork().transactional(async (em) => {
        const d = await lockDeployment(em, deploymentId);
        const error = to === 'failed' || to === 'expired' ? (detail ?? undefined) : undefined;
        await transition(em, d, from, to, { actor: SYSTEM_ACTOR, detail: detail ?? undefined, error });
        if (to === 'expired' && d.status === 'expired') approvalWait.observe({ outcome: 'expired' }, d.approvalTimeoutSeconds);
        return d.status;
      });
    },

    /** Rolls the version out through the driver, heartbeating so a lost worker is noticed quickly. */
    async runDeployment(deploymentId: number): Promise<string> {
      const em = orm.em.fork();
      const d = await em.findOneOrFail(Deployment, deploymentId);
      const env = await em.findOneOrFail(Environment, d.environmentId);
      const service = await em.findOneOrFail(Service, d.serviceId);
      try {
        const result = await driver.deploy(
          {
            jobId: d.jobId,
            service: service.name,
            environment: env.name,
            tier: d.tier,
            version: d.version,
            config: d.config,
            environmentConfig: env.config,
          },
          () => Context.current().heartbeat(),
          Context.current().cancellationSignal,
        );
        return result.detail;
      } catch (err) {
        if (err instanceof DriverError && !err.retryable) {
          throw ApplicationFailure.nonRetryable(err.message, FAILURE_TYPES.deployFailed);
        }
        throw err;
      }
    },
  };
}

async function teamName(em: EntityManager, teamId: number): Promise<string | null> {
  return (await em.findOne(Team, teamId))?.name ?? null;
}

/** The activities a worker registers; workflows import this type only. */
export type Activities = ReturnType<typeof createActivities>;
