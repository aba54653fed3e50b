/**
 * The one module that talks to Temporal about jobs: starting a job's run, sending a decision,
 * cancelling and describing a run. Temporal client errors are translated here, once, into domain
 * errors (409 for a refused update, 503 for an unreachable server or worker).
 */
import {
  WorkflowExecutionAlreadyStartedError,
  type Client,
  type WorkflowExecutionDescription,
} from '@temporalio/client';
import type { TypedSearchAttributes } from '@temporalio/common';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { ConflictError, ServiceUnavailableError } from '../domain/errors';
import { workflowStartFailures } from '../metrics';
import { isUnavailable } from '../unavailable';
import {
  FAILURE_TYPES,
  WORKFLOW_TYPES,
  decideUpdate,
  jobSearchAttributes,
  targetReportSignal,
  type DecisionInput,
  type TargetReport,
  type DeployInput,
  type ProvisionInput,
  type NotifyInput,
  type ReleaseInput,
  notificationsQueue,
} from '../workflows/contract';

/** What a job's run is started with. */
export type JobStart =
  | { kind: 'provisioning'; input: ProvisionInput; summary: string }
  | { kind: 'deployment'; input: DeployInput; summary: string }
  | { kind: 'release'; input: ReleaseInput; summary: string }
  | { kind: 'notification'; input: NotifyInput; summary: string };

/** Jobs as Temporal runs them. */
export interface TemporalJobs {
  /**
   * Starts the run behind a job. The workflow ID is the job id and a running run with that ID is
   * reused, so a retried start never makes a second run. Throws 503 when Temporal cannot be reached.
   */
  start(jobId: string, start: JobStart, correlationId: string): Promise<void>;
  /** Sends a decision to a deployment's run: 409 when the run refuses it, 503 when it cannot be delivered. */
  decide(jobId: string, updateId: string, decision: DecisionInput): Promise<void>;
  /** Hands a target's report to a job's run; `'no-run'` when the run has ended or never existed. */
  report(jobId: string, report: TargetReport): Promise<'delivered' | 'no-run'>;
  /** Asks a run to cancel; `'no-run'` when Temporal has no run of that id. */
  cancel(jobId: string): Promise<'requested' | 'no-run'>;
  /** The run's description, or null when Temporal has none (never started, or past retention). */
  describe(jobId: string): Promise<WorkflowExecutionDescription | null>;
}

const named = (err: unknown, name: string): boolean => (err as Error | undefined)?.name === name;

/** Temporal's errors as domain errors; anything unexpected is rethrown as it is (a 500). */
function translate(err: unknown, unavailable: string): never {
  if (named(err, 'WorkflowUpdateFailedError')) {
    // Only the run's own refusals carry words for the caller; anything else the update failed with
    // (a cancelled scope, a database step out of retries) is said in ours.
    const cause = (err as { cause?: { type?: string; name?: string; message?: string } }).cause;
    if (cause?.type === FAILURE_TYPES.decisionRefused && cause.message)
      throw new ConflictError(cause.message);
    if (cause?.name === 'CancelledFailure') throw new ConflictError('the deployment is being cancelled');
    throw new ServiceUnavailableError(unavailable);
  }
  if (named(err, 'WorkflowUpdateRPCTimeoutOrCancelledError') || isUnavailable(err))
    throw new ServiceUnavailableError(unavailable);
  throw err;
}

/** The platform's jobs on `temporal`, on the task queue of `config`; failed starts are logged to `logger`. */
export function temporalJobs(temporal: Client, config: Config, logger: Logger): TemporalJobs {
  return {
    async start(jobId, start, correlationId) {
      const i = start.input;
      const status =
        start.kind === 'provisioning'
          ? 'provisioning'
          : start.kind === 'notification'
            ? 'running'
            : 'pending';
      const attributes = jobSearchAttributes(start.kind, i, status);
      const requestedBy = 'requestedBy' in i ? i.requestedBy : 'system';
      const common = {
        taskQueue:
          start.kind === 'notification'
            ? notificationsQueue(config.TEMPORAL_TASK_QUEUE)
            : config.TEMPORAL_TASK_QUEUE,
        workflowId: jobId,
        workflowIdConflictPolicy: 'USE_EXISTING' as const,
        workflowIdReusePolicy: 'REJECT_DUPLICATE' as const,
        typedSearchAttributes: attributes as unknown as TypedSearchAttributes,
        memo: { requested_by: requestedBy, correlation_id: correlationId },
        staticSummary: start.summary,
        staticDetails: `requested by ${requestedBy} · correlation id ${correlationId}`,
      };
      try {
        if (start.kind === 'deployment')
          await temporal.workflow.start(WORKFLOW_TYPES.deploy, { ...common, args: [start.input] });
        else if (start.kind === 'release')
          await temporal.workflow.start(WORKFLOW_TYPES.release, { ...common, args: [start.input] });
        else if (start.kind === 'notification')
          await temporal.workflow.start(WORKFLOW_TYPES.notify, { ...common, args: [start.input] });
        else await temporal.workflow.start(WORKFLOW_TYPES.provision, { ...common, args: [start.input] });
      } catch (err) {
        // A closed run with this ID means the job was started before: nothing to do.
        if (
          err instanceof WorkflowExecutionAlreadyStartedError ||
          named(err, 'WorkflowExecutionAlreadyStartedError')
        )
          return;
        workflowStartFailures.inc({ kind: start.kind });
        logger.warn({ err, job_id: jobId, correlation_id: correlationId }, 'workflow start failed');
        throw new ServiceUnavailableError(
          `the ${start.kind} job ${jobId} could not be started: Temporal is unavailable; retry later`,
        );
      }
    },

    async decide(jobId, updateId, decision) {
      try {
        await temporal.connection.withDeadline(Date.now() + 20_000, () =>
          temporal.workflow.getHandle(jobId).executeUpdate(decideUpdate, { args: [decision], updateId }),
        );
      } catch (err) {
        if (named(err, 'WorkflowNotFoundError'))
          throw new ConflictError(`job ${jobId} is no longer waiting for decisions`);
        translate(
          err,
          'the decision could not be delivered or recorded (Temporal, the worker or the database is unavailable); ' +
            'read the deployment to see whether it was recorded, or resend it with the same Idempotency-Key',
        );
      }
    },

    async report(jobId, report) {
      try {
        await temporal.workflow.getHandle(jobId).signal(targetReportSignal, report);
        return 'delivered';
      } catch (err) {
        if (named(err, 'WorkflowNotFoundError')) return 'no-run';
        translate(
          err,
          'Temporal is unavailable; send the callback again (the same webhook-id is applied once)',
        );
      }
    },

    async cancel(jobId) {
      try {
        await temporal.workflow.getHandle(jobId).cancel();
        return 'requested';
      } catch (err) {
        if (named(err, 'WorkflowNotFoundError')) return 'no-run';
        translate(err, 'Temporal is unavailable; retry the cancellation');
      }
    },

    async describe(jobId) {
      try {
        return await temporal.workflow.getHandle(jobId).describe();
      } catch (err) {
        if (named(err, 'WorkflowNotFoundError')) return null;
        translate(err, `Temporal is unavailable; job ${jobId} cannot be described now`);
      }
    },
  };
}
