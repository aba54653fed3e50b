/** Roles a token may carry. */
export const ROLES = ['PLATFORM_ADMIN', 'TEAM_ADMIN', 'DEVELOPER'] as const;
export type Role = (typeof ROLES)[number];

// The statuses and their moves live in the lifecycle module; re-exported for the modules that only
// need the names.
export {
  ACTIVE_DEPLOYMENT_STATUSES,
  DEPLOYMENT_STATUSES,
  ENVIRONMENT_STATUSES,
  isTerminal,
  type DeploymentStatus,
  type EnvironmentStatus,
  type TimelineEntry,
} from './lifecycle';

/** Who is acting: the token's subject with its roles and teams. */
export interface Actor {
  sub: string;
  roles: Role[];
  teams: string[];
}
