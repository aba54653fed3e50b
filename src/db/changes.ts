/**
 * Where every audit entry, and the event it announces, is written: the one writer, so that nothing
 * is announced that did not happen and nothing that happened goes unannounced.
 *
 * `recordChange` only queues an entry on the transaction's EntityManager. Right before the
 * transaction commits (MikroORM's `beforeTransactionCommit`), the queued entries are written: the
 * events' data is read first (the resource as the API shows it, in this transaction), then the
 * audit chain's head row is locked, the entries and events get their ids, the entries their hashes,
 * and everything is inserted with the head updated and a NOTIFY sent — one statement. The lock is
 * held only from there to the commit, a millisecond or two, and it is what puts both the chain and
 * the event ids in commit order: a writer takes its ids only after the writer before it committed.
 * Taking it last also means a transaction never waits for a row lock while holding it.
 */
import type { EntityManager, EventSubscriber, FlushEventArgs, TransactionEventArgs } from '@mikro-orm/core';
import type { Deployment, Environment, Release } from '../domain/entities';
import type { AuditEntry } from '../domain/audit-entries';
import { eventTypeOf, type EventType } from '../domain/events';
import { eventsWritten } from '../metrics';
import { deploymentJson, environmentJson, releaseJson, type ViewSettings } from '../views/resources';
import { chainHash } from './audit-chain';

/** The row a change is about, when it is an event: the event's data is this row as the API shows it. */
export type Subject =
  | { type: 'deployment'; row: Deployment }
  | { type: 'environment'; row: Environment }
  | { type: 'release'; row: Release };

interface Queued {
  entry: AuditEntry;
  event: EventType | null;
  subject: Subject | undefined;
}

/** How changes are written in this process. */
export interface ChangeSettings {
  /** Chain the audit log (the default). Off only for the benchmark's baseline. */
  chain: boolean;
  views: ViewSettings;
}

const settings: ChangeSettings = {
  chain: true,
  views: { TEMPORAL_UI_URL: 'http://localhost:8233', TEMPORAL_NAMESPACE: 'default' },
};

/** The settings of `config`. */
export function changeSettings(config: ViewSettings & { IDP_AUDIT_CHAIN: 'on' | 'off' }): ChangeSettings {
  return {
    chain: config.IDP_AUDIT_CHAIN === 'on',
    views: { TEMPORAL_UI_URL: config.TEMPORAL_UI_URL, TEMPORAL_NAMESPACE: config.TEMPORAL_NAMESPACE },
  };
}

/** Sets how this process writes changes (the API and the worker call it at start). */
export function configureChanges(next: Partial<ChangeSettings>): void {
  Object.assign(settings, next);
}

/** The channel a NOTIFY on every commit with events goes to (its payload: the last event id). */
export const EVENTS_CHANNEL = 'idp_events';

const queued = new WeakMap<EntityManager, Queued[]>();

/**
 * Records an audit entry in `em`'s transaction, and the event it announces when it is one (then
 * `subject`, the row the change is about, is required). Written when the transaction commits.
 */
export function recordChange(em: EntityManager, entry: AuditEntry, subject?: Subject): void {
  const event = eventTypeOf(entry);
  if (event !== null && subject === undefined)
    throw new Error(`the change ${entry.action} is an event (${event}) and needs the row it is about`);
  const list = queued.get(em) ?? [];
  list.push({ entry, event, subject });
  queued.set(em, list);
}

type Execute = (sql: string, params: unknown[]) => Promise<Record<string, unknown>[]>;

/** The data of an event: its subject as the API shows it, read in the committing transaction. */
async function viewOf(subject: Subject, execute: Execute): Promise<Record<string, unknown>> {
  switch (subject.type) {
    case 'deployment': {
      // Decisions are taken from awaiting_approval on: a pending deployment has none to read.
      const approvals =
        subject.row.status === 'pending'
          ? []
          : await execute(
              'select approver, decision, comment, at from approval where deployment_id = ? order by id',
              [subject.row.id],
            );
      return deploymentJson(
        subject.row,
        approvals.map((a) => ({
          approver: String(a['approver']),
          decision: a['decision'] as 'approve' | 'reject',
          comment: (a['comment'] as string | null) ?? null,
          at: new Date(a['at'] as string),
        })),
        settings.views,
      );
    }
    case 'environment':
      return environmentJson(subject.row, settings.views);
    case 'release': {
      const ids = subject.row.stages
        .flatMap((s) => s.deployments.map((d) => d.deployment_id))
        .filter((id) => id !== null);
      const rows = ids.length
        ? await execute('select id, status from deployment where id = any(?::int[])', [`{${ids.join(',')}}`])
        : [];
      return releaseJson(
        subject.row,
        new Map(rows.map((r) => [Number(r['id']), String(r['status'])])),
        settings.views,
      );
    }
  }
}

