/**
 * The tamper-evident audit log against real PostgreSQL: the chain survives concurrent writers, and
 * an entry changed, removed or inserted with plain SQL is named by `verify`.
 */
import { Client } from 'pg';
import { recordChange } from '../../src/db/changes';
import { auditEntry } from '../../src/domain/lifecycle';
import { admin, auth, createTeam } from '../support/fixtures';
import { startStack, tokenFor, type TestStack } from '../support/stack';

let stack: TestStack;
let sql: Client;
beforeAll(async () => {
  stack = await startStack();
  sql = new Client({ connectionString: stack.databaseUrl });
  await sql.connect();
});
afterAll(async () => {
  await sql.end();
  await stack.close();
});

const verify = async () => {
  const res = await stack.http.get('/api/audit-logs/verify').set(auth(admin));
  expect(res.status).toBe(200);
  return res.body;
};

/** Writes `n` audit entries, one transaction each, through the platform's one writer. */
async function writeEntries(caller: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    await stack.orm.em.fork().transactional(async (em) => {
      recordChange(
        em,
        auditEntry(
          { actor: caller, correlationId: null },
          {
            action: 'test.write',
            outcome: 'success',
            targetType: 'test',
            targetId: i,
            details: { i, caller, nested: { b: 1, a: [2, { z: 1, y: 'ü' }] } },
          },
        ),
      );
    });
  }
}

describe('the audit chain', () => {
  it('verifies ok after 10,000 concurrent writes from 20 parallel callers, with entries = rows and head = the last hash', async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, c) =>
        writeEntries(`writer-${c}`, Number(process.env['CHAIN_WRITES'] ?? 500)),
      ),
    );
    const verdict = await verify();
    const rows = await sql.query('select count(*)::int as n from audit_log where hash is not null');
    const last = await sql.query('select hash from audit_log order by id desc limit 1');
    expect(verdict).toEqual({ ok: true, entries: rows.rows[0].n, head: last.rows[0].hash });
    expect(rows.rows[0].n).toBeGreaterThanOrEqual(20 * Number(process.env['CHAIN_WRITES'] ?? 500));
    // Ids follow commit order: each entry names the hash of the one with the next lower id.
    const broken = await sql.query(
      `select count(*)::int as n from audit_log a join audit_log b on b.id = (select max(id) from audit_log where id < a.id)
        where a.prev_hash <> b.hash`,
    );
    expect(broken.rows[0].n).toBe(0);
  }, 300_000);

  it('names the first bad entry after an UPDATE of one row with plain SQL', async () => {
    for (let i = 0; i < 5; i++) await createTeam(stack);
    const { rows } = await sql.query('select id from audit_log order by id desc offset 3 limit 1');
    const id = rows[0].id as number;
    const before = await sql.query('select details from audit_log where id = $1', [id]);
    await sql.query(`update audit_log set details = details || '{"edited": true}' where id = $1`, [id]);
    try {
      expect(await verify()).toMatchObject({
        ok: false,
        first_bad_id: id,
        reason: expect.stringContaining('changed'),
      });
    } finally {
      await sql.query('update audit_log set details = $2 where id = $1', [id, before.rows[0].details]);
    }
    expect((await verify()).ok).toBe(true);
  });

  it('names the entry after a DELETE of one row', async () => {
    for (let i = 0; i < 4; i++) await createTeam(stack);
    const { rows } = await sql.query('select * from audit_log order by id desc offset 2 limit 2');
    const [after, removed] = rows as { id: number }[];
    await sql.query('delete from audit_log where id = $1', [removed!.id]);
    const verdict = await verify();
    expect(verdict).toMatchObject({
      ok: false,
      first_bad_id: Number(after!.id),
      reason: expect.stringContaining('removed'),
    });
    // Put it back as it was: the chain is whole again.
    const r = removed as unknown as Record<string, unknown>;
    await sql.query(
      `insert into audit_log (id, at, actor, actor_roles, action, outcome, target_type, target_id, team, correlation_id, details, dedupe_key, prev_hash, hash)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
      [
        r['id'],
        r['at'],
        r['actor'],
        JSON.stringify(r['actor_roles']),
        r['action'],
        r['outcome'],
        r['target_type'],
        r['target_id'],
        r['team'],
        r['correlation_id'],
        JSON.stringify(r['details']),
        r['dedupe_key'],
        r['prev_hash'],
        r['hash'],
      ],
    );
    expect((await verify()).ok).toBe(true);
  });

  it('names an INSERT in the middle (an id no writer used), and the last entries removed', async () => {
    // A writer whose transaction rolled back leaves an id unused: a forger can fill it.
    const [{ gap }] = (await sql.query(`select nextval('audit_log_id_seq')::int as gap`)).rows;
    await createTeam(stack);
    await sql.query(
      `insert into audit_log (id, at, actor, actor_roles, action, outcome, target_type, details)
       values ($1, now(), 'mallory', '["PLATFORM_ADMIN"]', 'policy.update', 'success', 'policy', '{}')`,
      [gap],
    );
    expect(await verify()).toMatchObject({
      ok: false,
      first_bad_id: gap,
      reason: expect.stringContaining('no hash'),
    });
    await sql.query('delete from audit_log where id = $1', [gap]);
    expect((await verify()).ok).toBe(true);
    const { rows } = await sql.query('select id from audit_log order by id desc limit 1');
    const lastId = rows[0].id as number;
    const saved = await sql.query('select * from audit_log where id = $1', [lastId]);
    await sql.query('delete from audit_log where id = $1', [lastId]);
    expect(await verify()).toMatchObject({
      ok: false,
      reason: expect.stringContaining('last entries were removed'),
    });
    const r = saved.rows[0] as Record<string, unknown>;
    await sql.query(
      `insert into audit_log (id, at, actor, actor_roles, action, outcome, target_type, target_id, team, correlation_id, details, dedupe_key, prev_hash, hash)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
      [
        r['id'],
        r['at'],
        r['actor'],
        JSON.stringify(r['actor_roles']),
        r['action'],
        r['outcome'],
        r['target_type'],
        r['target_id'],
        r['team'],
        r['correlation_id'],
        JSON.stringify(r['details']),
        r['dedupe_key'],
        r['prev_hash'],
        r['hash'],
      ],
    );
    expect((await verify()).ok).toBe(true);
  });

  it('is for PLATFORM_ADMIN only', async () => {
    const res = await stack.http
      .get('/api/audit-logs/verify')
      .set(auth(tokenFor('ta', ['TEAM_ADMIN'], ['x'])));
    expect(res.status).toBe(403);
  });
});

