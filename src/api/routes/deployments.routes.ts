import type Router from '@koa/router';
import { z } from 'zod';
import { cancelDeployment, decide } from '../../services/deployment-actions.service';
import { deploymentHistory, getDeployment, type DeploymentView } from '../../services/deployment-records';
import { triggerDeployment } from '../../services/deployments.service';
import { parseWith, route, type Ctx } from '../route';
import { cancelBody, decisionCreate, deploymentCreate, idParam, idempotencyKey } from '../schemas';
import { deploymentJson } from '../../views/resources';
import { decodeCursor, pageQuery, toPage } from '../pagination';
import type { ApiDeps, AppState } from '../types';

/** The request's `Idempotency-Key` header, validated, or null when it sends none. */
function idempotencyKeyOf(ctx: Ctx): string | null {
  const header = ctx.get('idempotency-key');
  return header === '' ? null : parseWith(idempotencyKey, header, 'header.Idempotency-Key');
}

/** Deployments: trigger and history per environment, then each deployment's own routes. */
export function registerDeploymentRoutes(router: Router<AppState>, deps: ApiDeps): void {
  const json = (v: DeploymentView) => deploymentJson(v.deployment, v.approvals, deps.config);
  registerDeploymentActionRoutes(router, deps, json);

  route(
    router,
    deps,
    {
      method: 'post',
      path: '/services/:id/environments/:envId/deployments',
      tag: 'deployments',
      summary:
        'Trigger a deployment (202). An Idempotency-Key header makes retries return the same deployment (200).',
      params: z.strictObject({ id: idParam, envId: idParam }),
      body: deploymentCreate,
      responses: {
        200: 'a replay of the same Idempotency-Key: the same deployment and job_id',
        202: 'the deployment, pending, with its job_id',
        400: 'invalid body, restricted config key or promotion order',
        403: 'not allowed for this team',
        404: 'no such service or environment',
        409: 'environment not ready, an active deployment holds the environment, or the key was used for another request',
        503: 'Temporal unavailable',
      },
    },
    async (ctx, { params, body, caller }) => {
      const key = idempotencyKeyOf(ctx);
      const result = await triggerDeployment(
        deps,
        caller,
        { serviceId: params.id, environmentId: params.envId },
        body,
        key,
      );
      ctx.status = result.replayed ? 200 : 202;
      if (!result.replayed) ctx.set('Location', `/api/deployments/${result.deployment.id}`);
      ctx.body = json(result);
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/services/:id/environments/:envId/deployments',
      tag: 'deployments',
      summary: "An environment's deployment history, newest first",
      params: z.strictObject({ id: idParam, envId: idParam }),
      query: z.strictObject(pageQuery),
      responses: { 200: 'a page of deployments', 404: 'no such service or environment' },
    },
    async (ctx, { params, query }) => {
      const rows = await deploymentHistory(deps, params.id, params.envId, {
        limit: query.limit,
        before: decodeCursor(query.cursor),
      });
      ctx.body = toPage(
        rows.map((v) => ({ ...v, id: v.deployment.id })),
        query.limit,
        json,
      );
    },
  );
}

/** A deployment's own routes: read it, decide on it, cancel it. */
function registerDeploymentActionRoutes(
  router: Router<AppState>,
  deps: ApiDeps,
  json: (v: DeploymentView) => ReturnType<typeof deploymentJson>,
): void {
  route(
    router,
    deps,
    {
      method: 'get',
      path: '/deployments/:id',
      tag: 'deployments',
      summary: 'Read a deployment with its approvals and timeline',
      params: z.strictObject({ id: idParam }),
      responses: { 200: 'the deployment', 404: 'no such deployment' },
    },
    async (ctx, { params }) => {
      ctx.body = json(await getDeployment(deps, params.id));
    },
  );

  route(
    router,
    deps,
    {
      method: 'post',
      path: '/deployments/:id/approvals',
      access: {
        roles: ['PLATFORM_ADMIN', 'TEAM_ADMIN'],
        action: 'deployment.decide',
        targetType: 'deployment',
      },
      tag: 'deployments',
      summary:
        'Approve or reject a deployment waiting for approval. An Idempotency-Key header makes a resent decision answer as the first (202).',
      params: z.strictObject({ id: idParam }),
      body: decisionCreate,
      responses: {
        202: 'the deployment after the decision',
        403: 'not an eligible approver (wrong role or team, or the requester)',
        404: 'no such deployment',
        409: 'not awaiting approval, or already decided by this approver',
        503: 'Temporal or the worker unavailable',
      },
    },
    async (ctx, { params, body, caller }) => {
      ctx.status = 202;
      ctx.body = json(await decide(deps, caller, params.id, body, idempotencyKeyOf(ctx)));
    },
  );

  route(
    router,
    deps,
    {
      method: 'post',
      path: '/deployments/:id/cancel',
      tag: 'deployments',
      summary: 'Cancel a deployment; its workflow records `cancelled` and releases the environment',
      params: z.strictObject({ id: idParam }),
      body: cancelBody,
      responses: {
        202: 'cancellation requested',
        403: 'not allowed',
        404: 'no such deployment',
        409: 'already finished',
        503: 'Temporal unavailable',
      },
    },
    async (ctx, { params, body, caller }) => {
      ctx.status = 202;
      ctx.body = json(await cancelDeployment(deps, caller, params.id, body?.reason));
    },
  );
}
