import { Migration } from '@mikro-orm/migrations';
import { DEFAULT_POLICIES } from '../src/domain/policies';

/** The platform's tables, their indexes and the default policies. */
export class Migration20261125000001Initial extends Migration {
  override async up(): Promise<void> {
    this.addSql(`create table "team" (
      "id" serial primary key,
      "name" varchar(63) not null constraint "team_name_unique" unique,
      "display_name" varchar(200) null,
      "created_at" timestamptz(6) not null,
      "updated_at" timestamptz(6) not null);`);

    this.addSql(`create table "service" (
      "id" serial primary key,
      "name" varchar(63) not null constraint "service_name_unique" unique,
      "tags" jsonb not null,
      "team_id" int null references "team" ("id") on update cascade on delete set null,
      "description" text null,
      "created_at" timestamptz(6) not null,
      "updated_at" timestamptz(6) not null);`);
    this.addSql(`create index "service_team_id_id_index" on "service" ("team_id", "id");`);
    // `?tag.KEY=VALUE` filters use jsonb containment, which this index serves.
    this.addSql(`create index "service_tags_gin_index" on "service" using gin ("tags" jsonb_path_ops);`);

    this.addSql(`create table "environment" (
      "id" serial primary key,
      "service_id" int not null references "service" ("id") on update cascade,
      "name" varchar(63) not null,
      "tier" varchar(63) not null,
      "status" varchar(20) not null,
      "config" jsonb not null,
      "job_id" varchar(255) not null constraint "environment_job_id_unique" unique,
      "error" text null,
      "created_by" varchar(255) not null,
      "created_at" timestamptz(6) not null,
      "updated_at" timestamptz(6) not null,
      constraint "environment_service_id_name_unique" unique ("service_id", "name"));`);
    this.addSql(`create index "environment_service_id_tier_index" on "environment" ("service_id", "tier");`);

    this.addSql(`create table "deployment" (
      "id" serial primary key,
      "job_id" varchar(255) not null constraint "deployment_job_id_unique" unique,
      "service_id" int not null references "service" ("id") on update cascade,
      "environment_id" int not null references "environment" ("id") on update cascade,
      "tier" varchar(63) not null,
      "version" varchar(128) not null,
      "status" varchar(20) not null,
      "initiated_by" varchar(255) null,
      "requested_by" varchar(255) not null,
      "team" varchar(63) null,
      "config" jsonb not null,
      "approvals_required" int not null,
      "approval_timeout_seconds" int not null,
      "idempotency_key" varchar(255) null,
      "request_hash" varchar(64) null,
      "correlation_id" varchar(128) not null,
      "timeline" jsonb not null,
      "error" text null,
      "created_at" timestamptz(6) not null,
      "updated_at" timestamptz(6) not null,
      "finished_at" timestamptz(6) null,
      constraint "deployment_environment_id_idempotency_key_unique" unique ("environment_id", "idempotency_key"));`);
    // The environment lock: at most one deployment per environment in an active status, whatever races.
    this.addSql(`create unique index "deployment_environment_active_lock" on "deployment" ("environment_id")
      where "status" in ('pending', 'awaiting_approval', 'in_progress');`);
    this.addSql(
      `create index "deployment_environment_id_id_index" on "deployment" ("environment_id", "id");`,
    );
    this.addSql(
      `create index "deployment_service_id_version_status_index" on "deployment" ("service_id", "version", "status");`,
    );

    this.addSql(`create table "approval" (
      "id" serial primary key,
      "deployment_id" int not null references "deployment" ("id") on update cascade,
      "approver" varchar(255) not null,
      "decision" varchar(10) not null,
      "comment" text null,
      "at" timestamptz(6) not null,
      constraint "approval_deployment_id_approver_unique" unique ("deployment_id", "approver"));`);

    this.addSql(`create table "platform_policy" (
      "name" varchar(63) primary key,
      "kind" varchar(63) not null,
      "enabled" boolean not null,
      "config" jsonb not null,
      "updated_at" timestamptz(6) not null,
      "updated_by" varchar(255) not null);`);

    this.addSql(`create table "audit_log" (
      "id" serial primary key,
      "at" timestamptz(6) not null,
      "actor" varchar(255) not null,
      "actor_roles" jsonb not null,
      "action" varchar(63) not null,
      "outcome" varchar(20) not null,
      "target_type" varchar(63) not null,
      "target_id" varchar(255) null,
      "team" varchar(63) null,
      "correlation_id" varchar(128) null,
      "details" jsonb not null,
      "dedupe_key" varchar(255) null constraint "audit_log_dedupe_key_unique" unique);`);
    // One index per filter of GET /api/audit-logs; each ends in id for keyset pages, newest first.
    this.addSql(`create index "audit_log_action_id_index" on "audit_log" ("action", "id");`);
    this.addSql(`create index "audit_log_actor_id_index" on "audit_log" ("actor", "id");`);
    this.addSql(`create index "audit_log_target_index" on "audit_log" ("target_type", "target_id", "id");`);
    this.addSql(`create index "audit_log_team_id_index" on "audit_log" ("team", "id");`);
    this.addSql(`create index "audit_log_at_index" on "audit_log" ("at");`);
    this.addSql(`create index "audit_log_correlation_id_index" on "audit_log" ("correlation_id");`);

    for (const p of DEFAULT_POLICIES) {
      this.addSql(
        `insert into "platform_policy" ("name", "kind", "enabled", "config", "updated_at", "updated_by")
         values (${quote(p.name)}, ${quote(p.kind)}, true, ${quote(JSON.stringify(p.config))}::jsonb, now(), 'system');`,
      );
    }
  }

  override async down(): Promise<void> {
    for (const table of [
      'audit_log',
      'platform_policy',
      'approval',
      'deployment',
      'environment',
      'service',
      'team',
    ]) {
      this.addSql(`drop table if exists "${table}" cascade;`);
    }
  }
}

function quote(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}
