import { Migration } from '@mikro-orm/migrations';

/**
 * Releases, rollbacks and deploy freezes (v2): the `release` table, what a deployment is (`kind`,
 * `rollback_of`, `rolled_back_by`, `release_id`, a freeze override's reason), and the three new
 * policies, seeded as the contract says: `auto_rollback` disabled for prod, `promotion_gates`
 * enabled with no gates, `deploy_freeze` disabled with no windows.
 */
export class Migration20261203000002Releases extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "release" (
      "id" serial primary key,
      "job_id" varchar(255) not null constraint "release_job_id_unique" unique,
      "service_id" int not null references "service" ("id") on update cascade,
      "version" varchar(128) not null,
      "config" jsonb not null,
      "through" varchar(63) not null,
      "description" text null,
      "status" varchar(20) not null,
      "stages" jsonb not null,
      "requested_by" varchar(255) not null,
      "team" varchar(63) null,
      "idempotency_key" varchar(255) null,
      "request_hash" varchar(64) null,
      "correlation_id" varchar(128) not null,
      "error" text null,
      "freeze_override" text null,
      "created_at" timestamptz(6) not null,
      "updated_at" timestamptz(6) not null,
      "finished_at" timestamptz(6) null,
      constraint "release_service_id_idempotency_key_unique" unique ("service_id", "idempotency_key"));`);
    this.addSql(`create index "release_service_id_id_index" on "release" ("service_id", "id");`);

    this.addSql(`alter table "deployment"
      add column "kind" varchar(20) not null default 'deploy',
      add column "rollback_of" int null,
      add column "rolled_back_by" int null,
      add column "release_id" int null,
      add column "freeze_override" text null;`);
    // One automatic rollback per failed deployment, however often the step that starts it repeats.
    this.addSql(
      `create unique index "deployment_auto_rollback_of_unique" on "deployment" ("rollback_of") where "kind" = 'rollback' and "initiated_by" = 'auto-rollback';`,
    );
    this.addSql(`create index "deployment_release_id_index" on "deployment" ("release_id");`);

    const seed = (name: string, enabled: boolean, config: unknown): void =>
      this
        .addSql(`insert into "platform_policy" ("name", "kind", "enabled", "config", "updated_at", "updated_by")
        values ('${name}', '${name}', ${enabled}, '${JSON.stringify(config)}'::jsonb, now(), 'system')
        on conflict ("name") do nothing;`);
    seed('auto_rollback', false, { tiers: ['prod'] });
    seed('promotion_gates', true, { gates: [] });
    seed('deploy_freeze', false, { windows: [], tiers: [] });
  }

  override async down(): Promise<void> {
    this.addSql(
      `delete from "platform_policy" where "name" in ('auto_rollback', 'promotion_gates', 'deploy_freeze') and "updated_by" = 'system';`,
    );
    this.addSql(`drop index if exists "deployment_release_id_index";`);
    this.addSql(`drop index if exists "deployment_auto_rollback_of_unique";`);
    this
      .addSql(`alter table "deployment" drop column "kind", drop column "rollback_of", drop column "rolled_back_by",
      drop column "release_id", drop column "freeze_override";`);
    this.addSql(`drop table if exists "release";`);
  }
}
