import type { Actor } from './types';

/**
 * The permission table of the contract, in one place. Each function answers for one action;
 * a token with several roles gets the union of what they allow.
 */
const isAdmin = (a: Actor): boolean => a.roles.includes('PLATFORM_ADMIN');
const isTeamAdminOf = (a: Actor, team: string | null): boolean =>
  team !== null && a.roles.includes('TEAM_ADMIN') && a.teams.includes(team);
const isDeveloperOf = (a: Actor, team: string | null): boolean =>
  team !== null && a.roles.includes('DEVELOPER') && a.teams.includes(team);

/** Anyone authenticated may read the catalog, deployments, jobs and policies. */
export const canRead = (a: Actor): boolean => a.roles.length > 0;

/** Create or update teams. */
export const canManageTeams = isAdmin;

/** Create or update policies. */
export const canManagePolicies = isAdmin;

/** Create, change and rotate the secrets of delivery targets. */
export const canManageTargets = isAdmin;

/** Register or update a service owned by `team` (null: no team, admins only). */
export const canManageService = (a: Actor, team: string | null): boolean =>
  isAdmin(a) || isTeamAdminOf(a, team);

/** Provision an environment of a service owned by `team`. */
export const canProvision = canManageService;

/** Trigger a deployment of a service owned by `team`. */
export const canDeploy = (a: Actor, team: string | null): boolean =>
  isAdmin(a) || isTeamAdminOf(a, team) || isDeveloperOf(a, team);

/** Approve or reject a deployment: admins and the team's admins, never the requester. */
export const canDecide = (a: Actor, team: string | null, requestedBy: string): boolean =>
  a.sub !== requestedBy && (isAdmin(a) || isTeamAdminOf(a, team));

/** Cancel a deployment: admins, the team's admins, or the one who requested it. */
export const canCancel = (a: Actor, team: string | null, requestedBy: string): boolean =>
  isAdmin(a) || isTeamAdminOf(a, team) || (a.sub === requestedBy && a.roles.length > 0);

/**
 * Which audit entries `a` may read: `'all'`, the teams whose entries it sees, or `null` for none.
 */
export function auditScope(a: Actor): 'all' | string[] | null {
  if (isAdmin(a)) return 'all';
  if (a.roles.includes('TEAM_ADMIN')) return [...a.teams];
  return null;
}
