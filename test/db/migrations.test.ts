/**
 * The migrations against a real, empty PostgreSQL database (not the migrated template): up creates
 * every table, seeds the default policies and the partial unique index that locks an environment;
 * down removes it all; up again works. Also compares the migrated schema with the entities.
 */
import { randomUUID } from 'node:crypto';
import { Client } from 'pg';
import { initMigratingORM } from '../../src/db/migrator';
import type { MikroORM } from '../../src/db/orm';
import { DEFAULT_POLICIES } from '../../src/domain/policies';

const TABLES = ['approval', 'audit_log', 'deployment', 'environment', 'platform_policy', 'service', 'team'];
/** The tables once every migration ran. */
const ALL_TABLES = [
  ...TABLES,
  'audit_chain_head',
  'callback_receipt',
  'event',
  'job_output',
  'release',
  'target',
  'webhook_delivery',
  'webhook_subscription',
].sort();
const ALL_MIGRATIONS = [
  'Migration20261125000001_initial',
  'Migration20261201000001_policy_durations',
  'Migration20261203000001_delivery_targets',
  'Migration20261203000002_releases',
  'Migration20261203000003_events_and_audit_chain',
];

const adminUrl = process.env['IDP_TEST_PG_ADMIN_URL']!;
const dbName = `idp_mig_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
let dbUrl: string;
let orm: MikroORM | undefined;
let db: Client | undefined;

async function tables(): Promise<string[]> {
  const res = await db!.query<{ table_name: string }>(
    `select table_name from information_schema.tables
      where table_schema = 'public' and table_type = 'BASE TABLE' and table_name <> 'mikro_orm_migrations'
      order by table_name`,
  );
  return res.rows.map((r) => r.table_name);
}

async function policies(): Promise<
  { name: string; kind: string; enabled: boolean; config: unknown; updated_by: string }[]
> {
  const res = await db!.query(
    'select name, kind, enabled, config, updated_by from platform_policy order by name',
  );
  return res.rows;
}

async function appliedMigrations(): Promise<string[]> {
  const res = await db!.query<{ name: string }>('select name from mikro_orm_migrations order by id');
  return res.rows.map((r) => r.name);
}

beforeAll(async () => {
  expect(adminUrl).toBeTruthy();
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`create database "${dbName}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${dbName}`;
  dbUrl = url.toString();
  db = new Client({ connectionString: dbUrl });
  await db.connect();
  orm = await initMigratingORM(dbUrl, 2);
});

