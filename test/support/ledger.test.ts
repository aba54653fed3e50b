/**
 * The ledger check the fault suite and the soak end with: it must find every way the durable record
 * can be wrong, or those suites pass without checking. Rows are written straight into a fresh database.
 */
import { Pool } from 'pg';
import { ledger } from './ledger';
import { freshDatabase } from './stack';

let db: Awaited<ReturnType<typeof freshDatabase>>;
let sql: Pool;
let serviceId: number;
beforeAll(async () => {
  db = await freshDatabase();
  sql = new Pool({ connectionString: db.url, max: 2 });
  serviceId = (
    await sql.query<{ id: number }>(
      `insert into service (name, tags, created_at, updated_at) values ('svc', '{}', now(), now()) returning id`,
    )
  ).rows[0]!.id;
});
afterAll(async () => {
  await sql?.end();
  await db?.drop();
});

let n = 0;
/** A deployment on an environment of its own with `timeline`, its status the timeline's last. */
async function deployment(timeline: string[]): Promise<number> {
  n++;
  const envId = (
    await sql.query<{ id: number }>(
      `insert into environment (service_id, name, tier, status, config, job_id, created_by, created_at, updated_at)
       values ($1, $2, 'dev', 'ready', '{}', $3, 't', now(), now()) returning id`,
      [serviceId, `env-${n}`, `provision-${n}`],
    )
  ).rows[0]!.id;
  const entries = JSON.stringify(
    timeline.map((status) => ({ status, at: new Date().toISOString(), actor: 't' })),
  );
  return (
    await sql.query<{ id: number }>(
      `insert into deployment (job_id, service_id, environment_id, tier, version, status, requested_by, config, approvals_required,
         approval_timeout_seconds, correlation_id, timeline, created_at, updated_at)
       values ($1, $2, $3, 'dev', '1.0.0', $4, 't', '{}', 0, 0, 'c', $5, now(), now()) returning id`,
      [`deploy-${n}`, serviceId, envId, timeline.at(-1), entries],
    )
  ).rows[0]!.id;
}

/** The events the platform writes beside these audit actions (the status changes it announces). */
const ANNOUNCED: Record<string, string> = {
  'deployment.create': 'deployment.created',
  'deployment.awaiting_approval': 'deployment.awaiting_approval',
  'deployment.succeeded': 'deployment.succeeded',
  'deployment.failed': 'deployment.failed',
  'deployment.rejected': 'deployment.rejected',
  'deployment.expired': 'deployment.expired',
  'deployment.cancelled': 'deployment.cancelled',
};

/**
 * Audit entries about deployment `id` (`action` or `action:outcome`), each with the event the
 * platform writes beside it (`action:success:unannounced` leaves the event out).
 */
async function audited(id: number, ...actions: string[]): Promise<void> {
  for (const a of actions) {
    const [action, outcome = 'success', unannounced] = a.split(':');
    await sql.query(
      `insert into audit_log (at, actor, actor_roles, action, outcome, target_type, target_id, details) values (now(), 't', '[]', $1, $2, 'deployment', $3, '{}')`,
      [action, outcome, String(id)],
    );
    const event = ANNOUNCED[action!];
    if (event && outcome === 'success' && !unannounced)
      await sql.query(
        `insert into event (type, at, resource_type, resource_id, data) values ($1, now(), 'deployment', $2, '{}')`,
        [event, id],
      );
  }
}

const approved = (id: number, approver: string) =>
  sql.query(
    `insert into approval (deployment_id, approver, decision, at) values ($1, $2, 'approve', now())`,
    [id, approver],
  );

