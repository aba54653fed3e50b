import { Migration } from '@mikro-orm/migrations';

/**
 * Notifications and proof (v2): the event outbox (`event`, ids in commit order), the audit chain
 * (each entry's hash and the one before; the head row whose lock orders the writers), event webhook
 * subscriptions and their delivery log. Entries written before this migration are not chained: the
 * chain begins with the first entry after it (`first_chained_id`).
 */
export class Migration20261203000003EventsAndAuditChain extends Migration {
  override async up(): Promise<void> {
    this.addSql(
      `alter table "audit_log" add column "prev_hash" varchar(64) null, add column "hash" varchar(64) null;`,
    );
    this.addSql(`create table "audit_chain_head" (
      "id" int primary key,
      "last_hash" varchar(64) not null,
      "first_chained_id" bigint not null);`);
    this.addSql(`insert into "audit_chain_head" ("id", "last_hash", "first_chained_id")
      select 1, repeat('0', 64), coalesce(max("id"), 0) + 1 from "audit_log";`);

    this.addSql(`create sequence "event_id_seq";`);
    this.addSql(`create table "event" (
      "id" bigint primary key default nextval('event_id_seq'),
      "type" varchar(63) not null,
      "at" timestamptz(6) not null,
      "team" varchar(63) null,
      "service_id" int null,
      "resource_type" varchar(63) not null,
      "resource_id" int not null,
      "data" jsonb not null);`);
    this.addSql(`alter sequence "event_id_seq" owned by "event"."id";`);
    this.addSql(`create index "event_team_id_index" on "event" ("team", "id");`);
    this.addSql(`create index "event_service_id_id_index" on "event" ("service_id", "id");`);

    this.addSql(`create table "webhook_subscription" (
      "id" serial primary key,
      "url" text not null,
      "events" jsonb not null,
      "team" varchar(63) null,
      "description" text null,
      "secret" text not null,
      "created_by" varchar(255) not null,
      "created_at" timestamptz(6) not null,
      "deleted_at" timestamptz(6) null,
      "cursor" bigint not null,
      "job_id" varchar(255) not null constraint "webhook_subscription_job_id_unique" unique);`);
    this.addSql(`create table "webhook_delivery" (
      "id" bigserial primary key,
      "subscription_id" int not null,
      "event_id" bigint not null,
      "type" varchar(63) not null,
      "attempt" int not null,
      "status_code" int null,
      "error" text null,
      "at" timestamptz(6) not null);`);
    this.addSql(
      `create index "webhook_delivery_subscription_id_id_index" on "webhook_delivery" ("subscription_id", "id");`,
    );
    this.addSql(
      `create index "webhook_delivery_subscription_id_event_id_index" on "webhook_delivery" ("subscription_id", "event_id");`,
    );
  }

  override async down(): Promise<void> {
    this.addSql(`drop table if exists "webhook_delivery";`);
    this.addSql(`drop table if exists "webhook_subscription";`);
    this.addSql(`drop table if exists "event";`);
    this.addSql(`drop table if exists "audit_chain_head";`);
    this.addSql(`alter table "audit_log" drop column "prev_hash", drop column "hash";`);
  }
}
