/** Jobs: the Temporal runs behind provisioning and deployments, joined with their rows. */
import { Deployment, Environment, JobOutput } from '../domain/entities';
import { NotFoundError } from '../domain/errors';
import { ACTIVE_DEPLOYMENT_STATUSES } from '../domain/lifecycle';
import type { ServiceDeps } from './service-deps';

/** Temporal's status of a run, lower-case. */
export type JobStatus = 'running' | 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed_out';

/** A job as the API shows it (before serialization). */
export interface JobView {
  jobId: string;
  kind: 'deployment' | 'provisioning';
  status: JobStatus;
  resource: { type: 'deployment' | 'environment'; id: number };
  resourceStatus: string;
  startedAt: Date | null;
  closedAt: Date | null;
  error: string | null;
  source: 'temporal' | 'database';
}

/** What the row says the run's status was, for runs Temporal has forgotten (after retention) or never started. */
function statusFromRow(row: { status: string }): JobStatus {
  if (row.status === 'succeeded' || row.status === 'ready') return 'completed';
  if (row.status === 'cancelled') return 'cancelled';
  if (row.status === 'provisioning' || (ACTIVE_DEPLOYMENT_STATUSES as readonly string[]).includes(row.status))
    return 'running';
  return 'failed';
}

/** A job by its id: Temporal's view of the run when it has one, else the row's. */
export async function getJob(deps: ServiceDeps, jobId: string): Promise<JobView> {
  const em = deps.orm.em.fork();
  const deployment = await em.findOne(Deployment, { jobId });
  const environment = deployment ? null : await em.findOne(Environment, { jobId });
  const row = deployment ?? environment;
  if (!row) throw new NotFoundError(`job ${jobId} does not exist`);
  const description = await deps.jobs.describe(jobId);
  const fromRow = {
    status: statusFromRow(row),
    startedAt: row.createdAt,
    closedAt: deployment
      ? deployment.finishedAt
      : environment!.status === 'provisioning'
        ? null
        : environment!.updatedAt,
  };
  return {
    jobId,
    kind: deployment ? 'deployment' : 'provisioning',
    ...(description
      ? {
          status: description.status.name.toLowerCase() as JobStatus,
          startedAt: description.startTime,
          closedAt: description.closeTime ?? null,
        }
      : fromRow),
    resource: deployment
      ? { type: 'deployment', id: deployment.id }
      : { type: 'environment', id: environment!.id },
    resourceStatus: row.status,
    error: row.error,
    source: description ? 'temporal' : 'database',
  };
}

/** The kept output of a job's command (empty when it has none); 404 for no such job. */
export async function getJobOutput(deps: ServiceDeps, jobId: string): Promise<string> {
  const em = deps.orm.em.fork();
  const known = (await em.count(Deployment, { jobId })) + (await em.count(Environment, { jobId }));
  if (known === 0) throw new NotFoundError(`job ${jobId} does not exist`);
  return (await em.findOne(JobOutput, { jobId }))?.content ?? '';
}
