/** What happens to a deployment once triggered: an approver's decision, a cancellation. */
import { randomUUID } from 'node:crypto';
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
 * (409); answers the deployment as it stands after the decision. With an `Idempotency-Key` the
 * request may be sent again after a lost answer: the same key and decision by the same approver is
 * answered as the first was (202, nothing new recorded); without one, each request is a decision
 * of its own.
 */
export async function decide(
  deps: ServiceDeps,
  caller: Caller,
  id: number,
  body: DecisionRequest,
  key: string | null = null,
): Promise<DeploymentView> {
  const view = await getDeployment(deps, id);
  const d = view.deployment;
  // Refusals of a decision are audited as `deployment.decide` wherever they happen (the route
  // layer refuses by role before it knows the decision); recorded ones as approve/reject.
  const facts = {
    action: 'deployment.decide',
    targetType: 'deployment',
    targetId: d.id,
    team: d.team,
    details: { decision: body.decision },
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
  const mine = view.approvals.find((a) => a.approver === caller.actor.sub);
  if (mine && key !== null && mine.decision === body.decision) return view;
  if (mine) throw new ConflictError(`${caller.actor.sub} has already decided on deployment ${d.id}`);
  if (d.status !== 'awaiting_approval')
    throw new ConflictError(`deployment ${d.id} is ${d.status}, not awaiting approval`);
  // One update per request unless the caller names it: with a shared id, parallel requests of one
  // approver were all answered with the first one's outcome (202 each, one decision recorded).
  const updateId =
    key === null ? `decision-${d.id}-${randomUUID()}` : `decision-${d.id}-${caller.actor.sub}-${key}`;
  await deps.jobs.decide(d.jobId, updateId, {
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
