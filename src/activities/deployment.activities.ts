import { ApplicationFailure, Context } from '@temporalio/activity';
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import { Approval, Deployment, Environment, Service } from '../domain/entities';
import { loadPolicies, promotionViolation } from '../domain/deployment-rules';
import { durationSeconds } from '../domain/durations';
import { isTerminal, moveDeployment, type DeploymentStatus, type MoveFacts } from '../domain/lifecycle';
import { approvalWait, deploymentsFinished } from '../metrics';
import { FAILURE_TYPES, type DeploymentState } from '../workflows/contract';
import { DriverError } from './drivers/driver';
import type { ActivityDeps } from './activity-deps';
import { SYSTEM_ACTOR, activityLogger, moveFacts, record } from './run-context';

/** Result of `beginDeployment`. */
export interface BeginResult extends DeploymentState {
  proceed: boolean;
  approvalTimeoutSeconds: number;
  /** How often a reminder goes out while it waits for approval (`remind_every`); 0: never. */
  remindEverySeconds: number;
  error: string | null;
  failureType: string | null;
}

/** The deployment as its run sees it. */
export function stateOf(d: Deployment, approvers: string[]): DeploymentState {
  return { status: d.status, approvalsRequired: d.approvalsRequired, approvers };
}

/** Who decided on a deployment, in order. */
export async function approversOf(em: EntityManager, deploymentId: number): Promise<string[]> {
  const rows = await em.find(Approval, { deploymentId }, { orderBy: { id: 'asc' } });
  return rows.map((a) => a.approver);
}

/**
 * Moves a locked deployment to `to` when its status is one of `from` (a step repeated after it took
 * effect finds the status moved on and changes nothing), recording the move's audit entry in `em`;
 * true when it moved.
 */
export function move(
  em: EntityManager,
  logger: Logger,
  d: Deployment,
  from: readonly DeploymentStatus[],
  to: DeploymentStatus,
  facts: MoveFacts,
): boolean {
  if (!from.includes(d.status)) return false;
  const previous = d.status;
  record(em, moveDeployment(d, to, facts), { type: 'deployment', row: d });
  if (isTerminal(to)) deploymentsFinished.inc({ tier: d.tier, outcome: to });
  activityLogger(logger).info({ deployment_id: d.id, from: previous, to }, 'deployment status changed');
  return true;
}

/** The row of a deployment, locked for the rest of the transaction. */
export function lockDeployment(em: EntityManager, id: number): Promise<Deployment> {
  return em.findOneOrFail(Deployment, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
}

/** beginDeployment's step inside its transaction (see there). */
async function begin(em: EntityManager, logger: Logger, deploymentId: number): Promise<BeginResult> {
  const d = await lockDeployment(em, deploymentId);
  const policies = await loadPolicies(em);
  const rule = policies.prodApprovals;
  const remind =
    d.approvalsRequired > 0 && rule?.tier === d.tier && rule.remind_every !== undefined
      ? durationSeconds(rule.remind_every)
      : 0;
  const result = (proceed: boolean, error: string | null, failureType: string | null): BeginResult => ({
    ...stateOf(d, []),
    proceed,
    approvalTimeoutSeconds: d.approvalTimeoutSeconds,
    remindEverySeconds: remind,
    error,
    failureType,
  });
  if (d.status !== 'pending') {
    const proceed = !isTerminal(d.status);
    return {
      ...result(proceed, d.error, proceed ? null : d.status),
      approvers: await approversOf(em, d.id),
    };
  }
  const fail = (error: string, failureType: string): BeginResult => {
    move(
      em,
      logger,
      d,
      ['pending'],
      'failed',
      moveFacts(SYSTEM_ACTOR, d.correlationId, { detail: error, error }),
    );
    return result(false, error, failureType);
  };
  const env = await em.findOneOrFail(Environment, d.environmentId);
  if (env.status !== 'ready')
    return fail(`environment '${env.name}' is ${env.status}, not ready`, FAILURE_TYPES.notReady);
  // A rollback goes back to a version that ran in this environment: no promotion order for it.
  const violation =
    d.kind === 'rollback' ? null : await promotionViolation(em, policies, d.serviceId, d.tier, d.version);
  if (violation) return fail(`${violation.message}; ${violation.hint}`, FAILURE_TYPES.promotionOrder);
  const next = d.approvalsRequired > 0 ? 'awaiting_approval' : 'in_progress';
  const detail = next === 'awaiting_approval' ? `waiting for ${d.approvalsRequired} approval(s)` : undefined;
  move(em, logger, d, ['pending'], next, moveFacts(SYSTEM_ACTOR, d.correlationId, { detail }));
  return result(true, null, null);
}

/** The activities of one deployment's run (its decisions: see decision.activities.ts). */
export function deploymentActivities({ orm, logger, driver }: ActivityDeps) {
  return {
    /**
     * The authoritative checks before a deployment goes on: the environment is ready and the version
     * succeeded in the tier before (under races the API's check may be stale). Moves `pending` on to
     * `awaiting_approval` or `in_progress`.
     */
    beginDeployment: (deploymentId: number): Promise<BeginResult> =>
      orm.em.fork().transactional((em) => begin(em, logger, deploymentId)),

    /**
     * Moves a deployment to `to` if it is in one of `from`; returns the status it has afterwards.
     * `extra` names who reported it (a target, `target:<name>`) and the `external_url` it gave.
     */
    async transitionDeployment(
      deploymentId: number,
      from: DeploymentStatus[],
      to: DeploymentStatus,
      detail: string | null,
      extra: { actor?: string; externalUrl?: string | null } = {},
    ): Promise<DeploymentStatus> {
      return orm.em.fork().transactional(async (em) => {
        const d = await lockDeployment(em, deploymentId);
        const error = to === 'failed' || to === 'expired' ? (detail ?? undefined) : undefined;
        if (extra.externalUrl && from.includes(d.status)) d.externalUrl = extra.externalUrl;
        const moved = move(
          em,
          logger,
          d,
          from,
          to,
          moveFacts(extra.actor ?? SYSTEM_ACTOR, d.correlationId, { detail: detail ?? undefined, error }),
        );
        if (moved && to === 'expired') approvalWait.observe({ outcome: 'expired' }, d.approvalTimeoutSeconds);
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
        if (err instanceof DriverError && !err.retryable)
          throw ApplicationFailure.nonRetryable(err.message, FAILURE_TYPES.deployFailed);
        throw err;
      }
    },
  };
}