describe('the audit export', () => {
  it('streams NDJSON with the hashes, oldest first; a TEAM_ADMIN gets only own teams', async () => {
    const mine = await createTeam(stack);
    const other = await createTeam(stack);
    for (const t of [mine, other])
      await stack.http
        .patch(`/api/teams/${t.id}`)
        .set(auth(admin))
        .send({ display_name: `Team ${t.name}` });
    const all = await stack.http
      .get('/api/audit-logs/export')
      .set(auth(admin))
      .buffer(true)
      .parse((res, cb) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => cb(null, text));
      });
    expect(all.status).toBe(200);
    expect(all.headers['content-type']).toContain('application/x-ndjson');
    const lines = (all.body as string)
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const count = await sql.query('select count(*)::int as n from audit_log');
    expect(lines).toHaveLength(count.rows[0].n);
    expect(lines.map((l) => l.id)).toEqual([...lines.map((l) => l.id)].sort((a, b) => a - b));
    expect(lines.at(-1)).toMatchObject({ hash: expect.stringMatching(/^[0-9a-f]{64}$/) });
    const teamAdmin = tokenFor('ta-exp', ['TEAM_ADMIN'], [mine.name]);
    const scoped = await stack.http
      .get('/api/audit-logs/export')
      .set(auth(teamAdmin))
      .buffer(true)
      .parse((res, cb) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => cb(null, text));
      });
    const teams = new Set(
      (scoped.body as string)
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).team),
    );
    expect([...teams]).toEqual([mine.name]);
    const developer = await stack.http
      .get('/api/audit-logs/export')
      .set(auth(tokenFor('d', ['DEVELOPER'], [mine.name])));
    expect(developer.status).toBe(403);
  });
});
