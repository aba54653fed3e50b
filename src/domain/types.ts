/** Roles a token may carry. */
export const ROLES = ['PLATFORM_ADMIN', 'TEAM_ADMIN', 'DEVELOPER'] as const;
export type Role = (typeof ROLES)[number];

/** Deployment statuses; the last five are end states. */
export const DEPLOYMENT_STATUSES = [
  'pending',
  'awaiting_approval',
  'in_progress',
  'succeeded',
  'failed',
  'rejected',
  'expired',
  'cancelled',
] as const;
export type DeploymentStatus = (typeof DEPLOYMENT_STATUSES)[number];

/** Statuses in which a deployment holds its environment's lock. */
export const ACTIVE_DEPLOYMENT_STATUSES: readonly DeploymentStatus[] = ['pending', 'awaiting_approval', 'in_progress'];

/** True for a status a deployment never leaves. */
export function isTerminal(status: DeploymentStatus): boolean {
  return !ACTIVE_DEPLOYMENT_STATUSES.includes(status);
}

export const ENVIRONMENT_STATUSES = ['provisioning', 'ready', 'failed'] as const;
export type EnvironmentStatus = (typeof ENVIRONMENT_STATUSES)[number];

/** One entry of a deployment's timeline. */
export interface TimelineEntry {
  status: DeploymentStatus;
  at: string;
  actor?: string;
  detail?: string;
}

/** Who is acting: the token's subject with its roles and teams. */
export interface Actor {
  sub: string;
  roles: Role[];
  teams: string[];
}
