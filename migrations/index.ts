import type { MigrationObject } from '@mikro-orm/core';
import { Migration20261125000001Initial } from './Migration20261125000001_initial';
import { Migration20261201000001PolicyDurations } from './Migration20261201000001_policy_durations';
import { Migration20261203000001DeliveryTargets } from './Migration20261203000001_delivery_targets';
import { Migration20261203000002Releases } from './Migration20261203000002_releases';
import { Migration20261203000003EventsAndAuditChain } from './Migration20261203000003_events_and_audit_chain';

/**
 * Every migration, in order. Listed explicitly (not globbed) so the same list runs from `src` under
 * tsx/jest and from the compiled `dist`.
 */
export const MIGRATIONS: MigrationObject[] = [
  { name: 'Migration20261125000001_initial', class: Migration20261125000001Initial },
  { name: 'Migration20261201000001_policy_durations', class: Migration20261201000001PolicyDurations },
  { name: 'Migration20261203000001_delivery_targets', class: Migration20261203000001DeliveryTargets },
  { name: 'Migration20261203000002_releases', class: Migration20261203000002Releases },
  {
    name: 'Migration20261203000003_events_and_audit_chain',
    class: Migration20261203000003EventsAndAuditChain,
  },
];