afterAll(async () => {
  await orm?.close(true);
  await db?.end();
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists "${dbName}" with (force)`);
  } finally {
    await admin.end();
  }
});

// The steps build on one another (one database), so they run in order in one describe.
describe('migrations on an empty database', () => {
  it('starts with no table at all', async () => {
    expect(await tables()).toEqual([]);
  });

  it('up creates every table', async () => {
    const applied = await orm!.getMigrator().up({ to: 'Migration20261125000001_initial' });
    expect(applied.map((m) => m.name)).toEqual(['Migration20261125000001_initial']);
    expect(await tables()).toEqual(TABLES);
    expect(await appliedMigrations()).toEqual(['Migration20261125000001_initial']);
  });

  it('up seeds the five default policies, enabled', async () => {
    const rows = await policies();
    expect(rows).toHaveLength(5);
    expect(rows).toEqual(
      [...DEFAULT_POLICIES]
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((p) => ({ name: p.name, kind: p.kind, enabled: true, config: p.config, updated_by: 'system' })),
    );
    expect(rows.map((r) => r.name).sort()).toEqual([
      'allowed_values',
      'mandatory_tags',
      'prod_approvals',
      'promotion_order',
      'restricted_config_keys',
    ]);
  });

  it('the policy-durations migration rewrites stored timeouts outside 1 s to a year, and only those', async () => {
    const stored: [string, unknown, unknown][] = [
      ['pa_zero', '0s', '1s'],
      ['pa_zero_ms', '0ms', '1s'],
      ['pa_half', '500ms', '1s'],
      ['pa_number', 0, '1s'],
      ['pa_huge', '9999999d', '365d'],
      ['pa_huge_number', 40_000_000, '365d'],
      ['pa_day', '24h', '24h'],
      ['pa_ms', '1500ms', '1500ms'],
      ['pa_year', '365d', '365d'],
    ];
    for (const [name, timeout] of stored) {
      await db!.query(
        `insert into platform_policy (name, kind, enabled, config, updated_at, updated_by) values ($1, 'prod_approvals', false, $2, now(), 'test')`,
        [name, JSON.stringify({ tier: 'prod', required: 1, timeout })],
      );
    }
    const applied = await orm!.getMigrator().up({ to: 'Migration20261201000001_policy_durations' });
    expect(applied.map((m) => m.name)).toEqual(['Migration20261201000001_policy_durations']);
    const rows = await db!.query<{ name: string; config: { timeout: unknown }; updated_by: string }>(
      `select name, config, updated_by from platform_policy where name like 'pa\\_%' order by name`,
    );
    const after = Object.fromEntries(rows.rows.map((r) => [r.name, r.config.timeout]));
    expect(after).toEqual(Object.fromEntries(stored.map(([name, , expected]) => [name, expected])));
    // The seeded policy (24h) is untouched.
    expect((await policies()).find((p) => p.name === 'prod_approvals')).toMatchObject({
      updated_by: 'system',
    });
    await db!.query(`delete from platform_policy where name like 'pa\\_%'`);
  });

  it('the delivery-targets migration seeds the simulated target and puts every existing environment and deployment on it', async () => {
    await db!.query(
      `insert into service (id, name, tags, created_at, updated_at) values (90, 'old', '{}', now(), now())`,
    );
    await db!.query(
      `insert into environment (id, service_id, name, tier, status, config, job_id, created_by, created_at, updated_at)
       values (90, 90, 'dev', 'dev', 'ready', '{}', 'job-old', 'alice', now(), now())`,
    );
    const applied = await orm!.getMigrator().up({ to: 'Migration20261203000001_delivery_targets' });
    expect(applied.map((m) => m.name)).toEqual(['Migration20261203000001_delivery_targets']);
    const targets = await db!.query('select name, kind, config, secret from target');
    expect(targets.rows).toEqual([{ name: 'simulated', kind: 'simulated', config: {}, secret: null }]);
    const env = await db!.query('select target, verification, external_url from environment where id = 90');
    expect(env.rows).toEqual([{ target: 'simulated', verification: null, external_url: null }]);
    await db!.query('delete from environment where id = 90');
    await db!.query('delete from service where id = 90');
  });

  it('the releases migration adds the release table and seeds the three v2 policies as the contract says', async () => {
    const applied = await orm!.getMigrator().up({ to: 'Migration20261203000002_releases' });
    expect(applied.map((m) => m.name)).toEqual(['Migration20261203000002_releases']);
    const rows = (await policies()).filter((p) =>
      ['auto_rollback', 'promotion_gates', 'deploy_freeze'].includes(p.name),
    );
    expect(rows).toEqual([
      {
        name: 'auto_rollback',
        kind: 'auto_rollback',
        enabled: false,
        config: { tiers: ['prod'] },
        updated_by: 'system',
      },
      {
        name: 'deploy_freeze',
        kind: 'deploy_freeze',
        enabled: false,
        config: { windows: [], tiers: [] },
        updated_by: 'system',
      },
      {
        name: 'promotion_gates',
        kind: 'promotion_gates',
        enabled: true,
        config: { gates: [] },
        updated_by: 'system',
      },
    ]);
  });

  it('the events migration starts the audit chain after the entries already written', async () => {
    await db!.query(
      `insert into audit_log (at, actor, actor_roles, action, outcome, target_type, details) values (now(), 'old', '[]', 'x.y', 'success', 'x', '{}')`,
    );
    const last = (await db!.query('select max(id)::int as id from audit_log')).rows[0].id as number;
    const applied = await orm!.getMigrator().up();
    expect(applied.map((m) => m.name)).toEqual(['Migration20261203000003_events_and_audit_chain']);
    expect(await tables()).toEqual(ALL_TABLES);
    const head = await db!.query('select id, last_hash, first_chained_id::int from audit_chain_head');
    expect(head.rows).toEqual([{ id: 1, last_hash: '0'.repeat(64), first_chained_id: last + 1 }]);
    await db!.query('delete from audit_log');
  });

  it('up creates the environment lock as a partial unique index on deployment', async () => {
    const res = await db!.query<{ tablename: string; indexdef: string }>(
      `select tablename, indexdef from pg_indexes where schemaname = 'public' and indexname = 'deployment_environment_active_lock'`,
    );
    expect(res.rows).toHaveLength(1);
    const { tablename, indexdef } = res.rows[0]!;
    expect(tablename).toBe('deployment');
    expect(indexdef).toMatch(/^CREATE UNIQUE INDEX/);
    expect(indexdef).toMatch(/\(environment_id\)/);
    expect(indexdef).toContain('WHERE');
    for (const status of ['pending', 'awaiting_approval', 'in_progress', 'verifying'])
      expect(indexdef).toContain(`'${status}'`);
    for (const status of ['succeeded', 'failed', 'rejected', 'expired', 'cancelled'])
      expect(indexdef).not.toContain(`'${status}'`);
  });

  it('the lock admits one active deployment per environment and any number of finished ones', async () => {
    await db!.query('begin');
    try {
      await db!.query(
        `insert into service (id, name, tags, created_at, updated_at) values (1, 'svc', '{}', now(), now())`,
      );
      await db!.query(
        `insert into environment (id, service_id, name, tier, status, config, job_id, created_by, created_at, updated_at)
         values (1, 1, 'dev', 'dev', 'ready', '{}', 'job-env', 'alice', now(), now())`,
      );
      const insert = (jobId: string, status: string) =>
        db!.query(
          `insert into deployment (job_id, service_id, environment_id, tier, version, status, requested_by, config,
             approvals_required, approval_timeout_seconds, correlation_id, timeline, created_at, updated_at)
           values ($1, 1, 1, 'dev', '1.0.0', $2, 'alice', '{}', 0, 0, 'c', '[]', now(), now())`,
          [jobId, status],
        );
      await insert('d1', 'succeeded');
      await insert('d2', 'failed');
      await insert('d3', 'succeeded');
      await insert('d4', 'in_progress');
      await db!.query('savepoint second_active');
      await expect(insert('d5', 'pending')).rejects.toMatchObject({
        code: '23505',
        constraint: 'deployment_environment_active_lock',
      });
      await db!.query('rollback to savepoint second_active');
      await expect(insert('d6', 'awaiting_approval')).rejects.toMatchObject({ code: '23505' });
    } finally {
      await db!.query('rollback');
    }
    expect((await db!.query('select count(*)::int as n from deployment')).rows[0].n).toBe(0);
  });

  it('matches the entities: the schema generator finds no missing table, column or real difference', async () => {
    const diff = await orm!.getSchemaGenerator().getUpdateSchemaSQL({ wrap: false });
    // Printed for the record. What remains is cosmetic (constraint names, the indexes the migration
    // adds by hand and the entities do not declare, defaults inferred from property initialisers);
    // what would be real (missing tables/columns, nullability, types, foreign key rules) must not be there.
    if (diff.trim() !== '')
      console.log(`schema diff between the entities and the migrated database:\n${diff}`);
    expect(diff).not.toMatch(/create table/i);
    expect(diff).not.toMatch(/drop table/i);
    expect(diff).not.toMatch(/add column|drop column/i);
    expect(diff).not.toMatch(/(set|drop) not null/i);
    const lines = diff.split('\n').map((l) => l.trim());
    // The generator re-states a column's type whenever it adds a default (the entities' property
    // initialisers become defaults the migration does not declare): harmless. A type change on its
    // own would be a real mismatch (a length or type that differs).
    for (const line of lines) {
      const m = /^alter table "(\w+)" alter column "(\w+)" type /.exec(line);
      if (m)
        expect(lines).toContainEqual(
          expect.stringMatching(new RegExp(`^alter table "${m[1]}" alter column "${m[2]}" set default `)),
        );
    }
    // Foreign keys only differ in name (PostgreSQL's *_fkey against the ORM's *_foreign): each one
    // the generator adds replaces one it drops, on the same table and column, with the same
    // references and the same update/delete rules.
    const squash = (sql: string): string => sql.toLowerCase().replace(/[\s";]/g, '');
    const existing = await db!.query<{ table: string; def: string }>(
      `select conrelid::regclass::text as table, pg_get_constraintdef(oid) as def from pg_constraint where contype = 'f'`,
    );
    for (const line of lines) {
      const m = /^alter table "(\w+)" add constraint "\w+" (foreign key \("(\w+)"\).*)$/.exec(line);
      if (!m) continue;
      expect(lines).toContain(`alter table "${m[1]}" drop constraint "${m[1]}_${m[3]}_fkey";`);
      expect(existing.rows.filter((r) => r.table === m[1]).map((r) => squash(r.def))).toContain(
        squash(m[2]!),
      );
    }
    for (const line of lines) {
      const m = /^alter table "(\w+)" drop constraint "(\w+)_fkey";$/.exec(line);
      if (m) {
        const column = m[2]!.slice(m[1]!.length + 1);
        expect(lines).toContainEqual(
          expect.stringMatching(
            new RegExp(`^alter table "${m[1]}" add constraint "\\w+" foreign key \\("${column}"\\)`),
          ),
        );
      }
    }
  });

  it('down removes every table and the record of the migration', async () => {
    const reverted = await orm!.getMigrator().down({ to: 0 });
    expect(reverted.map((m) => m.name)).toEqual([...ALL_MIGRATIONS].reverse());
    expect(await tables()).toEqual([]);
    expect(await appliedMigrations()).toEqual([]);
    const idx = await db!.query(
      `select indexname from pg_indexes where schemaname = 'public' and tablename <> 'mikro_orm_migrations'`,
    );
    expect(idx.rows).toEqual([]);
    expect(await orm!.getMigrator().getPendingMigrations()).toHaveLength(ALL_MIGRATIONS.length);
  });

  it('up again recreates everything: the round trip is repeatable', async () => {
    const applied = await orm!.getMigrator().up();
    expect(applied.map((m) => m.name)).toEqual(ALL_MIGRATIONS);
    expect(await tables()).toEqual(ALL_TABLES);
    expect(await policies()).toHaveLength(8);
    const lock = await db!.query(
      `select indexdef from pg_indexes where indexname = 'deployment_environment_active_lock'`,
    );
    expect(lock.rows[0]?.indexdef).toContain('WHERE');
    // and a second up is a no-op
    expect(await orm!.getMigrator().up()).toEqual([]);
    expect(await policies()).toHaveLength(8);
  });
});
