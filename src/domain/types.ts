/** Roles a token may carry. */
export const ROLES = ['PLATFORM_ADMIN', 'TEAM_ADMIN', 'DEVELOPER'] as const;
export type Role = (typeof ROLES)[number];

/** Who is acting: the token's subject with its roles and teams. */
export interface Actor {
  sub: string;
  roles: Role[];
  teams: string[];
}
