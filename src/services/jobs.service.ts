/** Jobs: the Temporal runs behind provisioning and deployments, joined with their rows. */
import { Deployment, Environment, JobOutput, Release } from '../domain/entities';
import { NotFoundError } from '../domain/errors';
import { ACTIVE_DEPLOYMENT_STATUSES } from '../domain/lifecycle';
import type { ServiceDeps } from './service-deps';

/** Temporal's status of a run, lower-case. */
export type JobStatus = 'running' | 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed_out';

/** A job as the API shows it (before serialization). */
export interface JobView {
  jobId: string;
  kind: 'deployment' | 'provisioning' | 'release';
  status: JobStatus;
  resource: { type: 'deployment' | 'environment' | 'release'; id: number };
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
  if (
    row.status === 'provisioning' ||
    row.status === 'in_progress' ||
    (ACTIVE_DEPLOYMENT_STATUSES as readonly string[]).includes(row.status)
  )
    return 'running';
  return 'failed';
}

/** The row behind a job id: a deployment, an environment (provisioning) or a release. */
async function jobRow(deps: ServiceDeps, jobId: string) {
  const em = deps.orm.em.fork();
  const deployment = await em.findOne(Deployment, { jobId });
  if (deployment)
    return {
      kind: 'deployment' as const,
      type: 'deployment' as const,
      row: deployment,
      closedAt: deployment.finishedAt,
    };
  const environment = await em.findOne(Environment, { jobId });
  if (environment)
    return {
      kind: 'provisioning' as const,
      type: 'environment' as const,
      row: environment,
      closedAt: environment.status === 'provisioning' ? null : environment.updatedAt,
    };
  const release = await em.findOne(Release, { jobId });
  if (release)
    return { kind: 'release' as const, type: 'release' as const, row: release, closedAt: release.finishedAt };
  throw new NotFoundError(`job ${jobId} does not exist`);
}

/** A job by its id: Temporal's view of the run when it has one, else the row's. */
export async function getJob(deps: ServiceDeps, jobId: string): Promise<JobView> {
  const { kind, type, row, closedAt } = await jobRow(deps, jobId);
  const description = await deps.jobs.describe(jobId);
  const fromRow = { status: statusFromRow(row), startedAt: row.createdAt, closedAt };
  return {
    jobId,
    kind,
    ...(description
      ? {
          status: description.status.name.toLowerCase() as JobStatus,
          startedAt: description.startTime,
          closedAt: description.closeTime ?? null,
        }
      : fromRow),
    resource: { type, id: row.id },
    resourceStatus: row.status,
    error: row.error,
    source: description ? 'temporal' : 'database',
  };
}

/** The kept output of a job's command (empty when it has none); 404 for no such job. */
export async function getJobOutput(deps: ServiceDeps, jobId: string): Promise<string> {
  await jobRow(deps, jobId);
  return (await deps.orm.em.fork().findOne(JobOutput, { jobId }))?.content ?? '';
}
