import { signToken } from '../../src/auth/tokens';
import type { Role } from '../../src/domain/types';

/** The secret of the jest stacks (./stack.ts); a platform of processes signs with its own. */
export const TEST_SECRET = 'test-secret-that-is-long-enough-for-hs256-0123456789';

/** The encryption key of the jest stacks (32 bytes, base64). */
export const TEST_ENCRYPTION_KEY = Buffer.alloc(32, 7).toString('base64');

/** A signed token for `sub` with `roles` and `teams`. */
export function tokenFor(sub: string, roles: Role[], teams: string[] = []): string {
  return signToken(TEST_SECRET, { sub, roles, teams, ttl: '1h' });
}
