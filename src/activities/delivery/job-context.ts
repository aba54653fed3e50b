/** A job as its target sees it: the rows behind it, and the document a target receives. */
import { ApplicationFailure } from '@temporalio/activity';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Deployment, Environment, Service, Target, Team } from '../../domain/entities';
import { jobEventType, type JobDocument, type TargetAction } from '../../domain/targets';
import type { JobRef } from '../../workflows/contract';

/** The rows of one job: its target, service (and team), environment and, for a deployment, the deployment. */
export interface JobContext {
  jobId: string;
  target: Target;
  service: Service;
  team: string | null;
  environment: Environment;
  deployment: Deployment | null;
}

/** Loads a job's rows; a target that no longer exists fails the job (non-retryable). */
export async function loadJob(em: EntityManager, ref: JobRef): Promise<JobContext> {
  const deployment = ref.type === 'deployment' ? await em.findOneOrFail(Deployment, ref.id) : null;
  const environment = await em.findOneOrFail(Environment, deployment ? deployment.environmentId : ref.id);
  const service = await em.findOneOrFail(Service, environment.serviceId);
  const team = service.teamId === null ? null : ((await em.findOne(Team, service.teamId))?.name ?? null);
  const targetName = deployment ? deployment.target : environment.target;
  const target = await em.findOne(Target, { name: targetName });
  if (!target)
    throw ApplicationFailure.nonRetryable(`target '${targetName}' does not exist`, 'TargetMissing');
  return {
    jobId: deployment ? deployment.jobId : environment.jobId,
    target,
    service,
    team: deployment ? deployment.team : team,
    environment,
    deployment,
  };
}

/** The job document for `action` (a webhook's body without `callback_url` and `attempt`; a command's stdin). */
export function jobDocument(job: JobContext, action: TargetAction): JobDocument {
  const { service, environment: env, deployment: d } = job;
  return {
    type: jobEventType(action),
    job_id: job.jobId,
    service: { id: service.id, name: service.name, team: job.team },
    environment: { id: env.id, name: env.name, tier: env.tier, config: env.config },
    ...(d
      ? {
          deployment: {
            id: d.id,
            version: d.version,
            config: d.config,
            kind: d.kind,
            requested_by: d.requestedBy,
            initiated_by: d.initiatedBy,
          },
        }
      : {}),
  };
}
