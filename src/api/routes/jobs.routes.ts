import type Router from '@koa/router';
import { z } from 'zod';
import { Deployment, Environment } from '../../domain/entities';
import { NotFoundError, ServiceUnavailableError } from '../../domain/errors';
import { isTerminal } from '../../domain/types';
import { isUnavailable } from '../errors';
import { route } from '../route';
import { temporalUiUrl } from '../serializers';
import type { AppDeps, AppState } from '../types';

type JobStatus = 'running' | 'completed' | 'failed' | 'cancelled' | 'terminated' | 'timed_out';

/** What the row says the run's status was, for runs Temporal has forgotten (after retention). */
function statusFromRow(row: { status: string }): JobStatus {
  switch (row.status) {
    case 'succeeded':
    case 'ready':
      return 'completed';
    case 'cancelled':
      return 'cancelled';
    case 'pending':
    case 'awaiting_approval':
    case 'in_progress':
    case 'provisioning':
      return 'running';
    default:
      return 'failed';
  }
}

/** Jobs: the Temporal runs behind provisioning and deployments, joined with their rows. */
export function registerJobRoutes(router: Router<AppState>, deps: AppDeps): void {
  route(
    router,
    {
      method: 'get',
      path: '/jobs/:job_id',
      tag: 'jobs',
      summary: 'Status of a provisioning or deployment job (its Temporal run)',
      params: z.strictObject({ job_id: z.string().regex(/^[a-z0-9-]{1,255}$/, 'a job id such as deploy-payments-prod-42') }),
      responses: { 200: 'the job', 404: 'no such job', 503: 'Temporal unavailable' },
    },
    async (ctx, { params }) => {
      const em = deps.orm.em.fork();
      const deployment = await em.findOne(Deployment, { jobId: params.job_id });
      const environment = deployment ? null : await em.findOne(Environment, { jobId: params.job_id });
      const row = deployment ?? environment;
      if (!row) throw new NotFoundError(`job ${params.job_id} does not exist`);
      let status = statusFromRow(row);
      let startedAt: Date | null = row.createdAt;
      let closedAt: Date | null = deployment ? deployment.finishedAt : environment!.status === 'provisioning' ? null : environment!.updatedAt;
      let fromTemporal = false;
      try {
        const description = await deps.temporal.workflow.getHandle(params.job_id).describe();
        status = description.status.name.toLowerCase() as JobStatus;
        startedAt = description.startTime;
        closedAt = description.closeTime ?? null;
        fromTemporal = true;
      } catch (err) {
        const name = (err as Error).name;
        if (name !== 'WorkflowNotFoundError') {
          if (isUnavailable(err)) throw new ServiceUnavailableError('Temporal is unavailable; the job row says ' + row.status);
          throw err;
        }
        // Temporal forgot the run (retention) or never started it: the row is the record.
        if (deployment && !isTerminal(deployment.status)) status = 'running';
      }
      ctx.body = {
        job_id: params.job_id,
        kind: deployment ? 'deployment' : 'provisioning',
        status,
        resource: deployment ? { type: 'deployment', id: deployment.id } : { type: 'environment', id: environment!.id },
        resource_status: row.status,
        temporal_ui_url: temporalUiUrl(deps.config, params.job_id),
        started_at: startedAt?.toISOString() ?? null,
        closed_at: closedAt?.toISOString() ?? null,
        error: row.error,
        source: fromTemporal ? 'temporal' : 'database',
      };
    },
  );
}
