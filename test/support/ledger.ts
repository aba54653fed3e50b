/**
 * The durable record of a set of deployments, read straight from PostgreSQL once everything has
 * settled, and checked the same way by the fault suite and the soak: each status once in its
 * deployment's timeline and once in every other record of status changes, each decision audited
 * once, and no environment lock left.
 */
import { Client as PgClient, type QueryResult, type QueryResultRow } from 'pg';
import { ACTIVE_DEPLOYMENT_STATUSES, type DeploymentStatus } from '../../src/domain/lifecycle';

/** What a query can be sent to: a `pg` Pool or Client. */
export interface Sql {
  query<R extends QueryResultRow>(text: string, values?: unknown[]): Promise<QueryResult<R>>;
}

/**
 * One durable record of deployments' status changes besides the timeline, read as the statuses it
 * holds per deployment, one per entry. The timeline is the reference: a record must hold each of its
 * statuses exactly once, and nothing else.
 */
export interface StatusRecord {
  /** Names the record in mismatches. */
  name: string;
  /** The statuses the record holds an entry for (all when absent). */
  covers?: (status: string) => boolean;
  /** deployment id → the statuses its entries name (in any order); an entry that names no status keeps its own name. */
  read(sql: Sql, ids: number[]): Promise<Map<number, string[]>>;
}

/** Entries of the audit log about a deployment that are not status changes: decisions and cancel requests. */
const REQUESTS = ['deployment.approve', 'deployment.reject', 'deployment.cancel'];
/** The audit entry of a note on a deployment (a timeline entry that repeats its status: a target's progress, a wait). */
const NOTE = 'deployment.note';
/** Entries about a deployment that neither change its status nor are requests: a rollback replaced it, a reminder went out. */
const FACTS = ['deployment.rolled_back', 'deployment.approval_reminder'];

/**
 * The audit log: the API's `deployment.create` for the first status (pending), then a
 * `deployment.<status>` entry per later one, whatever its outcome but `denied` (a refused request
 * changes no status: those are {@link Ledger.refusals}).
 */
const auditRecord: StatusRecord = {
  name: 'audit',
  async read(sql, ids) {
    const { rows } = await sql.query<{ target_id: string; action: string }>(
      "select target_id, action from audit_log where target_type = 'deployment' and target_id = any($1::text[]) and not (action = any($2::text[])) and outcome <> 'denied'",
      [ids.map(String), [...REQUESTS, NOTE, ...FACTS]],
    );
    const out = new Map<number, string[]>();
    for (const r of rows) {
      const status =
        r.action === 'deployment.create'
          ? 'pending'
          : r.action.startsWith('deployment.')
            ? r.action.slice('deployment.'.length)
            : r.action;
      out.set(Number(r.target_id), [...(out.get(Number(r.target_id)) ?? []), status]);
    }
    return out;
  },
};

/**
 * The event outbox: an event per announced status change (`deployment.created` for pending, then
 * `deployment.<status>`), none for `in_progress` and `verifying` (no event type announces them).
 */
const eventRecord: StatusRecord = {
  name: 'events',
  covers: (status) => status !== 'in_progress' && status !== 'verifying',
  async read(sql, ids) {
    const { rows } = await sql.query<{ resource_id: number; type: string }>(
      "select resource_id, type from event where resource_type = 'deployment' and resource_id = any($1::int[]) and type <> all($2::text[])",
      [ids, ['deployment.approval_reminder', 'deployment.rolled_back']],
    );
    const out = new Map<number, string[]>();
    for (const r of rows) {
      const status = r.type === 'deployment.created' ? 'pending' : r.type.slice('deployment.'.length);
      out.set(Number(r.resource_id), [...(out.get(Number(r.resource_id)) ?? []), status]);
    }
    return out;
  },
};

/** Every record checked against the timelines: the audit log and the event outbox. */
export const STATUS_RECORDS: readonly StatusRecord[] = [auditRecord, eventRecord];

/** What the database says about the deployments. */
export interface Ledger {
  /** deployment id → its status now */
  status: Map<number, DeploymentStatus>;
  /** deployments whose timeline repeats a status */
  repeatedTimeline: number[];
  /** `<id> <record> <status> ×<n>` for each status a record holds other than once, and decisions or cancels audited other than recorded */
  mismatches: string[];
  /** `<id> <action>` for each request about the deployment that was refused (audited `denied`): neither a status change nor a decision */
  refusals: string[];
  /** entries read: `timeline` and one count per record */
  entries: Record<string, number>;
  /** active deployments left on the environments of these deployments (the environment lock) */
  locksLeft: number;
}

/**
 * Reads and checks `ids` (every deployment when absent) on `db` (a URL or a pool). `cancels`, when
 * given, is how many cancel requests each deployment got: each must be audited once.
 */
