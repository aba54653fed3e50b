/** Callers of the security files: claims with a fresh subject, and the token that carries them. */
import type { Role } from '../../../src/domain/types';
import { tokenFor, uniq } from '../../support/stack';

/** A caller: its claims and its token. */
export interface Caller {
  sub: string;
  roles: Role[];
  teams: string[];
  token: string;
}

/** A caller with a fresh subject (its roles in lower case, made unique) and `teams`. */
export function caller(role: Role | Role[], teams: string[] = []): Caller {
  const roles = Array.isArray(role) ? role : [role];
  const sub = uniq(roles.join('+').toLowerCase());
  return { sub, roles, teams, token: tokenFor(sub, roles, teams) };
}
