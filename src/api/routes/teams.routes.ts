import type Router from '@koa/router';
import { z } from 'zod';
import { Team } from '../../domain/entities';
import { ConflictError, NotFoundError } from '../../domain/errors';
import { canManageTeams } from '../../domain/rbac';
import { route } from '../route';
import { teamCreate, teamUpdate } from '../schemas';
import { teamJson } from '../serializers';
import { audit, decodeCursor, deny, idParam, isUniqueViolation, pageQuery, toPage } from '../support';
import type { AppDeps, AppState } from '../types';

/** Teams: the ownership units services belong to. */
export function registerTeamRoutes(router: Router<AppState>, deps: AppDeps): void {
  route(
    router,
    {
      method: 'post',
      path: '/teams',
      tag: 'teams',
      summary: 'Create a team (PLATFORM_ADMIN)',
      body: teamCreate,
      responses: { 201: 'the team', 400: 'invalid body', 403: 'not a platform admin', 409: 'name taken' },
    },
    async (ctx, { body, actor }) => {
      if (!canManageTeams(actor)) {
        await deny(deps, ctx, { action: 'team.create', targetType: 'team', details: { name: body.name } }, 'only PLATFORM_ADMIN may create teams');
      }
      let team: Team;
      try {
        // The row and its audit entry commit together; the entry names the id the insert gave.
        team = await deps.orm.em.fork().transactional(async (tx) => {
          const created = tx.create(Team, { name: body.name, displayName: body.display_name ?? null });
          await tx.flush();
          audit(tx, ctx, { action: 'team.create', outcome: 'success', targetType: 'team', targetId: created.id, team: body.name, details: { name: body.name } });
          return created;
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new ConflictError(`team '${body.name}' already exists`);
        throw err;
      }
      ctx.status = 201;
      ctx.body = teamJson(team);
    },
  );

  route(
    router,
    {
      method: 'get',
      path: '/teams',
      tag: 'teams',
      summary: 'List teams',
      query: z.strictObject(pageQuery),
      responses: { 200: 'a page of teams' },
    },
    async (ctx, { query }) => {
      const after = decodeCursor(query.cursor);
      const rows = await deps.orm.em
        .fork()
        .find(Team, after ? { id: { $gt: after } } : {}, { orderBy: { id: 'asc' }, limit: query.limit + 1 });
      ctx.body = toPage(rows, query.limit, teamJson);
    },
  );

  route(
    router,
    {
      method: 'get',
      path: '/teams/:id',
      tag: 'teams',
      summary: 'Read a team',
      params: z.strictObject({ id: idParam }),
      responses: { 200: 'the team', 404: 'no such team' },
    },
    async (ctx, { params }) => {
      const team = await deps.orm.em.fork().findOne(Team, params.id);
      if (!team) throw new NotFoundError(`team ${params.id} does not exist`);
      ctx.body = teamJson(team);
    },
  );

  route(
    router,
    {
      method: 'patch',
      path: '/teams/:id',
      tag: 'teams',
      summary: 'Update a team (PLATFORM_ADMIN)',
      params: z.strictObject({ id: idParam }),
      body: teamUpdate,
      responses: { 200: 'the team', 403: 'not a platform admin', 404: 'no such team' },
    },
    async (ctx, { params, body, actor }) => {
      const em = deps.orm.em.fork();
      const team = await em.findOne(Team, params.id);
      if (!team) throw new NotFoundError(`team ${params.id} does not exist`);
      if (!canManageTeams(actor)) {
        await deny(deps, ctx, { action: 'team.update', targetType: 'team', targetId: team.id, team: team.name }, 'only PLATFORM_ADMIN may update teams');
      }
      team.displayName = body.display_name;
      audit(em, ctx, { action: 'team.update', outcome: 'success', targetType: 'team', targetId: team.id, team: team.name, details: { display_name: body.display_name } });
      await em.flush();
      ctx.body = teamJson(team);
    },
  );
}
