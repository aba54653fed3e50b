import type Router from '@koa/router';
import { z } from 'zod';
import { readAuditLog } from '../../services/audit-log.service';
import { route } from '../route';
import { auditJson } from '../serializers';
import { decodeCursor, pageQuery, toPage } from '../pagination';
import type { ApiDeps, AppState } from '../types';

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
export function registerAuditRoutes(router: Router<AppState>, deps: ApiDeps): void {
  route(
    router,
    deps,
    {
      method: 'get',
      path: '/audit-logs',
      access: { roles: ['PLATFORM_ADMIN', 'TEAM_ADMIN'], action: 'audit.read', targetType: 'audit_log' },
      tag: 'audit',
      summary: 'Audit entries, newest first (PLATFORM_ADMIN: all; TEAM_ADMIN: entries of own teams)',
      query: auditQuery,
      responses: { 200: 'a page of audit entries', 403: 'DEVELOPER' },
    },
    async (ctx, { query, caller }) => {
      const { cursor, ...filters } = query;
      const rows = await readAuditLog(deps, caller, { ...filters, before: decodeCursor(cursor) });
      ctx.body = toPage(rows, query.limit, auditJson);
    },
  );
}
