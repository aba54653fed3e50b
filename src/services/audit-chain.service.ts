/**
 * Proof of the audit log: `verify` walks the chain (a page at a time, in one consistent snapshot)
 * and names the first entry that does not fit; `export` streams entries as NDJSON with their hashes.
 */
import { IsolationLevel, type EntityManager } from '@mikro-orm/postgresql';
import { AT_TEXT_SQL, GENESIS, atText, chainHash } from '../db/audit-chain';
import { auditScope } from '../domain/rbac';
import { deny } from './audit-trail';
import type { Caller } from './caller';
import type { ServiceDeps } from './service-deps';

const PAGE = 1000;

/** What `verify` found. */
export type ChainVerdict =
  { ok: true; entries: number; head: string } | { ok: false; first_bad_id: number; reason: string };

interface Row {
  id: string;
  at: string;
  actor: string;
  actor_roles: string[];
  action: string;
  outcome: string;
  target_type: string;
  target_id: string | null;
  team: string | null;
  correlation_id: string | null;
  details: unknown;
  dedupe_key: string | null;
  prev_hash: string | null;
  hash: string | null;
}

const COLUMNS = `id, ${AT_TEXT_SQL} as at, actor, actor_roles, action, outcome, target_type, target_id, team, correlation_id, details, dedupe_key, prev_hash, hash`;

function query<T>(em: EntityManager, sql: string, params: unknown[]): Promise<T[]> {
  return em.getConnection().execute(sql, params as never[], 'all', em.getTransactionContext()) as Promise<
    T[]
  >;
}

/** Why `row` does not fit after `prev` in the chain, or null when it does. */
function misfit(prev: string, row: Row): string | null {
  if (row.hash === null || row.prev_hash === null)
    return 'it carries no hash: it was not written by the platform';
  if (row.prev_hash !== prev)
    return 'it does not follow the entry before it (an entry was removed before it, or it was inserted)';
  const computed = chainHash(prev, {
    id: Number(row.id),
    at: atText(row.at),
    actor: row.actor,
    actorRoles: row.actor_roles,
    action: row.action,
    outcome: row.outcome,
    targetType: row.target_type,
    targetId: row.target_id,
    team: row.team,
    correlationId: row.correlation_id,
    details: row.details,
    dedupeKey: row.dedupe_key,
  });
  return computed === row.hash
    ? null
    : 'its content does not match its hash (it was changed after it was written)';
}

/** Walks the whole chain in one snapshot, in constant memory (a page at a time). */
export async function verifyAuditChain(deps: ServiceDeps): Promise<ChainVerdict> {
  return deps.orm.em.fork().transactional(
    async (em) => {
      const [head] = await query<{ last_hash: string; first_chained_id: string }>(
        em,
        'select last_hash, first_chained_id from audit_chain_head where id = 1',
        [],
      );
      let prev = GENESIS;
      let after = Number(head!.first_chained_id) - 1;
      let entries = 0;
      for (;;) {
        const rows = await query<Row>(
          em,
          `select ${COLUMNS} from audit_log where id > ? order by id limit ?`,
          [after, PAGE],
        );
        for (const row of rows) {
          const why = misfit(prev, row);
          if (why) return { ok: false, first_bad_id: Number(row.id), reason: why };
          prev = row.hash!;
          entries += 1;
        }
        if (rows.length > 0) after = Number(rows[rows.length - 1]!.id);
        if (rows.length < PAGE) break;
      }
      if (prev !== head!.last_hash)
        return {
          ok: false,
          first_bad_id: after + 1,
          reason: 'the chain ends before its head: its last entries were removed',
        };
      return { ok: true, entries, head: prev };
    },
    { isolationLevel: IsolationLevel.REPEATABLE_READ, readOnly: true },
  );
}

/** The entries a caller may export, oldest first, as NDJSON lines (a page at a time, pulled as the client reads). */
export async function exportAuditLog(
  deps: ServiceDeps,
  caller: Caller,
  range: { since?: string; until?: string },
): Promise<AsyncGenerator<string>> {
  const scope = auditScope(caller.actor);
  if (scope === null)
    await deny(
      deps.orm,
      caller,
      { action: 'audit.export', targetType: 'audit_log' },
      'only PLATFORM_ADMIN and TEAM_ADMIN may export the audit log',
    );
  const teams = scope === 'all' ? null : scope!;
  const em = deps.orm.em.fork();
  async function* lines(): AsyncGenerator<string> {
    let after = 0;
    for (;;) {
      const rows = await query<Row>(
        em,
        `select ${COLUMNS} from audit_log where id > ?
           and (?::timestamptz is null or at >= ?::timestamptz) and (?::timestamptz is null or at < ?::timestamptz)
           and (?::jsonb is null or team in (select jsonb_array_elements_text(?::jsonb)))
         order by id limit ?`,
        [
          after,
          range.since ?? null,
          range.since ?? null,
          range.until ?? null,
          range.until ?? null,
          teams && JSON.stringify(teams),
          teams && JSON.stringify(teams),
          PAGE,
        ],
      );
      for (const r of rows) {
        yield `${JSON.stringify({
          id: Number(r.id),
          at: atText(r.at),
          actor: r.actor,
          actor_roles: r.actor_roles,
          action: r.action,
          outcome: r.outcome,
          target_type: r.target_type,
          target_id: r.target_id,
          team: r.team,
          correlation_id: r.correlation_id,
          details: r.details,
          dedupe_key: r.dedupe_key,
          prev_hash: r.prev_hash,
          hash: r.hash,
        })}\n`;
      }
      if (rows.length < PAGE) return;
      after = Number(rows[rows.length - 1]!.id);
    }
  }
  return lines();
}
