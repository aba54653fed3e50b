import type Router from '@koa/router';
import { z } from 'zod';
import { callbackBody } from '../../domain/targets';
import { receiveCallback } from '../../services/callbacks.service';
import { getJob, getJobOutput } from '../../services/jobs.service';
import { route } from '../route';
import { temporalUiUrl } from '../../views/resources';
import type { ApiDeps, AppState } from '../types';

const jobIdParam = z.strictObject({
  job_id: z.string().regex(/^[a-z0-9-]{1,255}$/, 'a job id such as deploy-payments-prod-42'),
});

/** Jobs: the Temporal runs behind provisioning and deployments, joined with their rows. */
export function registerJobRoutes(router: Router<AppState>, deps: ApiDeps): void {
  registerTargetSideRoutes(router, deps);
  route(
    router,
    deps,
    {
      method: 'get',
      path: '/jobs/:job_id',
      tag: 'jobs',
      summary: 'Status of a provisioning or deployment job (its Temporal run)',
      params: jobIdParam,
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

/** What a job's target sends back (its callback) and leaves behind (a command's output). */
function registerTargetSideRoutes(router: Router<AppState>, deps: ApiDeps): void {
  route(
    router,
    deps,
    {
      method: 'post',
      path: '/jobs/:job_id/callback',
      tag: 'jobs',
      summary:
        "A target reports on a job: no token, signed (Standard Webhooks) with the job's target secret; the same webhook-id is applied once",
      auth: false,
      rawBody: true,
      params: jobIdParam,
      body: callbackBody,
      responses: {
        202: 'accepted (or a webhook-id already taken)',
        400: 'invalid body',
        401: 'missing or wrong signature, or a timestamp more than 5 minutes away',
        404: 'no such job',
        409: 'the job is not waiting for its target (finished or cancelled)',
        503: 'Temporal unavailable: send it again',
      },
    },
    async (ctx, { params, readRaw }) => {
      const answer = await receiveCallback(
        deps,
        params.job_id,
        {
          'webhook-id': ctx.get('webhook-id') || undefined,
          'webhook-timestamp': ctx.get('webhook-timestamp') || undefined,
          'webhook-signature': ctx.get('webhook-signature') || undefined,
        },
        readRaw,
      );
      ctx.status = 202;
      ctx.body = { job_id: params.job_id, accepted: true, duplicate: answer === 'duplicate' };
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/jobs/:job_id/logs',
      tag: 'jobs',
      summary:
        "A command target's output for the job (stdout and stderr, the last 256 KiB), growing while it runs",
      params: jobIdParam,
      responses: { 200: 'text/plain', 404: 'no such job' },
    },
    async (ctx, { params }) => {
      const text = await getJobOutput(deps, params.job_id);
      ctx.type = 'text/plain; charset=utf-8';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = text;
    },
  );
}
