import type Router from '@koa/router';
import { z } from 'zod';
import { getJob } from '../../services/jobs.service';
import { route } from '../route';
import { temporalUiUrl } from '../serializers';
import type { ApiDeps, AppState } from '../types';

/** Jobs: the Temporal runs behind provisioning and deployments, joined with their rows. */
export function registerJobRoutes(router: Router<AppState>, deps: ApiDeps): void {
  route(
    router,
    deps,
    {
      method: 'get',
      path: '/jobs/:job_id',
      tag: 'jobs',
      summary: 'Status of a provisioning or deployment job (its Temporal run)',
      params: z.strictObject({
        job_id: z.string().regex(/^[a-z0-9-]{1,255}$/, 'a job id such as deploy-payments-prod-42'),
      }),
      responses: { 200: 'the job', 404: 'no such job', 503: 'Temporal unavailable' },
    },
    async (ctx, { params }) => {
      const job = await getJob(deps, params.job_id);
      ctx.body = {
        job_id: job.jobId,
        kind: job.kind,
        status: job.status,
        resource: job.resource,
        resource_status: job.resourceStatus,
        temporal_ui_url: temporalUiUrl(deps.config, job.jobId),
        started_at: job.startedAt?.toISOString() ?? null,
        closed_at: job.closedAt?.toISOString() ?? null,
        error: job.error,
        source: job.source,
      };
    },
  );
}
