/** The catalog's services: register, update, read and list, each with its guardrails and audit entry. */
import type { EntityManager } from '@mikro-orm/postgresql';
import { Service, Team } from '../domain/entities';
import { ConflictError, InputError, NotFoundError } from '../domain/errors';
import { loadPolicies } from '../domain/deployment-rules';
import { canManageService } from '../domain/rbac';
import type { Actor } from '../domain/types';
import { deny, isUniqueViolation, recordIn, refuseViolations } from './audit-trail';
import type { Caller } from './caller';
import { evaluate } from './guardrails';
import type { ServiceDeps } from './service-deps';

/** A service with its team (null: no team). */
export interface ServiceWithTeam {
  service: Service;
  team: Team | null;
}

/** What registering a service takes. */
export interface ServiceRegistration {
  name: string;
  tags: Record<string, string>;
  team?: string | null;
  description?: string | null;
}

/** What updating a service takes: each field given replaces the stored one (`tags` as a whole map). */
export interface ServiceChanges {
  tags?: Record<string, string>;
  team?: string | null;
  description?: string | null;
}

/** Finds a team by name or fails with a 400 naming `field`. */
export async function teamByName(em: EntityManager, name: string, field: string): Promise<Team> {
  const team = await em.findOne(Team, { name });
  if (!team) {
    throw new InputError(`team '${name}' does not exist`, [
      {
        rule: 'reference',
        field,
        message: `team '${name}' does not exist`,
        hint: 'create it first with POST /api/teams, or leave the service without a team',
      },
    ]);
  }
  return team;
}