describe('ledger', () => {
  it('passes a deployment whose every status is audited once', async () => {
    const id = await deployment(['pending', 'awaiting_approval', 'in_progress', 'succeeded']);
    await audited(
      id,
      'deployment.create',
      'deployment.awaiting_approval',
      'deployment.approve',
      'deployment.in_progress',
      'deployment.succeeded',
    );
    await approved(id, 'bob');
    const book = await ledger(sql, [id]);
    expect(book).toMatchObject({
      repeatedTimeline: [],
      mismatches: [],
      refusals: [],
      locksLeft: 0,
      entries: { timeline: 4, audit: 4 },
    });
    expect(book.status).toEqual(new Map([[id, 'succeeded']]));
  });

  it.each([
    // A change the one writer never wrote is missing from both records.
    [
      'a status not audited',
      ['deployment.create', 'deployment.in_progress'],
      ['audit succeeded ×0', 'events succeeded ×0'],
    ],
    [
      'a status audited twice',
      ['deployment.create', 'deployment.in_progress', 'deployment.succeeded', 'deployment.succeeded:failure'],
      ['audit succeeded ×2'],
    ],
    [
      'the first status not audited',
      ['deployment.in_progress', 'deployment.succeeded'],
      ['audit pending ×0', 'events pending ×0'],
    ],
    [
      'a status audited that the timeline lacks',
      ['deployment.create', 'deployment.in_progress', 'deployment.succeeded', 'deployment.failed'],
      ['audit failed ×1 (not in the timeline)', 'events failed ×1 (not in the timeline)'],
    ],
    [
      'a decision audited but not recorded',
      ['deployment.create', 'deployment.in_progress', 'deployment.succeeded', 'deployment.approve'],
      ['decisions audited 1, recorded 0'],
    ],
  ])('finds %s', async (_what, actions, mismatches) => {
    const id = await deployment(['pending', 'in_progress', 'succeeded']);
    await audited(id, ...actions);
    expect((await ledger(sql, [id])).mismatches).toEqual(mismatches.map((m) => `${id} ${m}`));
  });

  it('finds a decision recorded but not audited, and keeps refused decisions apart', async () => {
    const id = await deployment(['pending', 'awaiting_approval', 'in_progress', 'succeeded']);
    await audited(
      id,
      'deployment.create',
      'deployment.awaiting_approval',
      'deployment.approve:denied',
      'deployment.in_progress',
      'deployment.succeeded',
    );
    await approved(id, 'bob');
    const book = await ledger(sql, [id]);
    expect(book.mismatches).toEqual([`${id} decisions audited 0, recorded 1`]);
    expect(book.refusals).toEqual([`${id} deployment.approve`]);
  });

  it('keeps any refused request apart from the status changes', async () => {
    const id = await deployment(['pending', 'in_progress', 'succeeded']);
    await audited(
      id,
      'deployment.create',
      'deployment.decide:denied',
      'deployment.in_progress',
      'deployment.succeeded',
    );
    expect(await ledger(sql, [id])).toMatchObject({ mismatches: [], refusals: [`${id} deployment.decide`] });
  });

  it('finds a repeated status in the timeline', async () => {
    const id = await deployment(['pending', 'in_progress', 'in_progress', 'succeeded']);
    await audited(id, 'deployment.create', 'deployment.in_progress', 'deployment.succeeded');
    expect((await ledger(sql, [id])).repeatedTimeline).toEqual([id]);
  });

  it('takes a status repeated by a note the audit log holds (a target reporting progress) as no repeat', async () => {
    const id = await deployment(['pending', 'in_progress', 'in_progress', 'succeeded']);
    await audited(
      id,
      'deployment.create',
      'deployment.in_progress',
      'deployment.note',
      'deployment.succeeded',
    );
    expect(await ledger(sql, [id])).toMatchObject({ repeatedTimeline: [], mismatches: [] });
  });

  it('finds a status change the event outbox does not announce', async () => {
    const id = await deployment(['pending', 'in_progress', 'succeeded']);
    await audited(
      id,
      'deployment.create',
      'deployment.in_progress',
      'deployment.succeeded:success:unannounced',
    );
    expect((await ledger(sql, [id])).mismatches).toEqual([`${id} events succeeded ×0`]);
  });

  it('counts a lock left by an active deployment', async () => {
    const id = await deployment(['pending', 'in_progress']);
    await audited(id, 'deployment.create', 'deployment.in_progress');
    expect(await ledger(sql, [id])).toMatchObject({ mismatches: [], locksLeft: 1 });
  });

  it('checks cancel requests against the count given, and reads every deployment without ids', async () => {
    const id = await deployment(['pending', 'in_progress', 'cancelled']);
    await audited(
      id,
      'deployment.create',
      'deployment.in_progress',
      'deployment.cancel',
      'deployment.cancelled',
      'deployment.cancel:denied',
    );
    expect((await ledger(sql, [id], { cancels: new Map([[id, 1]]) })).mismatches).toEqual([]);
    expect((await ledger(sql, [id], { cancels: new Map() })).mismatches).toEqual([
      `${id} cancels audited 1, requested 0`,
    ]);
    const all = await ledger(db.url);
    expect(all.status.get(id)).toBe('cancelled');
    expect(all.status.size).toBe(n);
  });
});
