import { ApplicationFailure } from '@temporalio/activity';
import { Approval } from '../domain/entities';
import { decisionEntry } from '../domain/lifecycle';
import { approvalWait } from '../metrics';
import { FAILURE_TYPES, type DecisionInput, type DeploymentState } from '../workflows/contract';
import { approversOf, lockDeployment, move, stateOf } from './deployment.activities';
import type { ActivityDeps } from './activity-deps';
import { record, runInfo } from './run-context';

const refusal = (message: string): ApplicationFailure =>
  ApplicationFailure.nonRetryable(message, FAILURE_TYPES.decisionRefused);

/** The activity that records approvers' decisions. */
export function decisionActivities({ orm, logger }: Pick<ActivityDeps, 'orm' | 'logger'>) {
  return {
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
          throw refusal(`${decision.approver} has already decided (${existing.decision})`);
        }
        if (d.status !== 'awaiting_approval')
          throw refusal(`deployment is ${d.status}, not awaiting approval`);
        const at = new Date();
        em.create(Approval, {
          deploymentId,
          approver: decision.approver,
          decision: decision.decision,
          comment: decision.comment,
          at,
        });
        record(em, { ...decisionEntry(d, decision, runInfo()), at });
        await em.flush();
        const approvals = await em.find(Approval, { deploymentId }, { orderBy: { id: 'asc' } });
        const approvedBy = approvals.filter((a) => a.decision === 'approve').map((a) => a.approver);
        const waitingSince = [...d.timeline].reverse().find((t) => t.status === 'awaiting_approval')?.at;
        const waited = waitingSince ? (at.getTime() - Date.parse(waitingSince)) / 1000 : 0;
        const by = {
          actor: decision.approver,
          actorRoles: decision.roles,
          correlationId: decision.correlationId,
          context: runInfo(),
          at,
        };
        if (decision.decision === 'reject') {
          const detail = `rejected by ${decision.approver}${decision.comment ? `: ${decision.comment}` : ''}`;
          move(em, logger, d, ['awaiting_approval'], 'rejected', { ...by, detail, error: detail });
          approvalWait.observe({ outcome: 'rejected' }, waited);
        } else if (approvedBy.length >= d.approvalsRequired) {
          move(em, logger, d, ['awaiting_approval'], 'in_progress', {
            ...by,
            detail: `approved by ${approvedBy.join(', ')}`,
          });
          approvalWait.observe({ outcome: 'approved' }, waited);
        }
        return stateOf(
          d,
          approvals.map((a) => a.approver),
        );
      });
    },
  };
}
