import { createSecretKey } from 'node:crypto';
import type { Middleware } from 'koa';
import jwt from 'koa-jwt';
import { koaJwtSecret } from 'jwks-rsa';
import { z } from 'zod';
import type { Config } from '../config';
import { AuthenticationError } from '../domain/errors';
import { ROLES } from '../domain/types';
import { authFailures } from '../metrics';
import type { AppState } from './types';

/** Routes anyone may call. */
export const PUBLIC_PATHS = [/^\/api\/health(\/.*)?$/, /^\/api\/metrics$/, /^\/api\/openapi\.json$/, /^\/api\/docs$/];

const claimsSchema = z.object({
  sub: z.string().min(1).max(255),
  exp: z.number(),
  roles: z.array(z.enum(ROLES)).min(1).max(3),
  teams: z.array(z.string().min(1).max(63)).max(200).default([]),
});

/**
 * koa-jwt with pinned algorithms: HS256 with `JWT_SECRET`, or RS256/ES256 keys from `JWT_JWKS_URI`
 * (so an HS256 token signed with a public key is refused). `iss`/`aud` are checked when configured.
 */
export function authentication(config: Config): Middleware<AppState> {
  const options = config.JWT_JWKS_URI
    ? {
        secret: koaJwtSecret({ jwksUri: config.JWT_JWKS_URI, cache: true, rateLimit: true, jwksRequestsPerMinute: 10 }),
        algorithms: ['RS256', 'ES256'],
      }
    : // A KeyObject, not the string: given a string, jsonwebtoken first tries to parse it as a PEM
      // public key on every verification and builds the secret key from the thrown error's catch —
      // a sixth of the API's CPU on a cheap read (see BENCHMARKS.md).
      { secret: createSecretKey(Buffer.from(config.JWT_SECRET!)), algorithms: ['HS256'] };
  const verify = jwt({
    ...options,
    key: 'jwt',
    ...(config.JWT_ISSUER ? { issuer: config.JWT_ISSUER } : {}),
    ...(config.JWT_AUDIENCE ? { audience: config.JWT_AUDIENCE } : {}),
  } as jwt.Options).unless({ path: PUBLIC_PATHS }) as unknown as Middleware<AppState>;

  const claims: Middleware<AppState> = async (ctx, next) => {
    if (PUBLIC_PATHS.some((p) => p.test(ctx.path))) return next();
    const parsed = claimsSchema.safeParse(ctx.state.jwt);
    if (!parsed.success) {
      authFailures.inc({ status: '401', reason: 'claims' });
      const fields = parsed.error.issues.map((i) => i.path.join('.') || 'token').join(', ');
      throw new AuthenticationError(`the token's claims are incomplete or invalid (${fields}); exp, sub and roles are required`);
    }
    ctx.state.actor = { sub: parsed.data.sub, roles: parsed.data.roles, teams: parsed.data.teams };
    return next();
  };

  return async (ctx, next) => {
    try {
      await verify(ctx, async () => undefined);
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === 401) {
        authFailures.inc({ status: '401', reason: 'token' });
        const reason = (err as { originalError?: Error }).originalError?.message ?? (err as Error).message;
        throw new AuthenticationError(`authentication failed: ${reason}`);
      }
      throw err;
    }
    await claims(ctx, next);
  };
}
