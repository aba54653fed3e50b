import type Router from '@koa/router';
import { z } from 'zod';
import { createTeam, getTeam, listTeams, updateTeam } from '../../services/teams.service';
import { route } from '../route';
import { idParam, teamCreate, teamUpdate } from '../schemas';
import { teamJson } from '../../views/resources';
import { decodeCursor, pageQuery, toPage } from '../pagination';
import type { ApiDeps, AppState } from '../types';

/** Teams: the ownership units services belong to. */
export function registerTeamRoutes(router: Router<AppState>, deps: ApiDeps): void {
  route(
    router,
    deps,
    {
      method: 'post',
      path: '/teams',
      access: { roles: ['PLATFORM_ADMIN'], action: 'team.create', targetType: 'team' },
      tag: 'teams',
      summary: 'Create a team (PLATFORM_ADMIN)',
      body: teamCreate,
      responses: { 201: 'the team', 400: 'invalid body', 403: 'not a platform admin', 409: 'name taken' },
    },
    async (ctx, { body, caller }) => {
      ctx.status = 201;
      ctx.body = teamJson(await createTeam(deps, caller, body));
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/teams',
      tag: 'teams',
      summary: 'List teams',
      query: z.strictObject(pageQuery),
      responses: { 200: 'a page of teams' },
    },
    async (ctx, { query }) => {
      ctx.body = toPage(
        await listTeams(deps, { limit: query.limit, after: decodeCursor(query.cursor) }),
        query.limit,
        teamJson,
      );
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/teams/:id',
      tag: 'teams',
      summary: 'Read a team',
      params: z.strictObject({ id: idParam }),
      responses: { 200: 'the team', 404: 'no such team' },
    },
    async (ctx, { params }) => {
      ctx.body = teamJson(await getTeam(deps, params.id));
    },
  );

  route(
    router,
    deps,
    {
      method: 'patch',
      path: '/teams/:id',
      access: { roles: ['PLATFORM_ADMIN'], action: 'team.update', targetType: 'team' },
      tag: 'teams',
      summary: 'Update a team (PLATFORM_ADMIN)',
      params: z.strictObject({ id: idParam }),
      body: teamUpdate,
      responses: { 200: 'the team', 403: 'not a platform admin', 404: 'no such team' },
    },
    async (ctx, { params, body, caller }) => {
      ctx.body = teamJson(await updateTeam(deps, caller, params.id, body));
    },
  );
}
