import { signToken } from '../../src/auth/tokens';
import type { Role } from '../../src/domain/types';

/** The secret of the jest stacks (./stack.ts); a platform of processes signs with its own. */
export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

/** A signed token for `sub` with `roles` and `teams`. */
export function tokenFor(sub: string, roles: Role[], teams: string[] = []): string {
  return signToken(TEST_SECRET, { sub, roles, teams, ttl: '1h' });
}
