import type Router from '@koa/router';
import { z } from 'zod';
import {
  cancelRelease,
  createRelease,
  getRelease,
  listReleases,
  type ReleaseView,
} from '../../services/releases.service';
import { rollbackEnvironment } from '../../services/rollbacks.service';
import { decodeCursor, pageQuery, toPage } from '../pagination';
import { parseWith, route, type Ctx } from '../route';
import { idParam, idempotencyKey, releaseCreate, rollbackCreate } from '../schemas';
import { deploymentJson, releaseJson } from '../../views/resources';
import type { ApiDeps, AppState } from '../types';

/** The request's `Idempotency-Key` header, validated, or null when it sends none. */
function keyOf(ctx: Ctx): string | null {
  const header = ctx.get('idempotency-key');
  return header === '' ? null : parseWith(idempotencyKey, header, 'header.Idempotency-Key');
}

/** Releases (one version through the tiers in one run) and rollbacks of an environment. */
export function registerReleaseRoutes(router: Router<AppState>, deps: ApiDeps): void {
  const json = (v: ReleaseView) => releaseJson(v.release, v.statuses, deps.config);
  route(
    router,
    deps,
    {
      method: 'post',
      path: '/services/:id/releases',
      tag: 'releases',
      summary:
        'Release a version through the tiers of the promotion order up to `through`, in one run (202). An Idempotency-Key header makes retries return the same release (200).',
      params: z.strictObject({ id: idParam }),
      body: releaseCreate,
      responses: {
        200: 'a replay of the same Idempotency-Key',
        202: 'the release, pending, with its job_id',
        400: 'invalid body, restricted config key, `through` outside the order, or a tier without environment',
        403: 'not allowed for this team (or freeze_override by anyone but PLATFORM_ADMIN)',
        404: 'no such service',
        409: 'a deploy freeze holds a stage tier, or the key was used for another request',
        503: 'Temporal unavailable',
      },
    },
    async (ctx, { params, body, caller }) => {
      const { view, replayed } = await createRelease(deps, caller, params.id, body, keyOf(ctx));
      ctx.status = replayed ? 200 : 202;
      if (!replayed) ctx.set('Location', `/api/releases/${view.release.id}`);
      ctx.body = json(view);
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/services/:id/releases',
      tag: 'releases',
      summary: "A service's releases, newest first",
      params: z.strictObject({ id: idParam }),
      query: z.strictObject(pageQuery),
      responses: { 200: 'a page of releases', 404: 'no such service' },
    },
    async (ctx, { params, query }) => {
      const rows = await listReleases(deps, params.id, {
        limit: query.limit,
        before: decodeCursor(query.cursor),
      });
      ctx.body = toPage(
        rows.map((v) => ({ ...v, id: v.release.id })),
        query.limit,
        json,
      );
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/releases/:id',
      tag: 'releases',
      summary: 'Read a release: its stages and their deployments',
      params: z.strictObject({ id: idParam }),
      responses: { 200: 'the release', 404: 'no such release' },
    },
    async (ctx, { params }) => {
      ctx.body = json(await getRelease(deps, params.id));
    },
  );

  route(
    router,
    deps,
    {
      method: 'post',
      path: '/releases/:id/cancel',
      tag: 'releases',
      summary: "Cancel a release: the running stage's deployments are cancelled, later stages never start",
      params: z.strictObject({ id: idParam }),
      responses: {
        202: 'cancellation requested',
        403: 'not allowed',
        404: 'no such release',
        409: 'already ended',
        503: 'Temporal unavailable',
      },
    },
    async (ctx, { params, caller }) => {
      ctx.status = 202;
      ctx.body = json(await cancelRelease(deps, caller, params.id));
    },
  );

  route(
    router,
    deps,
    {
      method: 'post',
      path: '/services/:id/environments/:envId/rollback',
      tag: 'deployments',
      summary:
        'Roll an environment back to `to_version`, or to the version that succeeded before its current deployment (202)',
      params: z.strictObject({ id: idParam, envId: idParam }),
      body: rollbackCreate,
      responses: {
        202: 'the rollback deployment (kind rollback, rollback_of the current one)',
        400: 'to_version never succeeded in this environment',
        403: 'not allowed for this team',
        404: 'no such service or environment',
        409: 'nothing to roll back to, the environment is locked or not ready, or a deploy freeze holds the tier',
        503: 'Temporal unavailable',
      },
    },
    async (ctx, { params, body, caller }) => {
      const v = await rollbackEnvironment(
        deps,
        caller,
        { serviceId: params.id, environmentId: params.envId },
        body ?? {},
      );
      ctx.status = 202;
      ctx.set('Location', `/api/deployments/${v.deployment.id}`);
      ctx.body = deploymentJson(v.deployment, v.approvals, deps.config);
    },
  );
}