const serviceOf = (s: Subject): number | null =>
  s.type === 'environment' ? s.row.serviceId : s.row.serviceId;

/** Writes the queued changes in the committing transaction (see the module's comment). */
async function writeQueued(list: Queued[], execute: Execute): Promise<void> {
  const events = await Promise.all(
    list.map(async (q) => (q.event && q.subject ? { q, data: await viewOf(q.subject, execute) } : null)),
  );
  const announced = events.filter((e): e is NonNullable<typeof e> => e !== null);
  // One statement takes the head's lock (an UPDATE locks its row before RETURNING is computed)
  // and, under it, the ids: so ids follow commit order.
  const ids = await execute(
    `${settings.chain ? 'update audit_chain_head set last_hash = last_hash where id = 1 returning last_hash,' : 'select'}
       (select array_agg(nextval('audit_log_id_seq')) from generate_series(1, ?)) as audit,
       (select array_agg(nextval('event_id_seq')) from generate_series(1, ?)) as events`,
    [list.length, announced.length],
  );
  let prev = settings.chain ? String(ids[0]!['last_hash']) : '';
  const auditIds = ((ids[0]!['audit'] as string[] | null) ?? []).map(Number);
  const eventIds = ((ids[0]!['events'] as string[] | null) ?? []).map(Number);
  const params: unknown[] = [];
  const auditRows = list.map(({ entry }, i) => {
    const id = auditIds[i]!;
    const hash = settings.chain ? chainHash(prev, { ...entry, id }) : null;
    params.push(id, entry.at, entry.actor, JSON.stringify(entry.actorRoles), entry.action, entry.outcome);
    params.push(
      entry.targetType,
      entry.targetId,
      entry.team,
      entry.correlationId,
      JSON.stringify(entry.details),
    );
    params.push(entry.dedupeKey, settings.chain ? prev : null, hash);
    if (hash) prev = hash;
    return '(?, ?, ?, ?::jsonb, ?, ?, ?, ?, ?, ?, ?::jsonb, ?, ?, ?)';
  });
  const eventRows = announced.map(({ q, data }, i) => {
    params.push(
      eventIds[i]!,
      q.event,
      q.entry.at,
      q.entry.team,
      serviceOf(q.subject!),
      q.subject!.type,
      q.subject!.row.id,
      JSON.stringify(data),
    );
    return '(?, ?, ?, ?, ?, ?, ?, ?::jsonb)';
  });
  const parts = [
    `a as (insert into audit_log (id, at, actor, actor_roles, action, outcome, target_type, target_id, team, correlation_id, details, dedupe_key, prev_hash, hash) values ${auditRows.join(', ')})`,
    ...(eventRows.length
      ? [
          `e as (insert into event (id, type, at, team, service_id, resource_type, resource_id, data) values ${eventRows.join(', ')})`,
        ]
      : []),
    ...(settings.chain ? ['h as (update audit_chain_head set last_hash = ? where id = 1)'] : []),
  ];
  if (settings.chain) params.push(prev);
  const notify = eventRows.length ? `select pg_notify('${EVENTS_CHANNEL}', ?)` : 'select 1';
  if (eventRows.length) params.push(String(eventIds[eventIds.length - 1]));
  await execute(`with ${parts.join(', ')} ${notify}`, params);
  for (const { q } of announced) eventsWritten.inc({ type: q.event! });
}

/** The MikroORM subscriber that writes queued changes before each commit and drops them on rollback. */
export const changesSubscriber: EventSubscriber = {
  async beforeTransactionCommit(args: TransactionEventArgs): Promise<void> {
    const list = queued.get(args.em);
    if (!list?.length) return;
    queued.delete(args.em);
    const connection = args.em.getConnection();
    await writeQueued(
      list,
      (sql, params) =>
        connection.execute(sql, params as never[], 'all', args.transaction) as Promise<
          Record<string, unknown>[]
        >,
    );
  },
  afterTransactionRollback(args: TransactionEventArgs): void {
    queued.delete(args.em);
  },
  // A flush that found nothing else to write opens no transaction, so nothing commits: the queued
  // changes (an audit entry of a refusal, say) are written in a transaction of their own.
  async afterFlush(args: FlushEventArgs): Promise<void> {
    const list = queued.get(args.em);
    if (!list?.length || args.em.isInTransaction()) return;
    queued.delete(args.em);
    const connection = args.em.getConnection('write');
    await connection.transactional(async (trx) => {
      await writeQueued(
        list,
        (sql, params) =>
          connection.execute(sql, params as never[], 'all', trx) as Promise<Record<string, unknown>[]>,
      );
    });
  },
};
