import type Router from '@koa/router';
import { z } from 'zod';
import { listServices, readService, registerService, updateService } from '../../services/services.service';
import { route } from '../route';
import { idParam, serviceCreate, serviceUpdate, slug } from '../schemas';
import { serviceJson } from '../../views/resources';
import { decodeCursor, pageQuery, toPage } from '../pagination';
import type { ApiDeps, AppState } from '../types';

const listQuery = z
  .object({ ...pageQuery, team: slug.optional() })
  .catchall(z.string().max(255))
  .superRefine((q, issue) => {
    for (const key of Object.keys(q)) {
      if (['limit', 'cursor', 'team'].includes(key)) continue;
      if (!/^tag\.[^.]{1,63}$/.test(key)) {
        issue.addIssue({
          code: 'custom',
          path: [key],
          message: `unknown query parameter '${key}'; use team, limit, cursor or tag.KEY`,
        });
      }
    }
  });

/** Services: the catalog. */
export function registerServiceRoutes(router: Router<AppState>, deps: ApiDeps): void {
  registerServiceReads(router, deps);
  route(
    router,
    deps,
    {
      method: 'post',
      path: '/services',
      access: { roles: ['PLATFORM_ADMIN', 'TEAM_ADMIN'], action: 'service.create', targetType: 'service' },
      tag: 'services',
      summary:
        'Register a service (a TEAM_ADMIN of exactly one team who names none registers it for that team)',
      body: serviceCreate,
      responses: {
        201: 'the service',
        400: 'invalid body or guardrail violation',
        403: 'not allowed for this team',
        409: 'name taken',
      },
    },
    async (ctx, { body, caller }) => {
      const { service, team } = await registerService(deps, caller, body);
      ctx.status = 201;
      ctx.set('Location', `/api/services/${service.id}`);
      ctx.body = serviceJson(service, team);
    },
  );

  route(
    router,
    deps,
    {
      method: 'patch',
      path: '/services/:id',
      access: { roles: ['PLATFORM_ADMIN', 'TEAM_ADMIN'], action: 'service.update', targetType: 'service' },
      tag: 'services',
      summary: 'Update a service: tags (replaces the whole map, validated again), team, description',
      params: z.strictObject({ id: idParam }),
      body: serviceUpdate,
      responses: {
        200: 'the service',
        400: 'invalid body or guardrail violation',
        403: 'not allowed',
        404: 'no such service',
      },
    },
    async (ctx, { params, body, caller }) => {
      const { service, team } = await updateService(deps, caller, params.id, body);
      ctx.body = serviceJson(service, team);
    },
  );
}

/** Reading the catalog: the list with its filters, and one service. */
function registerServiceReads(router: Router<AppState>, deps: ApiDeps): void {
  route(
    router,
    deps,
    {
      method: 'get',
      path: '/services',
      tag: 'services',
      summary: 'List services, filtered by team and tags (?team=NAME&tag.KEY=VALUE)',
      query: listQuery,
      responses: { 200: 'a page of services', 400: 'invalid filter' },
    },
    async (ctx, { query }) => {
      const tags: Record<string, string> = {};
      for (const [key, value] of Object.entries(query)) {
        if (key.startsWith('tag.') && typeof value === 'string') tags[key.slice(4)] = value;
      }
      const { rows, teams } = await listServices(deps, {
        limit: query.limit,
        after: decodeCursor(query.cursor),
        team: query.team,
        tags,
      });
      ctx.body = toPage(rows, query.limit, (s) =>
        serviceJson(s, s.teamId === null ? null : (teams.get(s.teamId) ?? null)),
      );
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/services/:id',
      tag: 'services',
      summary: 'Read a service',
      params: z.strictObject({ id: idParam }),
      responses: { 200: 'the service', 404: 'no such service' },
    },
    async (ctx, { params }) => {
      const { service, team } = await readService(deps.orm.em.fork(), params.id);
      ctx.body = serviceJson(service, team);
    },
  );
}
