import type Router from '@koa/router';
import { z } from 'zod';
import { targetName } from '../../domain/targets';
import {
  createTarget,
  getTarget,
  listTargets,
  patchTarget,
  rotateSecret,
} from '../../services/targets.service';
import { decodeCursor, pageQuery, toPage } from '../pagination';
import { route } from '../route';
import { targetCreate, targetPatch } from '../schemas';
import { targetJson } from '../../views/resources';
import type { ApiDeps, AppState } from '../types';

const ADMIN = ['PLATFORM_ADMIN'] as const;
const nameParam = z.strictObject({ name: targetName });

/** Delivery targets: created and changed by platform admins, read by anyone authenticated. */
export function registerTargetRoutes(router: Router<AppState>, deps: ApiDeps): void {
  route(
    router,
    deps,
    {
      method: 'post',
      path: '/targets',
      access: { roles: ADMIN, action: 'target.create', targetType: 'target' },
      tag: 'targets',
      summary: 'Create a delivery target; the answer holds its signing secret, this once only',
      body: targetCreate,
      responses: {
        201: 'the target, with signing_secret',
        400: 'invalid body, config not of its kind, or a restricted config key',
        403: 'not PLATFORM_ADMIN',
        409: 'a target of that name exists',
      },
    },
    async (ctx, { body, caller }) => {
      const { target, secret } = await createTarget(deps, caller, body);
      ctx.status = 201;
      ctx.set('Location', `/api/targets/${target.name}`);
      ctx.body = { ...targetJson(target), signing_secret: secret };
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/targets',
      tag: 'targets',
      summary: 'List delivery targets (never their secrets)',
      query: z.strictObject(pageQuery),
      responses: { 200: 'a page of targets' },
    },
    async (ctx, { query }) => {
      const rows = await listTargets(deps, { limit: query.limit, after: decodeCursor(query.cursor) });
      ctx.body = toPage(rows, query.limit, targetJson);
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/targets/:name',
      tag: 'targets',
      summary: 'Read a delivery target (never its secret)',
      params: nameParam,
      responses: { 200: 'the target', 404: 'no such target' },
    },
    async (ctx, { params }) => {
      ctx.body = targetJson(await getTarget(deps, params.name));
    },
  );

  registerTargetChangeRoutes(router, deps);
}

/** Changes of a target: its config and description, its secret. */
function registerTargetChangeRoutes(router: Router<AppState>, deps: ApiDeps): void {
  route(
    router,
    deps,
    {
      method: 'patch',
      path: '/targets/:name',
      access: { roles: ADMIN, action: 'target.update', targetType: 'target' },
      tag: 'targets',
      summary: "Change a target's config or description; applies to jobs started afterwards",
      params: nameParam,
      body: targetPatch,
      responses: {
        200: 'the target',
        400: 'invalid body, config not of its kind, or a restricted config key',
        403: 'not PLATFORM_ADMIN',
        404: 'no such target',
      },
    },
    async (ctx, { params, body, caller }) => {
      ctx.body = targetJson(await patchTarget(deps, caller, params.name, body));
    },
  );

  route(
    router,
    deps,
    {
      method: 'post',
      path: '/targets/:name/rotate-secret',
      access: { roles: ADMIN, action: 'target.rotate_secret', targetType: 'target' },
      tag: 'targets',
      summary: "Replace a target's signing secret; the old one still verifies callbacks for 1 h",
      params: nameParam,
      responses: {
        200: 'the target with its new signing_secret',
        403: 'not PLATFORM_ADMIN',
        404: 'no such target',
      },
    },
    async (ctx, { params, caller }) => {
      const { target, secret } = await rotateSecret(deps, caller, params.name);
      ctx.body = { ...targetJson(target), signing_secret: secret };
    },
  );
}
