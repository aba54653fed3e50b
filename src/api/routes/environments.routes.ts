import type Router from '@koa/router';
import { z } from 'zod';
import {
  getEnvironment,
  listEnvironments,
  patchEnvironment,
  provisionEnvironment,
} from '../../services/environments.service';
import { route } from '../route';
import { environmentCreate, environmentPatch, idParam } from '../schemas';
import { environmentJson } from '../../views/resources';
import { decodeCursor, pageQuery, toPage } from '../pagination';
import type { ApiDeps, AppState } from '../types';

/** Environments of a service, provisioned by a workflow each. */
export function registerEnvironmentRoutes(router: Router<AppState>, deps: ApiDeps): void {
  route(
    router,
    deps,
    {
      method: 'post',
      path: '/services/:id/environments',
      access: {
        roles: ['PLATFORM_ADMIN', 'TEAM_ADMIN'],
        action: 'environment.create',
        targetType: 'service',
      },
      tag: 'environments',
      summary: 'Provision an environment (202; a provisioning workflow makes it ready)',
      params: z.strictObject({ id: idParam }),
      body: environmentCreate,
      responses: {
        202: 'the environment, provisioning, with its job_id',
        400: 'invalid body or guardrail violation',
        403: 'not allowed for this team',
        404: 'no such service',
        409: 'an environment of that name exists',
        503: 'Temporal unavailable: retry the same request',
      },
    },
    async (ctx, { params, body, caller }) => {
      const env = await provisionEnvironment(deps, caller, params.id, body);
      ctx.status = 202;
      ctx.set('Location', `/api/services/${env.serviceId}/environments/${env.id}`);
      ctx.body = environmentJson(env, deps.config);
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/services/:id/environments',
      tag: 'environments',
      summary: "List a service's environments",
      params: z.strictObject({ id: idParam }),
      query: z.strictObject(pageQuery),
      responses: { 200: 'a page of environments', 404: 'no such service' },
    },
    async (ctx, { params, query }) => {
      const rows = await listEnvironments(deps, params.id, {
        limit: query.limit,
        after: decodeCursor(query.cursor),
      });
      ctx.body = toPage(rows, query.limit, (e) => environmentJson(e, deps.config));
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/services/:id/environments/:envId',
      tag: 'environments',
      summary: 'Read an environment',
      params: z.strictObject({ id: idParam, envId: idParam }),
      responses: { 200: 'the environment', 404: 'no such service or environment' },
    },
    async (ctx, { params }) => {
      ctx.body = environmentJson(await getEnvironment(deps, params.id, params.envId), deps.config);
    },
  );

  route(
    router,
    deps,
    {
      method: 'patch',
      path: '/services/:id/environments/:envId',
      access: {
        roles: ['PLATFORM_ADMIN', 'TEAM_ADMIN'],
        action: 'environment.update',
        targetType: 'service',
      },
      tag: 'environments',
      summary: "Change an environment's target, config or verification; applies to jobs started afterwards",
      params: z.strictObject({ id: idParam, envId: idParam }),
      body: environmentPatch,
      responses: {
        200: 'the environment',
        400: 'invalid body, unknown target or guardrail violation',
        403: 'not allowed for this team',
        404: 'no such service or environment',
      },
    },
    async (ctx, { params, body, caller }) => {
      const env = await patchEnvironment(
        deps,
        caller,
        { serviceId: params.id, environmentId: params.envId },
        body,
      );
      ctx.body = environmentJson(env, deps.config);
    },
  );
}
