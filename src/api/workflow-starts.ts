import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import type { TypedSearchAttributes } from '@temporalio/common';
import { ServiceUnavailableError } from '../domain/errors';
import { workflowStartFailures } from '../metrics';
import { SEARCH_ATTRIBUTES, WORKFLOW_TYPES, type DeployInput, type ProvisionInput } from '../workflows/contract';
import type { Ctx } from './route';
import type { AppDeps } from './types';

type Start =
  | { kind: 'provisioning'; input: ProvisionInput; summary: string }
  | { kind: 'deployment'; input: DeployInput; summary: string };

/**
 * Starts the run behind a job. The workflow ID is the job id and a running run with that ID is
 * reused, so a retried start never makes a second run. Throws 503 when Temporal cannot be reached.
 */
export async function startJob(deps: AppDeps, ctx: Ctx, jobId: string, start: Start): Promise<void> {
  const i = start.input;
  const attributes = [
    { key: SEARCH_ATTRIBUTES.kind, value: start.kind },
    { key: SEARCH_ATTRIBUTES.service, value: i.service },
    { key: SEARCH_ATTRIBUTES.environment, value: i.environment },
    { key: SEARCH_ATTRIBUTES.tier, value: i.tier },
    { key: SEARCH_ATTRIBUTES.status, value: start.kind === 'deployment' ? 'pending' : 'provisioning' },
    ...(i.team ? [{ key: SEARCH_ATTRIBUTES.team, value: i.team }] : []),
    ...('version' in i ? [{ key: SEARCH_ATTRIBUTES.version, value: i.version }] : []),
  ];
  const common = {
    taskQueue: deps.config.TEMPORAL_TASK_QUEUE,
    workflowId: jobId,
    workflowIdConflictPolicy: 'USE_EXISTING' as const,
    workflowIdReusePolicy: 'REJECT_DUPLICATE' as const,
    typedSearchAttributes: attributes as unknown as TypedSearchAttributes,
    memo: { requested_by: i.requestedBy, correlation_id: ctx.state.correlationId },
    staticSummary: start.summary,
    staticDetails: `requested by ${i.requestedBy} · correlation id ${ctx.state.correlationId}`,
  };
  try {
    if (start.kind === 'deployment') {
      await deps.temporal.workflow.start(WORKFLOW_TYPES.deploy, { ...common, args: [start.input] });
    } else {
      await deps.temporal.workflow.start(WORKFLOW_TYPES.provision, { ...common, args: [start.input] });
    }
  } catch (err) {
    // A closed run with this ID means the job was started before: nothing to do.
    if (err instanceof WorkflowExecutionAlreadyStartedError || (err as Error).name === 'WorkflowExecutionAlreadyStartedError') return;
    workflowStartFailures.inc({ kind: start.kind });
    ctx.state.log.warn({ err, job_id: jobId }, 'workflow start failed');
    throw new ServiceUnavailableError(`the ${start.kind} job ${jobId} could not be started: Temporal is unavailable; retry later`);
  }
}
