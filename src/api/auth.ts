import { KeyObject, createPublicKey, createSecretKey } from 'node:crypto';
import type { Context, Middleware } from 'koa';
import type jwt from 'jsonwebtoken';
import koaJwt from 'koa-jwt';
import { JwksClient } from 'jwks-rsa';
import type { Config } from '../config';
import { AuthenticationError, ServiceUnavailableError } from '../domain/errors';
import { authFailures } from '../metrics';
import { CLAIM_RULES, claimsSchema } from './token-claims';
import type { AppState } from './types';

/** Routes anyone may call. */
export const PUBLIC_PATHS = [
  /^\/api\/health(\/.*)?$/,
  /^\/api\/metrics$/,
  /^\/api\/openapi\.json$/,
  /^\/api\/docs$/,
  // Targets' callbacks carry a Standard Webhooks signature instead of a token.
  /^\/api\/jobs\/[^/]+\/callback$/,
];

/** The protection space named in every `WWW-Authenticate` challenge (RFC 6750 §3). */
export const REALM = 'idp';

/** How far ahead of our clock a token's `iat` may lie: clock skew, not a token minted for later. */
export const MAX_IAT_SKEW_S = 60;

/** A Bearer token as RFC 6750 §2.1 spells it (b64token); a JWS compact serialization is a subset. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;
const JWS_COMPACT = /^([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)$/;

/** Why a request was refused: the `idp_auth_failures_total` reason label and the 401's detail. */
interface Refusal {
  reason: 'missing' | 'token' | 'claims';
  detail: string;
}

/** The resolver's refusal of a token's key (an unknown kid), carried through koa-jwt. */
class KeyRefusal extends Error {
  constructor(readonly refusal: Refusal) {
    super(refusal.detail);
  }
}

