import type Router from '@koa/router';
import { z } from 'zod';
import { Readable } from 'node:stream';
import { exportAuditLog, verifyAuditChain } from '../../services/audit-chain.service';
import { readAuditLog } from '../../services/audit-log.service';
import { route } from '../route';
import { auditJson } from '../../views/resources';
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

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/audit-logs/verify',
      access: { roles: ['PLATFORM_ADMIN'], action: 'audit.verify', targetType: 'audit_log' },
      tag: 'audit',
      summary:
        'Walks the audit chain (each entry hashed with the one before): ok with the count and the head, or the first entry that does not fit',
      responses: {
        200: '{"ok":true,"entries","head"} or {"ok":false,"first_bad_id","reason"}',
        403: 'not PLATFORM_ADMIN',
      },
    },
    async (ctx) => {
      ctx.body = await verifyAuditChain(deps);
    },
  );

  route(
    router,
    deps,
    {
      method: 'get',
      path: '/audit-logs/export',
      access: { roles: ['PLATFORM_ADMIN', 'TEAM_ADMIN'], action: 'audit.export', targetType: 'audit_log' },
      tag: 'audit',
      summary:
        'Streams audit entries, oldest first, as NDJSON with their chain hashes (TEAM_ADMIN: own teams)',
      query: z.strictObject({ since: auditQuery.shape.since, until: auditQuery.shape.until }),
      responses: { 200: 'application/x-ndjson', 403: 'DEVELOPER' },
    },
    async (ctx, { query, caller }) => {
      const lines = await exportAuditLog(deps, caller, query);
      ctx.type = 'application/x-ndjson';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = Readable.from(lines);
    },
  );
}