/** Loads a service and its team as managed entities (to change them), or 404. */
export async function loadService(em: EntityManager, id: number): Promise<ServiceWithTeam> {
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
export async function readService(em: EntityManager, id: number): Promise<ServiceWithTeam> {
  const service = await em
    .createQueryBuilder(Service)
    .select('*')
    .where({ id })
    .limit(1)
    .execute<Service | null>('get');
  if (!service) throw new NotFoundError(`service ${id} does not exist`);
  const team =
    service.teamId === null
      ? null
      : await em
          .createQueryBuilder(Team)
          .select('*')
          .where({ id: service.teamId })
          .limit(1)
          .execute<Team | null>('get');
  return { service, team };
}

/**
 * The team a new service belongs to when the body names none: a TEAM_ADMIN who is not a platform
 * admin and whose token names exactly one team means that team (the seed's first example names
 * none); anyone else registers it without a team. An explicit `null` always means no team.
 */
export function impliedTeam(actor: Actor, team: string | null | undefined): string | null {
  if (team !== undefined) return team;
  const single =
    !actor.roles.includes('PLATFORM_ADMIN') && actor.roles.includes('TEAM_ADMIN') && actor.teams.length === 1;
  return single ? actor.teams[0]! : null;
}

/** Registers a service: permission, team, guardrails, then the row and its audit entry in one transaction. */
export async function registerService(
  deps: ServiceDeps,
  caller: Caller,
  body: ServiceRegistration,
): Promise<ServiceWithTeam> {
  const em = deps.orm.em.fork();
  const teamName = impliedTeam(caller.actor, body.team);
  const facts = {
    action: 'service.create',
    targetType: 'service',
    team: teamName,
    details: { name: body.name },
  };
  if (!canManageService(caller.actor, teamName)) {
    await deny(
      deps.orm,
      caller,
      facts,
      teamName === null
        ? 'only PLATFORM_ADMIN may register a service without a team'
        : `you may not register services for team '${teamName}'`,
    );
  }
  const team = teamName === null ? null : await teamByName(em, teamName, 'body.team');
  const policies = await loadPolicies(em);
  await refuseViolations(
    deps.orm,
    caller,
    facts,
    await evaluate(em, policies, { action: 'service.create', tags: body.tags }),
    body,
    policies,
  );
  try {
    const service = await em.transactional(async (tx) => {
      const created = tx.create(Service, {
        name: body.name,
        tags: body.tags,
        teamId: team?.id ?? null,
        description: body.description ?? null,
      });
      await tx.flush();
      recordIn(tx, caller, {
        ...facts,
        outcome: 'success',
        targetId: created.id,
        details: { name: body.name, tags: body.tags },
      });
      return created;
    });
    return { service, team };
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError(`service '${body.name}' already exists`);
    throw err;
  }
}

/** Updates a service: permission for its team now and after, guardrails on the resulting tags, audit entry with before and after. */
export async function updateService(
  deps: ServiceDeps,
  caller: Caller,
  id: number,
  body: ServiceChanges,
): Promise<ServiceWithTeam> {
  const em = deps.orm.em.fork();
  const { service, team } = await loadService(em, id);
  const currentTeam = team?.name ?? null;
  const nextTeamName = body.team === undefined ? currentTeam : body.team;
  const facts = { action: 'service.update', targetType: 'service', targetId: service.id, team: currentTeam };
  if (!canManageService(caller.actor, currentTeam) || !canManageService(caller.actor, nextTeamName)) {
    await deny(
      deps.orm,
      caller,
      { ...facts, details: { changes: Object.keys(body) } },
      currentTeam === null || nextTeamName === null
        ? 'only PLATFORM_ADMIN may change a service without a team or remove its team'
        : `you may not change services of team '${currentTeam === nextTeamName ? currentTeam : `${currentTeam}' or '${nextTeamName}`}'`,
    );
  }
  const nextTeam =
    nextTeamName === currentTeam
      ? team
      : nextTeamName === null
        ? null
        : await teamByName(em, nextTeamName, 'body.team');
  const policies = await loadPolicies(em);
  const nextTags = body.tags ?? service.tags;
  await refuseViolations(
    deps.orm,
    caller,
    facts,
    await evaluate(em, policies, { action: 'service.update', tags: nextTags }),
    body,
    policies,
  );
  const before = { tags: service.tags, team: currentTeam, description: service.description };
  service.tags = nextTags;
  service.teamId = nextTeam?.id ?? null;
  if (body.description !== undefined) service.description = body.description;
  const after = { tags: nextTags, team: nextTeam?.name ?? null, description: service.description };
  recordIn(em, caller, {
    ...facts,
    outcome: 'success',
    team: nextTeam?.name ?? null,
    details: { before, after },
  });
  await em.flush();
  return { service, team: nextTeam };
}

/** A page of services (`limit + 1` rows after `after`), filtered by team name and tags, with their teams. */
export async function listServices(
  deps: ServiceDeps,
  filter: { limit: number; after?: number; team?: string; tags: Record<string, string> },
): Promise<{ rows: Service[]; teams: Map<number, Team> }> {
  const em = deps.orm.em.fork();
  const qb = em
    .createQueryBuilder(Service, 's')
    .select('*')
    .orderBy({ id: 'asc' })
    .limit(filter.limit + 1);
  if (filter.after) qb.andWhere({ id: { $gt: filter.after } });
  if (filter.team) {
    const team = await em.findOne(Team, { name: filter.team });
    if (!team) return { rows: [], teams: new Map() };
    qb.andWhere({ teamId: team.id });
  }
  // jsonb containment, served by the GIN index on tags.
  if (Object.keys(filter.tags).length > 0) qb.andWhere('s.tags @> ?::jsonb', [JSON.stringify(filter.tags)]);
  const rows = await qb.execute<Service[]>('all');
  const teamIds = [...new Set(rows.map((r) => r.teamId).filter((t): t is number => t !== null))];
  const teams = teamIds.length
    ? await em
        .createQueryBuilder(Team)
        .select('*')
        .where({ id: { $in: teamIds } })
        .execute<Team[]>('all')
    : [];
  return { rows, teams: new Map(teams.map((t) => [t.id, t])) };
}