/** A verified token's payload, or why it was refused. */
type Verdict = { payload: Record<string, unknown> } | { refusal: Refusal };

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function decodeSegment(segment: string): unknown {
  try {
    return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
}

/**
 * Our words for jsonwebtoken's verdicts. Its messages are matched only to classify; they never
 * reach a response (they quote expected issuers and audiences and name the library's options).
 */
function verificationFailure(err: unknown, algorithms: string[]): string {
  const { name, message } = err as { name?: string; message?: string };
  if (name === 'TokenExpiredError') return 'the token has expired';
  if (name === 'NotBeforeError') return 'the token is not valid yet (its nbf claim lies in the future)';
  switch (message) {
    case 'invalid signature':
      return "the token's signature is invalid";
    case 'jwt signature is required':
      return 'the token is not signed';
    case 'invalid algorithm':
      return `the token's algorithm is not accepted (accepted: ${algorithms.join(', ')})`;
    case 'invalid exp value':
      return CLAIM_RULES['exp']!;
    case 'invalid nbf value':
      return "the token's nbf claim must be a number of seconds";
  }
  if (message?.includes('key type')) return "the token's algorithm does not fit its signing key";
  if (message?.startsWith('jwt audience invalid')) return "the token's aud claim does not name this API";
  if (message?.startsWith('jwt issuer invalid'))
    return "the token's iss claim does not name the trusted issuer";
  return 'the token could not be verified';
}

/**
 * The JWKS key named by a token header's `kid`. A key set that cannot be fetched is an outage
 * (503), not the caller's fault; an unknown `kid` is the caller's.
 */
function jwksKeyResolver(jwksUri: string): (header: Record<string, unknown>) => Promise<KeyObject | Refusal> {
  const client = new JwksClient({
    jwksUri,
    cache: true,
    rateLimit: true,
    jwksRequestsPerMinute: 10,
    timeout: 5000,
  });
  // jwks-rsa caches the PEM text; the parsed key is kept too so a request does not parse it again.
  const parsed = new Map<string, KeyObject>();
  return async (header) => {
    const kid = typeof header['kid'] === 'string' ? header['kid'] : undefined;
    let pem: string;
    try {
      pem = (await client.getSigningKey(kid)).getPublicKey();
    } catch (err) {
      const name = (err as { name?: string }).name;
      // An unknown kid makes jwks-rsa refetch the set; past the rate limit it refuses to, which
      // still means "not one of the issuer's keys" for this token.
      if (name === 'SigningKeyNotFoundError' || name === 'JwksRateLimitError') {
        return { reason: 'token', detail: "the token's signing key (kid) is not one of the issuer's keys" };
      }
      throw new ServiceUnavailableError(
        'the signing keys could not be fetched from the key set (JWT_JWKS_URI); retry later',
      );
    }
    let key = parsed.get(pem);
    if (!key) {
      key = createPublicKey(pem);
      parsed.set(pem, key);
    }
    return key;
  };
}

/**
 * Verifies a Bearer token: its shape and header first (a JWS with an accepted `alg`, no `crit`),
 * then signature and registered claims through koa-jwt with the key for its header.
 */
function tokenVerifier(config: Config): (ctx: Context, token: string) => Promise<Verdict> {
  const algorithms = config.JWT_JWKS_URI ? ['RS256', 'ES256'] : ['HS256'];
  const verifyOptions: jwt.VerifyOptions = {
    algorithms: algorithms as jwt.Algorithm[],
    ...(config.JWT_ISSUER ? { issuer: config.JWT_ISSUER } : {}),
    ...(config.JWT_AUDIENCE ? { audience: config.JWT_AUDIENCE } : {}),
  };

  const invalid = (detail: string): Verdict => ({ refusal: { reason: 'token', detail } });
  // koa-jwt verifies the signature and the registered claims (through jsonwebtoken); it reads the
  // token this middleware already took apart. With JWKS the key is looked up by the header's kid.
  // With one HS256 secret it is given as it is, a KeyObject: given a string, jsonwebtoken first
  // tries to parse it as a PEM public key on every verification and builds the secret key from the
  // thrown error's catch — a sixth of the API's CPU on a cheap read (see BENCHMARKS.md); and given a
  // function, koa-jwt decodes every token once more to call it.
  const resolveKey = config.JWT_JWKS_URI ? jwksKeyResolver(config.JWT_JWKS_URI) : null;
  const verifier = koaJwt({
    ...verifyOptions,
    key: 'jwt',
    getToken: (ctx: Context) => (ctx.state as { bearer?: string }).bearer ?? null,
    secret: resolveKey
      ? async (header: jwt.JwtHeader) => {
          const key = await resolveKey(header as unknown as Record<string, unknown>);
          if (!(key instanceof KeyObject)) throw new KeyRefusal(key);
          return key;
        }
      : createSecretKey(Buffer.from(config.JWT_SECRET!)),
  } as unknown as koaJwt.Options);
  const verify = async (ctx: Context, token: string): Promise<Verdict> => {
    const malformed = invalid('the token is malformed (expected a signed JWT: header.payload.signature)');
    const parts = JWS_COMPACT.exec(token);
    if (!parts) return malformed;
    const header = decodeSegment(parts[1]!);
    if (!isObject(header) || typeof header['alg'] !== 'string' || !isObject(decodeSegment(parts[2]!)))
      return malformed;
    // RFC 7515 §4.1.11: extensions listed in crit must be understood or the JWS rejected; we
    // understand none, so any crit (even an empty or a malformed one) is refused.
    if (Object.hasOwn(header, 'crit'))
      return invalid('the token names critical header extensions (crit); none is supported');
    // Checked before a key is looked up, so a token with a foreign alg never makes us fetch keys.
    if (!algorithms.includes(header['alg']))
      return invalid(`the token's algorithm is not accepted (accepted: ${algorithms.join(', ')})`);
    (ctx.state as { bearer?: string }).bearer = token;
    try {
      await verifier(ctx, async () => undefined);
      return { payload: (ctx.state as { jwt?: Record<string, unknown> }).jwt ?? {} };
    } catch (err) {
      // koa-jwt wraps every failure in a 401 carrying the original error.
      const original = (err as { originalError?: unknown }).originalError ?? err;
      if (original instanceof KeyRefusal) return { refusal: original.refusal };
      if (original instanceof ServiceUnavailableError) throw original;
      return invalid(verificationFailure(original, algorithms));
    } finally {
      delete (ctx.state as { bearer?: string }).bearer;
    }
  };
  return verify;
}

/**
 * Authentication, before the body is read: the Bearer token must be a JWS with a pinned algorithm
 * (HS256 with `JWT_SECRET`, or RS256/ES256 keys from `JWT_JWKS_URI`, so an HS256 token signed with
 * a public key is refused), no `crit` header, a valid signature, `exp` in the future, `iat` not
 * ahead of our clock, `iss`/`aud` when configured, and well-formed `sub`, `roles` and `teams`.
 * Every refusal is a 401 with a `WWW-Authenticate` challenge (RFC 6750 §3) and a detail in our
 * words; a token that was presented gets `error="invalid_token"`, a request without one none.
 */
export function authentication(config: Config): Middleware<AppState> {
  const verify = tokenVerifier(config);
  const refuse = (ctx: Context, refusal: Refusal): AuthenticationError => {
    authFailures.inc({ status: '401', reason: refusal.reason });
    ctx.set(
      'WWW-Authenticate',
      refusal.reason === 'missing'
        ? `Bearer realm="${REALM}"`
        : `Bearer realm="${REALM}", error="invalid_token"`,
    );
    return new AuthenticationError(refusal.detail);
  };

  return async (ctx, next) => {
    if (PUBLIC_PATHS.some((p) => p.test(ctx.path))) return next();
    const header = ctx.get('authorization');
    // No credentials, or another scheme (Basic…): RFC 6750 §3.1 says the challenge carries no
    // error code then.
    if (!/^Bearer(\s|$)/i.test(header)) {
      throw refuse(ctx, {
        reason: 'missing',
        detail: 'this route needs a bearer token: send Authorization: Bearer <token>',
      });
    }
    const token = BEARER.exec(header)?.[1];
    if (!token) {
      throw refuse(ctx, {
        reason: 'token',
        detail: 'the Authorization header must be "Bearer <token>" with one token',
      });
    }
    const verdict = await verify(ctx, token);
    if ('refusal' in verdict) throw refuse(ctx, verdict.refusal);
    const parsed = claimsSchema.safeParse(verdict.payload);
    if (!parsed.success) {
      const fields = [...new Set(parsed.error.issues.map((i) => String(i.path[0] ?? 'token')))];
      throw refuse(ctx, {
        reason: 'claims',
        detail: fields.map((f) => CLAIM_RULES[f] ?? `the token's ${f} claim is invalid`).join('; '),
      });
    }
    const { sub, roles, teams, iat } = parsed.data;
    if (iat !== undefined && iat > Math.floor(Date.now() / 1000) + MAX_IAT_SKEW_S) {
      throw refuse(ctx, {
        reason: 'claims',
        detail: "the token's iat claim lies in the future (issued later than now)",
      });
    }
    ctx.state.jwt = verdict.payload;
    ctx.state.actor = { sub, roles, teams };
    return next();
  };
}
