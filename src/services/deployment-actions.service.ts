/** What happens to a deployment once triggered: an approver's decision, a cancellation. */
import { randomUUID } from 'node:crypto';
import { Approval } from '../domain/entities';
import { ConflictError } from '../domain/errors';
import { ACTIVE_DEPLOYMENT_STATUSES, isTerminal } from '../domain/lifecycle';
import { canCancel, canDecide } from '../domain/rbac';
import { deny, recordAlone } from './audit-trail';
import type { Caller } from './caller';
import { endUnstarted, getDeployment, type DeploymentView } from './deployment-records';
import type { ServiceDeps } from './service-deps';

/** A decision as the approver sends it. */
export interface DecisionRequest {
  decision: 'approve' | 'reject';
  comment?: string;
}

/**
 * Sends an eligible approver's decision to the deployment's run, which records it or refuses it
 * (409); answers the deployment as it stands after the decision.
 */
export async function decide(
  deps: ServiceDeps,
  caller: Caller,
  id: number,
  body: DecisionRequest,
): Promise<DeploymentView> {
  const { deployment: d } = await getDeployment(deps, id);
  const facts = {
    action: `deployment.${body.decision}`,
    targetType: 'deployment',
    targetId: d.id,
    team: d.team,
  };
  if (!canDecide(caller.actor, d.team, d.requestedBy)) {
    await deny(
      deps.orm,
      caller,
      facts,
      caller.actor.sub === d.requestedBy
        ? 'you requested this deployment; another eligible approver must decide'
        : `only PLATFORM_ADMIN or a TEAM_ADMIN of team '${d.team ?? '(none)'}' may decide on this deployment`,
    );
  }
  if (d.status !== 'awaiting_approval')
    throw new ConflictError(`deployment ${d.id} is ${d.status}, not awaiting approval`);
  if (await deps.orm.em.fork().count(Approval, { deploymentId: d.id, approver: caller.actor.sub })) {
    throw new ConflictError(`${caller.actor.sub} has already decided on deployment ${d.id}`);
  }
  // One update per request: with a shared id, parallel requests of one approver were all answered
  // with the first one's outcome (202 each, one decision recorded). Each request is a decision of
  // its own, which the run records or refuses.
  await deps.jobs.decide(d.jobId, `decision-${d.id}-${randomUUID()}`, {
    approver: caller.actor.sub,
    roles: caller.actor.roles,
    decision: body.decision,
    comment: body.comment ?? null,
    correlationId: caller.correlationId,
  });
  return getDeployment(deps, d.id);
}

/** Cancels a deployment: its run records `cancelled` and releases the lock; one with no run is ended here. */
export async function cancelDeployment(
  deps: ServiceDeps,
  caller: Caller,
  id: number,
  reason: string | undefined,
): Promise<DeploymentView> {
  const { deployment: d } = await getDeployment(deps, id);
  const facts = { action: 'deployment.cancel', targetType: 'deployment', targetId: d.id, team: d.team };
  if (!canCancel(caller.actor, d.team, d.requestedBy)) {
    await deny(
      deps.orm,
      caller,
      facts,
      `only PLATFORM_ADMIN, a TEAM_ADMIN of team '${d.team ?? '(none)'}' or the requester may cancel this deployment`,
    );
  }
  if (isTerminal(d.status)) throw new ConflictError(`deployment ${d.id} already ended as ${d.status}`);
  // No run exists (its start failed, or Temporal lost it): end the deployment here.
  if ((await deps.jobs.cancel(d.jobId)) === 'no-run')
    await endUnstarted(
      deps,
      caller,
      d.id,
      ACTIVE_DEPLOYMENT_STATUSES,
      'cancelled',
      'cancelled before its workflow ran',
    );
  await recordAlone(deps.orm, caller, {
    ...facts,
    outcome: 'success',
    details: { job_id: d.jobId, ...(reason ? { reason } : {}) },
  });
  return getDeployment(deps, d.id);
}
