import type Router from '@koa/router';
import type { EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { Service, Team } from '../../domain/entities';
import { ConflictError, InputError, NotFoundError } from '../../domain/errors';
import { evaluateServiceTags } from '../../domain/policies';
import { canManageService } from '../../domain/rbac';
import { loadPolicies } from '../../domain/deployment-rules';
import { route, type Ctx } from '../route';
import { serviceCreate, serviceUpdate, slug } from '../schemas';
import { serviceJson } from '../serializers';
import { audit, decodeCursor, deny, idParam, isUniqueViolation, pageQuery, refuse, toPage } from '../support';
import type { AppDeps, AppState } from '../types';

/** Finds a team by name or fails with a 400 naming the field. */
export async function teamByName(em: EntityManager, name: string, field: string): Promise<Team> {
  const team = await em.findOne(Team, { name });
  if (!team) {
    throw new InputError(`team '${name}' does not exist`, [
      { rule: 'reference', field, message: `team '${name}' does not exist`, hint: 'create it first with POST /api/teams, or leave the service without a team' },
    ]);
  }
  return team;
}

/** Loads a service and its team, or 404. */
export async function loadService(em: EntityManager, id: number): Promise<{ service: Service; team: Team | null }> {
  const service = await em.findOne(Service, id);
  if (!service) throw new NotFoundError(`service ${id} does not exist`);
  const team = service.teamId === null ? null : await em.findOne(Team, service.teamId);
  return { service, team };
}

/**
 * Loads a service and its team for reading only, or 404: plain rows mapped to the entities' fields,
 * without the identity map and change-tracking snapshots a managed entity costs (on a GET they were
 * most of the request's CPU; see BENCHMARKS.md). Use {@link loadService} to change the service.
 */
export async function readService(em: EntityManager, id: number): Promise<{ service: Service; team: Team | null }> {
  const service = await em.createQueryBuilder(Service).select('*').where({ id }).limit(1).execute<Service | null>('get');
  if (!service) throw new NotFoundError(`service ${id} does not exist`);
  const team = service.teamId === null ? null : await em.createQueryBuilder(Team).select('*').where({ id: service.teamId }).limit(1).execute<Team | null>('get');
  return { service, team };
}

const listQuery = z
  .object({ ...pageQuery, team: slug.optional() })
  .catchall(z.string().max(255))
  .superRefine((q, issue) => {
    for (const key of Object.keys(q)) {
      if (['limit', 'cursor', 'team'].includes(key)) continue;
      if (!/^tag\.[^.]{1,63}$/.test(key)) {
        issue.addIssue({ code: 'custom', path: [key], message: `unknown query parameter '${key}'; use team, limit, cursor or tag.KEY` });
      }
    }
  });

/** Services: the catalog. */
export function registerServiceRoutes(router: Router<AppState>, deps: AppDeps): void {
  route(
    router,
    {
      method: 'post',
      path: '/services',
      tag: 'services',
      summary: 'Register a service',
      body: serviceCreate,
      responses: { 201: 'the service', 400: 'invalid body or guardrail violation', 403: 'not allowed for this team', 409: 'name taken' },
    },
    async (ctx, { body, actor }) => {
      const em = deps.orm.em.fork();
      const teamName = body.team ?? null;
      if (!canManageService(actor, teamName)) {
        await deny(deps, ctx, { action: 'service.create', targetType: 'service', team: teamName, details: { name: body.name } },
          teamName === null ? 'only PLATFORM_ADMIN may register a service without a team' : `you may not register services for team '${teamName}'`);
      }
      const team = teamName === null ? null : await teamByName(em, teamName, 'body.team');
      const policies = await loadPolicies(em);
      const violations = evaluateServiceTags(body.tags, policies);
      if (violations.length > 0) {
        await refuse(deps, ctx, { action: 'service.create', targetType: 'service', team: teamName, details: { name: body.name } }, violations, body, policies);
      }
      let service: Service;
      try {
        // The row and its audit entry commit together or not at all.
        service = await em.transactional(async (tx) => {
          const created = tx.create(Service, { name: body.name, tags: body.tags, teamId: team?.id ?? null, description: body.description ?? null });
          await tx.flush();
          audit(tx, ctx, { action: 'service.create', outcome: 'success', targetType: 'service', targetId: created.id, team: teamName, details: { name: body.name, tags: body.tags } });
          return created;
        });
      } catch (err) {
        if (isUniqueViolation(err)) throw new ConflictError(`service '${body.name}' already exists`);
        throw err;
      }
      ctx.status = 201;
      ctx.set('Location', `/api/services/${service.id}`);
      ctx.body = serviceJson(service, team);
    },
  );

  route(
    router,
    {
      method: 'get',
      path: '/services',
      tag: 'services',
      summary: 'List services, filtered by team and tags (?team=NAME&tag.KEY=VALUE)',
      query: listQuery,
      responses: { 200: 'a page of services', 400: 'invalid filter' },
    },
    async (ctx, { query }) => {
      const em = deps.orm.em.fork();
      const after = decodeCursor(query.cursor);
      const tagFilter: Record<string, string> = {};
      for (const [key, value] of Object.entries(query)) {
        if (key.startsWith('tag.') && typeof value === 'string') tagFilter[key.slice(4)] = value;
      }
      const qb = em.createQueryBuilder(Service, 's').select('*').orderBy({ id: 'asc' }).limit(query.limit + 1);
      if (after) qb.andWhere({ id: { $gt: after } });
      if (query.team) {
        const team = await em.findOne(Team, { name: query.team });
        if (!team) {
          ctx.body = { items: [], next_cursor: null };
          return;
        }
        qb.andWhere({ teamId: team.id });
      }
      // jsonb containment, served by the GIN index on tags.
      if (Object.keys(tagFilter).length > 0) qb.andWhere('s.tags @> ?::jsonb', [JSON.stringify(tagFilter)]);
      const rows = await qb.execute<Service[]>('all');
      const teamIds = [...new Set(rows.map((r) => r.teamId).filter((t): t is number => t !== null))];
      const teams = new Map(
        (teamIds.length ? await em.createQueryBuilder(Team).select('*').where({ id: { $in: teamIds } }).execute<Team[]>('all') : []).map((t) => [t.id, t]),
      );
      ctx.body = toPage(rows, query.limit, (s) => serviceJson(s, s.teamId === null ? null : (teams.get(s.teamId) ?? null)));
    },
  );

  route(
    router,
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

  route(
    router,
    {
      method: 'patch',
      path: '/services/:id',
      tag: 'services',
      summary: 'Update a service: tags (replaces the whole map, validated again), team, description',
      params: z.strictObject({ id: idParam }),
      body: serviceUpdate,
      responses: { 200: 'the service', 400: 'invalid body or guardrail violation', 403: 'not allowed', 404: 'no such service' },
    },
    async (ctx, { params, body, actor }) => updateService(deps, ctx, params.id, body, actor),
  );
}

async function updateService(
  deps: AppDeps,
  ctx: Ctx,
  id: number,
  body: z.infer<typeof serviceUpdate>,
  actor: NonNullable<AppState['actor']>,
): Promise<void> {
  const em = deps.orm.em.fork();
  const { service, team } = await loadService(em, id);
  const currentTeam = team?.name ?? null;
  const nextTeamName = body.team === undefined ? currentTeam : body.team;
  const facts = { action: 'service.update', targetType: 'service', targetId: service.id, team: currentTeam };
  if (!canManageService(actor, currentTeam) || !canManageService(actor, nextTeamName)) {
    await deny(deps, ctx, { ...facts, details: { changes: Object.keys(body) } },
      currentTeam === null || nextTeamName === null
        ? 'only PLATFORM_ADMIN may change a service without a team or remove its team'
        : `you may not change services of team '${currentTeam === nextTeamName ? currentTeam : `${currentTeam}' or '${nextTeamName}`}'`);
  }
  const nextTeam = nextTeamName === currentTeam ? team : nextTeamName === null ? null : await teamByName(em, nextTeamName, 'body.team');
  const policies = await loadPolicies(em);
  const nextTags = body.tags ?? service.tags;
  const violations = evaluateServiceTags(nextTags, policies);
  if (violations.length > 0) await refuse(deps, ctx, facts, violations, body, policies);
  const before = { tags: service.tags, team: currentTeam, description: service.description };
  service.tags = nextTags;
  service.teamId = nextTeam?.id ?? null;
  if (body.description !== undefined) service.description = body.description;
  audit(em, ctx, { ...facts, outcome: 'success', team: nextTeam?.name ?? null, details: { before, after: { tags: nextTags, team: nextTeam?.name ?? null, description: service.description } } });
  await em.flush();
  ctx.body = serviceJson(service, nextTeam);
}
