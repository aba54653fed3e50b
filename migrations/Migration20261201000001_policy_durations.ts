import { Migration } from '@mikro-orm/migrations';

// The seconds a stored prod_approvals timeout spells (a number of seconds, or digits and a unit),
// null for anything else.
const SECONDS = `case
    when jsonb_typeof(config->'timeout') = 'number' then (config->>'timeout')::numeric
    when (config->>'timeout') ~ '^[0-9]{1,7}(ms|s|m|h|d)$' then
      substring(config->>'timeout' from '^([0-9]+)')::numeric *
      case substring(config->>'timeout' from '(ms|s|m|h|d)$')
        when 'ms' then 0.001 when 's' then 1 when 'm' then 60 when 'h' then 3600 else 86400 end
  end`;

/**
 * Policy durations are now between 1 s and a year, and a stored policy outside that range would
 * fail every request that loads the policies. Earlier versions accepted such timeouts (`"0s"` was
 * silently read as 1 s; `"9999999d"` overflowed the deployment's int column): they are rewritten to
 * the nearest bound, `"1s"` or `"365d"`, which is what the platform did with them or the longest
 * wait it supports. Not reverted: the old values were never meaningful.
 */
export class Migration20261201000001PolicyDurations extends Migration {
  override async up(): Promise<void> {
    this
      .addSql(`with t as (select name, ${SECONDS} as seconds from platform_policy where kind = 'prod_approvals')
      update platform_policy p
         set config = jsonb_set(p.config, '{timeout}', case when t.seconds < 1 then '"1s"'::jsonb else '"365d"'::jsonb end),
             updated_at = now(), updated_by = 'migration:policy-durations'
        from t
       where p.name = t.name and (t.seconds < 1 or t.seconds > 31536000);`);
  }

  override async down(): Promise<void> {
    // Nothing to undo: the rewritten values are valid in every version.
  }
}
