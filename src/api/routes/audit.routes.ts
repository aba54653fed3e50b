import type Router from '@koa/router';
import type { FilterQuery } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { AuditLog } from '../../domain/entities';
import { auditScope } from '../../domain/rbac';
import { route } from '../route';
import { auditJson } from '../serializers';
import { decodeCursor, deny, pageQuery, toPage } from '../support';
import type { AppDeps, AppState } from '../types';

const auditQuery = z.strictObject({
  ...pageQuery,
  action: z.string().min(1).max(63).optional(),
  actor: z.string().min(1).max(255).optional(),
  target_type: z.string().min(1).max(63).optional(),
  target_id: z.string().min(1).max(255).optional(),
  team: z.string().min(1).max(63).optional(),
  correlation_id: z.string().min(1).max(128).optional(),
  since: z.iso.datetime({ offset: true }).optional(),
  until: z.iso.datetime({ offset: true }).optional(),
});

/** The audit log: everything that changed or was refused, newest first. */
export function registerAuditRoutes(router: Router<AppState>, deps: AppDeps): void {
  route(
    router,
    {
      method: 'get',
      path: '/audit-logs',
      tag: 'audit',
      summary: 'Audit entries, newest first (PLATFORM_ADMIN: all; TEAM_ADMIN: entries of own teams)',
      query: auditQuery,
      responses: { 200: 'a page of audit entries', 403: 'DEVELOPER' },
    },
    async (ctx, { query, actor }) => {
      const scope = auditScope(actor);
      if (scope === null) await deny(deps, ctx, { action: 'audit.read', targetType: 'audit_log' }, 'only PLATFORM_ADMIN and TEAM_ADMIN may read the audit log');
      const before = decodeCursor(query.cursor);
      const where: FilterQuery<AuditLog> = {
        ...(before ? { id: { $lt: before } } : {}),
        ...(query.action ? { action: query.action } : {}),
        ...(query.actor ? { actor: query.actor } : {}),
        ...(query.target_type ? { targetType: query.target_type } : {}),
        ...(query.target_id ? { targetId: query.target_id } : {}),
        ...(query.correlation_id ? { correlationId: query.correlation_id } : {}),
        ...(query.since || query.until
          ? { at: { ...(query.since ? { $gte: new Date(query.since) } : {}), ...(query.until ? { $lt: new Date(query.until) } : {}) } }
          : {}),
      };
      const teams = scope === 'all' ? null : scope!;
      const teamFilter = query.team
        ? teams === null || teams.includes(query.team)
          ? { team: query.team }
          : { team: { $in: [] as string[] } }
        : teams === null
          ? {}
          : { team: { $in: teams } };
      const rows = await deps.orm.em
        .fork()
        .find(AuditLog, { ...where, ...teamFilter } as FilterQuery<AuditLog>, { orderBy: { id: 'desc' }, limit: query.limit + 1 });
      ctx.body = toPage(rows, query.limit, auditJson);
    },
  );
}
