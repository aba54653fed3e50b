/** Teams: the ownership units services belong to. */
import { rowsAfter } from '../db/keyset';
import { Team } from '../domain/entities';
import { ConflictError, NotFoundError } from '../domain/errors';
import { canManageTeams } from '../domain/rbac';
import { deny, isUniqueViolation, recordIn } from './audit-trail';
import type { Caller } from './caller';
import type { ServiceDeps } from './service-deps';

/** Creates a team; the row and its audit entry (naming the id the insert gave) commit together. */
export async function createTeam(
  deps: ServiceDeps,
  caller: Caller,
  body: { name: string; display_name?: string },
): Promise<Team> {
  if (!canManageTeams(caller.actor))
    await deny(
      deps.orm,
      caller,
      { action: 'team.create', targetType: 'team', details: { name: body.name } },
      'only PLATFORM_ADMIN may create teams',
    );
  try {
    return await deps.orm.em.fork().transactional(async (tx) => {
      const created = tx.create(Team, { name: body.name, displayName: body.display_name ?? null });
      await tx.flush();
      recordIn(tx, caller, {
        action: 'team.create',
        outcome: 'success',
        targetType: 'team',
        targetId: created.id,
        team: body.name,
        details: { name: body.name },
      });
      return created;
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw new ConflictError(`team '${body.name}' already exists`);
    throw err;
  }
}

/** A team, or 404. */
export async function getTeam(deps: ServiceDeps, id: number): Promise<Team> {
  const team = await deps.orm.em.fork().findOne(Team, id);
  if (!team) throw new NotFoundError(`team ${id} does not exist`);
  return team;
}

/** A page of teams (`limit + 1` rows after `after`). */
export function listTeams(deps: ServiceDeps, page: { limit: number; after?: number }): Promise<Team[]> {
  return rowsAfter(deps.orm.em.fork(), Team, 'id', page);
}

/** Changes a team's display name. */
export async function updateTeam(
  deps: ServiceDeps,
  caller: Caller,
  id: number,
  body: { display_name: string | null },
): Promise<Team> {
  const em = deps.orm.em.fork();
  const team = await em.findOne(Team, id);
  if (!team) throw new NotFoundError(`team ${id} does not exist`);
  const facts = { action: 'team.update', targetType: 'team', targetId: team.id, team: team.name };
  if (!canManageTeams(caller.actor))
    await deny(deps.orm, caller, facts, 'only PLATFORM_ADMIN may update teams');
  team.displayName = body.display_name;
  recordIn(em, caller, { ...facts, outcome: 'success', details: { display_name: body.display_name } });
  await em.flush();
  return team;
}
