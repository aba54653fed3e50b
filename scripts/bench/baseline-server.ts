/**
 * The baseline of the read-latency figure: a bare Koa app serving `GET /api/services/:id` and
 * `GET /api/services?limit=N` with exactly the SQL the API's ORM sends for them (captured with
 * MIKRO_ORM_DEBUG=true; MikroORM inlines the values and sends one simple-protocol query string, so
 * this does too) over a `pg` pool of the API's size, answering the same JSON. No authentication,
 * validation, ORM, metrics or request logging: what is left is what any Node service pays.
 * Run by `scripts/bench.ts` as a child process: `DATABASE_URL=… PORT=… node --import tsx scripts/bench/baseline-server.ts`.
 */
import Router from '@koa/router';
import Koa from 'koa';
import { Pool } from 'pg';

interface ServiceRow {
  id: number;
  name: string;
  tags: Record<string, string>;
  team_id: number | null;
  description: string | null;
  created_at: Date;
  updated_at: Date;
}
interface TeamRow {
  id: number;
  name: string;
}

// The ORM's pool holds at most 10 connections (src/db/orm.ts): the same here.
const pool = new Pool({ connectionString: process.env['DATABASE_URL'], max: 10 });

const serviceJson = (s: ServiceRow, team: TeamRow | null) => ({
  id: s.id,
  name: s.name,
  tags: s.tags,
  team: team ? { id: team.id, name: team.name } : null,
  description: s.description,
  created_at: s.created_at.toISOString(),
  updated_at: s.updated_at.toISOString(),
});

const router = new Router({ prefix: '/api' });

router.get('/services/:id', async (ctx) => {
  const id = Number(ctx.params['id']);
  if (!Number.isInteger(id) || id < 1) ctx.throw(400);
  const service = (
    await pool.query<ServiceRow>(`select "s0".* from "service" as "s0" where "s0"."id" = ${id} limit 1`)
  ).rows[0];
  if (!service) ctx.throw(404);
  const team =
    service.team_id === null
      ? null
      : ((
          await pool.query<TeamRow>(
            `select "t0".* from "team" as "t0" where "t0"."id" = ${service.team_id} limit 1`,
          )
        ).rows[0] ?? null);
  ctx.body = serviceJson(service, team);
});

router.get('/services', async (ctx) => {
  const limit = Math.min(200, Math.max(1, Number(ctx.query['limit'] ?? 50) || 50));
  const rows = (
    await pool.query<ServiceRow>(
      `select "s".* from "service" as "s" order by "s"."id" asc limit ${limit + 1}`,
    )
  ).rows;
  const teamIds = [...new Set(rows.map((r) => r.team_id).filter((t): t is number => t !== null))];
  const teams = new Map(
    (teamIds.length
      ? (
          await pool.query<TeamRow>(
            `select "t0".* from "team" as "t0" where "t0"."id" in (${teamIds.join(', ')})`,
          )
        ).rows
      : []
    ).map((t) => [t.id, t]),
  );
  const items = rows.slice(0, limit);
  const last = items[items.length - 1];
  ctx.body = {
    items: items.map((s) => serviceJson(s, s.team_id === null ? null : (teams.get(s.team_id) ?? null))),
    next_cursor:
      rows.length > limit && last ? Buffer.from(JSON.stringify({ id: last.id })).toString('base64url') : null,
  };
});

const app = new Koa();
app.use(router.routes());
const server = app.listen(Number(process.env['PORT']), '127.0.0.1', () =>
  process.stdout.write('baseline listening\n'),
);
process.once('SIGTERM', () => server.close(() => void pool.end().then(() => process.exit(0))));
