/**
 * The oracle of the security files: a second `pg` connection to the stack's database, with real bind
 * parameters and no ORM, independent of the code under test. Table digests prove "nothing changed".
 */
import type { Client as PgClient } from 'pg';

/** The tables whose rows only a 201/202 may add (the audit log records refusals too). */
export const TABLES = [
  'team',
  'service',
  'environment',
  'deployment',
  'approval',
  'platform_policy',
] as const;
export type Table = (typeof TABLES)[number];

/** Every table a statement smuggled into a request could drop. */
export const ALL_TABLES = [...TABLES, 'audit_log'] as const;

/** Row counts of {@link TABLES}. */
export async function rowCounts(pg: PgClient): Promise<Record<Table, number>> {
  const { rows } = await pg.query(
    `select ${TABLES.map((t) => `(select count(*)::int from ${t}) as ${t}`).join(', ')}`,
  );
  return rows[0];
}

/** A digest of every row of {@link TABLES}: a refused write leaves it as it was. */
export async function rowDigest(pg: PgClient): Promise<Record<Table, string>> {
  const digests = TABLES.map(
    (t) => `(select md5(coalesce(string_agg(x::text, '|' order by x::text), '')) from ${t} x) as ${t}`,
  );
  const { rows } = await pg.query(`select ${digests.join(', ')}`);
  return rows[0];
}

/** The id of the newest audit entry (0 when there is none): entries after it were written since. */
export async function lastAuditId(pg: PgClient): Promise<number> {
  return (await pg.query('select coalesce(max(id), 0)::int as id from audit_log')).rows[0].id;
}

/** For each of {@link ALL_TABLES}, whether it still exists. */
export async function tablesInPlace(pg: PgClient): Promise<Record<string, boolean>> {
  const { rows } = await pg.query(
    `select ${ALL_TABLES.map((t) => `to_regclass('public.${t}') is not null as ${t}`).join(', ')}`,
  );
  return rows[0];
}

/** What {@link tablesInPlace} answers while nothing was dropped. */
export const ALL_IN_PLACE: Record<string, boolean> = Object.fromEntries(ALL_TABLES.map((t) => [t, true]));
