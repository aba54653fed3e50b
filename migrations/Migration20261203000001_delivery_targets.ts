import { Migration } from '@mikro-orm/migrations';

/**
 * Delivery targets (v2): the `target` table with the seeded `simulated` target, every environment
 * and deployment naming its target, what a target reports back (`external_url`, the callbacks it
 * sent, a command's output), an environment's verification, and the environment lock extended to
 * `verifying` (a deployment being verified still holds its environment).
 */
export class Migration20261203000001DeliveryTargets extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "target" (
      "id" serial primary key,
      "name" varchar(63) not null constraint "target_name_unique" unique,
      "kind" varchar(20) not null,
      "config" jsonb not null,
      "description" text null,
      "secret" text null,
      "previous_secret" text null,
      "previous_secret_until" timestamptz(6) null,
      "created_at" timestamptz(6) not null,
      "updated_at" timestamptz(6) not null);`);
    this.addSql(`insert into "target" ("name", "kind", "config", "description", "created_at", "updated_at")
      values ('simulated', 'simulated', '{}', 'waits, then reports success (config.simulate steers it)', now(), now());`);

    this.addSql(`alter table "environment"
      add column "target" varchar(63) not null default 'simulated',
      add column "verification" jsonb null,
      add column "external_url" text null;`);
    this.addSql(`alter table "deployment"
      add column "target" varchar(63) not null default 'simulated',
      add column "external_url" text null;`);

    this.addSql(`create table "job_output" (
      "job_id" varchar(255) primary key,
      "content" text not null,
      "total_bytes" bigint not null,
      "updated_at" timestamptz(6) not null);`);

    // A webhook-id is taken once per target: a callback signed for one job and replayed to another
    // job of the same target is a duplicate, not a second completion.
    this.addSql(`create table "callback_receipt" (
      "id" serial primary key,
      "target" varchar(63) not null,
      "job_id" varchar(255) not null,
      "webhook_id" varchar(255) not null,
      "status" varchar(20) not null,
      "received_at" timestamptz(6) not null,
      constraint "callback_receipt_target_webhook_id_unique" unique ("target", "webhook_id"));`);

    this.addSql(`drop index "deployment_environment_active_lock";`);
    this.addSql(`create unique index "deployment_environment_active_lock" on "deployment" ("environment_id")
      where "status" in ('pending', 'awaiting_approval', 'in_progress', 'verifying');`);
  }

  override async down(): Promise<void> {
    this.addSql(`drop index "deployment_environment_active_lock";`);
    // A deployment still verifying holds its lock as in_progress did before.
    this.addSql(`update "deployment" set "status" = 'in_progress' where "status" = 'verifying';`);
    this.addSql(`create unique index "deployment_environment_active_lock" on "deployment" ("environment_id")
      where "status" in ('pending', 'awaiting_approval', 'in_progress');`);
    this.addSql(`drop table if exists "callback_receipt";`);
    this.addSql(`drop table if exists "job_output";`);
    this.addSql(`alter table "deployment" drop column "target", drop column "external_url";`);
    this.addSql(
      `alter table "environment" drop column "target", drop column "verification", drop column "external_url";`,
    );
    this.addSql(`drop table if exists "target";`);
  }
}
