/** The audit log as its readers may see it: everything for platform admins, own teams' entries for team admins. */
import type { FilterQuery } from '@mikro-orm/postgresql';
import { AuditLog } from '../domain/entities';
import { auditScope } from '../domain/rbac';
import { deny } from './audit-trail';
import type { Caller } from './caller';
import type { ServiceDeps } from './service-deps';

/** The filters of an audit page. */
export interface AuditFilter {
  limit: number;
  before?: number;
  action?: string;
  actor?: string;
  target_type?: string;
  target_id?: string;
  team?: string;
  correlation_id?: string;
  since?: string;
  until?: string;
}

/** A page of audit entries, newest first (`limit + 1` rows before `before`), within the caller's scope. */
export async function readAuditLog(deps: ServiceDeps, caller: Caller, q: AuditFilter): Promise<AuditLog[]> {
  const scope = auditScope(caller.actor);
  if (scope === null)
    await deny(
      deps.orm,
      caller,
      { action: 'audit.read', targetType: 'audit_log' },
      'only PLATFORM_ADMIN and TEAM_ADMIN may read the audit log',
    );
  const teams = scope === 'all' ? null : scope!;
  // A team filter outside the caller's teams matches nothing (rather than revealing other teams).
  const team = q.team
    ? teams === null || teams.includes(q.team)
      ? { team: q.team }
      : { team: { $in: [] as string[] } }
    : teams === null
      ? {}
      : { team: { $in: teams } };
  const where: FilterQuery<AuditLog> = {
    ...(q.before ? { id: { $lt: q.before } } : {}),
    ...(q.action ? { action: q.action } : {}),
    ...(q.actor ? { actor: q.actor } : {}),
    ...(q.target_type ? { targetType: q.target_type } : {}),
    ...(q.target_id ? { targetId: q.target_id } : {}),
    ...(q.correlation_id ? { correlationId: q.correlation_id } : {}),
    ...(q.since || q.until
      ? {
          at: {
            ...(q.since ? { $gte: new Date(q.since) } : {}),
            ...(q.until ? { $lt: new Date(q.until) } : {}),
          },
        }
      : {}),
    ...team,
  } as FilterQuery<AuditLog>;
  return deps.orm.em.fork().find(AuditLog, where, { orderBy: { id: 'desc' }, limit: q.limit + 1 });
}
