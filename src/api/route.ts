import type Router from '@koa/router';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { ParameterizedContext } from 'koa';
import { z } from 'zod';
import { InputError, type Violation } from '../domain/errors';
import type { Actor, Role } from '../domain/types';
import { parseOrRefuse } from '../domain/violations';
import { deny, teamOfTarget } from '../services/audit-trail';
import type { Caller } from '../services/caller';
import { FORBIDDEN_KEYS, UNSTORABLE, readJsonBody, readRawBody } from './middleware';
import type { AppState } from './types';

/**
 * Who may call a route at all, checked before its query and body are read: a caller with none of
 * `roles` gets 403, audited as a refusal of `action` on `targetType` (the path's `:id`, when it has
 * one, names the target). Checks that need the object (its team, its requester) come later.
 */
export interface RouteAccess {
  roles: readonly Role[];
  action: string;
  targetType: string;
}

/** One route's contract: where it lives and the schemas its inputs must pass. */
export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Koa-style path below `/api`, e.g. `/services/:id`. */
  path: string;
  summary: string;
  tag: string;
  params?: P;
  query?: Q;
  body?: B;
  /** Status codes and what they mean, for the OpenAPI document. */
  responses: Record<number, string>;
  /** False for the public routes (health, metrics, docs). */
  auth?: boolean;
  /** The roles the route admits; omitted: every authenticated caller. */
  access?: RouteAccess;
  /**
   * The handler reads the body itself, as bytes (`readRaw`), after checking a signature over them;
   * `body` then only documents it.
   */
  rawBody?: true;
}

/** The typed, validated inputs a handler receives. */
export interface RouteInput<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  params: z.infer<P>;
  query: z.infer<Q>;
  body: z.infer<B>;
  actor: Actor;
  /** The actor with the request's correlation id and logger, for the use cases. */
  caller: Caller;
  /** The body as bytes, for a {@link RouteSpec.rawBody} route. */
  readRaw: () => Promise<Buffer>;
}

export type Ctx = ParameterizedContext<AppState>;

// Every registered spec, in order: the OpenAPI document is generated from this list.
const specs: RouteSpec<z.ZodType, z.ZodType, z.ZodType>[] = [];

/** Routes registered so far (for the OpenAPI document). */
export const registeredRoutes = (): readonly RouteSpec<z.ZodType, z.ZodType, z.ZodType>[] => specs;

/** Parses `value` with `schema` or throws an InputError naming every bad field under `prefix`. */
export const parseWith = parseOrRefuse;

const EMPTY = z.strictObject({});

/**
 * The query string as a plain object, refusing what no filter may carry: a key with a segment of
 * {@link FORBIDDEN_KEYS} (`?tag.__proto__=x` became an assignment to a prototype, so the filter
 * vanished and the list returned everything), and keys or values PostgreSQL cannot take (a `%00`:
 * MikroORM inlines filter values into the SQL text, where a NUL breaks the statement).
 */
function strictQuery(query: Record<string, unknown>): Record<string, unknown> {
  const violations: Violation[] = [];
  for (const [key, value] of Object.entries(query)) {
    const field = `query.${key}`;
    const forbidden = key.split(/[.[\]]/).find((segment) => FORBIDDEN_KEYS.has(segment));
    if (forbidden !== undefined) {
      violations.push({
        rule: 'schema',
        field,
        message: `'${forbidden}' is not accepted in a query parameter name`,
        hint: `remove the parameter; no filter is named '${forbidden}'`,
      });
    } else if (
      UNSTORABLE.test(key) ||
      [value].flat().some((s) => typeof s === 'string' && UNSTORABLE.test(s))
    ) {
      violations.push({
        rule: 'schema',
        field,
        message: 'keys and values may not contain %00',
        hint: 'remove NUL characters from the query string',
      });
    }
  }
  if (violations.length > 0)
    throw new InputError('the query string names or contains something no filter takes', violations);
  return { ...query };
}

/**
 * Registers a route: its path params are parsed, the caller's roles checked against its
 * {@link RouteAccess} (403, audited through `deps.orm`, before anything else is read), then its
 * query and body go through strict zod schemas before the handler sees them. The same spec feeds
 * the OpenAPI document.
 */
export function route<
  P extends z.ZodType = typeof EMPTY,
  Q extends z.ZodType = typeof EMPTY,
  B extends z.ZodType = z.ZodUndefined,
>(
  router: Router<AppState>,
  deps: { orm: MikroORM },
  spec: RouteSpec<P, Q, B>,
  handler: (ctx: Ctx, input: RouteInput<P, Q, B>) => Promise<void>,
): void {
  // One entry per method and path, however many apps a process builds (tests build several).
  const at = specs.findIndex((s) => s.method === spec.method && s.path === spec.path);
  specs.splice(
    at === -1 ? specs.length : at,
    at === -1 ? 0 : 1,
    spec as unknown as RouteSpec<z.ZodType, z.ZodType, z.ZodType>,
  );
  router[spec.method](spec.path, async (ctx) => {
    const caller: Caller = {
      actor: ctx.state.actor!,
      correlationId: ctx.state.correlationId,
      log: ctx.state.log,
    };
    const params = parseWith(spec.params ?? EMPTY, ctx.params, 'path');
    if (spec.access && !caller.actor.roles.some((r) => spec.access!.roles.includes(r))) {
      const { roles, action, targetType } = spec.access;
      const { id, name } = params as { id?: number; name?: string };
      const team = id === undefined ? null : await teamOfTarget(deps.orm, targetType, id);
      await deny(
        deps.orm,
        caller,
        { action, targetType, targetId: id ?? name ?? null, team },
        `only ${roles.join(' or ')} may ${spec.method.toUpperCase()} /api${spec.path}`,
      );
    }
    const query = parseWith(spec.query ?? EMPTY, strictQuery(ctx.query), 'query');
    const body = spec.rawBody ? undefined : parseBody(spec.body, await readJsonBody(ctx));
    await handler(ctx as Ctx, {
      params: params as z.infer<P>,
      query: query as z.infer<Q>,
      body: body as z.infer<B>,
      actor: caller.actor,
      caller,
      readRaw: () => readRawBody(ctx),
    });
  });
}

function parseBody(schema: z.ZodType | undefined, raw: unknown): unknown {
  return schema
    ? parseWith(schema, raw, 'body')
    : parseWith(z.undefined({ error: 'this route takes no body' }), raw, 'body');
}