export async function ledger(
  db: string | Sql,
  ids?: number[],
  opts: { cancels?: Map<number, number> } = {},
): Promise<Ledger> {
  if (typeof db !== 'string') return readLedger(db, ids, opts.cancels);
  const client = new PgClient({ connectionString: db });
  await client.connect();
  try {
    return await readLedger(client, ids, opts.cancels);
  } finally {
    await client.end();
  }
}

async function readLedger(
  sql: Sql,
  only: number[] | undefined,
  cancels: Map<number, number> | undefined,
): Promise<Ledger> {
  const { rows } = await sql.query<{
    id: string;
    status: DeploymentStatus;
    timeline: { status: string }[];
    environment_id: string;
  }>(
    'select id, status, timeline, environment_id from deployment where $1::bigint[] is null or id = any($1::bigint[]) order by id',
    [only ?? null],
  );
  const ids = rows.map((r) => Number(r.id));
  const result: Ledger = {
    status: new Map(),
    repeatedTimeline: [],
    mismatches: [],
    refusals: [],
    entries: { timeline: 0 },
    locksLeft: 0,
  };
  const records = await Promise.all(
    STATUS_RECORDS.map(async (record) => ({
      name: record.name,
      covers: record.covers ?? (() => true),
      held: await record.read(sql, ids),
    })),
  );
  for (const { name, held } of records)
    result.entries[name] = [...held.values()].reduce((n, s) => n + s.length, 0);
  const requests = await requestCounts(sql, ids);
  for (const row of rows) {
    const id = Number(row.id);
    result.status.set(id, row.status);
    // A note repeats the status before it: the changes are the entries that differ from the one before.
    const all = row.timeline.map((t) => t.status);
    const timeline = all.filter((status, i) => i === 0 || status !== all[i - 1]);
    const notes = all.length - timeline.length;
    result.entries['timeline']! += timeline.length;
    const r = requests.get(id) ?? { decisions: 0, approvals: 0, cancels: 0, notes: 0, refused: [] };
    // A status twice is a repeat, unless each extra entry is a note the audit log holds.
    if (new Set(timeline).size !== timeline.length || r.notes !== notes) result.repeatedTimeline.push(id);
    for (const { name, held, covers } of records) {
      const statuses = held.get(id) ?? [];
      for (const status of new Set(timeline.filter(covers))) {
        const n = statuses.filter((s) => s === status).length;
        if (n !== 1) result.mismatches.push(`${id} ${name} ${status} ×${n}`);
      }
      for (const status of new Set(statuses.filter((s) => !timeline.includes(s)))) {
        result.mismatches.push(
          `${id} ${name} ${status} ×${statuses.filter((s) => s === status).length} (not in the timeline)`,
        );
      }
    }
    if (r.decisions !== r.approvals)
      result.mismatches.push(`${id} decisions audited ${r.decisions}, recorded ${r.approvals}`);
    if (cancels && r.cancels !== (cancels.get(id) ?? 0))
      result.mismatches.push(`${id} cancels audited ${r.cancels}, requested ${cancels.get(id) ?? 0}`);
    result.refusals.push(...r.refused.map((action) => `${id} ${action}`));
  }
  const envIds = [...new Set(rows.map((r) => r.environment_id))];
  const locks = await sql.query<{ n: string }>(
    'select count(*)::text as n from deployment where environment_id = any($1::bigint[]) and status = any($2::text[])',
    [envIds, [...ACTIVE_DEPLOYMENT_STATUSES]],
  );
  result.locksLeft = Number(locks.rows[0]!.n);
  return result;
}

/** Per deployment: decisions, cancel requests and notes audited, approvals recorded, requests refused. */
interface RequestCounts {
  decisions: number;
  approvals: number;
  cancels: number;
  notes: number;
  refused: string[];
}

/** Per deployment: decisions and cancel requests audited, approvals recorded, and requests refused. */
async function requestCounts(sql: Sql, ids: number[]): Promise<Map<number, RequestCounts>> {
  const audit = await sql.query<{ target_id: string; action: string; outcome: string }>(
    "select target_id, action, outcome from audit_log where target_type = 'deployment' and target_id = any($1::text[]) and (action = any($2::text[]) or outcome = 'denied')",
    [ids.map(String), [...REQUESTS, NOTE]],
  );
  const approvals = await sql.query<{ deployment_id: string; n: string }>(
    'select deployment_id, count(*)::text as n from approval where deployment_id = any($1::bigint[]) group by 1',
    [ids],
  );
  const out = new Map<number, RequestCounts>();
  const of = (id: number) =>
    out.get(id) ?? out.set(id, { decisions: 0, approvals: 0, cancels: 0, notes: 0, refused: [] }).get(id)!;
  for (const a of approvals.rows) of(Number(a.deployment_id)).approvals = Number(a.n);
  for (const a of audit.rows) {
    const counts = of(Number(a.target_id));
    if (a.outcome === 'denied') counts.refused.push(a.action);
    else if (a.action === 'deployment.cancel') counts.cancels++;
    else if (a.action === NOTE) counts.notes++;
    else counts.decisions++;
  }
  return out;
}
