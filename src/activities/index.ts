import type { ActivityDeps } from './activity-deps';
import { decisionActivities } from './decision.activities';
import { deploymentActivities } from './deployment.activities';
import { environmentActivities } from './environment.activities';
import { deliveryActivities } from './delivery/delivery.activities';
import { rolloutGuardActivities } from './rollout-guards.activities';
import { releaseActivities } from './release.activities';
import { notificationActivities } from './notify.activities';

export type { ActivityDeps, DeliverySettings } from './activity-deps';
export type { BeginResult } from './deployment.activities';

/**
 * Creates the activities over the ORM, logger and driver. Each activity forks its own
 * EntityManager and is safe to run twice: status changes go through the lifecycle module, guarded
 * by the status they leave, and their audit entries carry a key derived from the job id.
 */
export function createActivities(deps: ActivityDeps) {
  return {
    ...environmentActivities(deps),
    ...deploymentActivities(deps),
    ...decisionActivities(deps),
    ...deliveryActivities(deps),
    ...rolloutGuardActivities(deps),
    ...releaseActivities(deps),
    ...notificationActivities(deps),
  };
}

/** The activities a worker registers; workflows import this type only. */
export type Activities = ReturnType<typeof createActivities>;
