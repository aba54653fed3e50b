import type Router from '@koa/router';
import type { ParameterizedContext } from 'koa';
import { z } from 'zod';
import { InputError, type Violation } from '../domain/errors';
import type { Actor } from '../domain/types';
import { UNSTORABLE } from './middleware';
import type { AppState } from './types';

/** One route's contract: where it lives and the schemas its inputs must pass. */
export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: 'get' | 'post' | 'put' | 'patch';
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
}

/** The typed, validated inputs a handler receives. */
export interface RouteInput<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  params: z.infer<P>;
  query: z.infer<Q>;
  body: z.infer<B>;
  actor: Actor;
}

export type Ctx = ParameterizedContext<AppState>;

// Every registered spec, in order: the OpenAPI document is generated from this list.
const specs: RouteSpec<z.ZodType, z.ZodType, z.ZodType>[] = [];

/** Routes registered so far (for the OpenAPI document). */
export const registeredRoutes = (): readonly RouteSpec<z.ZodType, z.ZodType, z.ZodType>[] => specs;

/** Turns zod issues into violations naming each field. */
export function violationsOf(error: z.ZodError, prefix: string): Violation[] {
  return error.issues.map((issue) => {
    const field = [prefix, ...issue.path.map(String)].filter(Boolean).join('.');
    const hint =
      issue.code === 'unrecognized_keys'
        ? `remove ${issue.keys.map((k) => `'${k}'`).join(', ')}; see /api/openapi.json for the fields this route takes`
        : 'see /api/openapi.json for the expected shape';
    return { rule: 'schema', field: issue.code === 'unrecognized_keys' ? field || prefix : field, message: issue.message, hint };
  });
}

/** Parses `value` with `schema` or throws an InputError naming every bad field under `prefix`. */
export function parseWith<T extends z.ZodType>(schema: T, value: unknown, prefix: string): z.infer<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new InputError(`invalid ${prefix}`, violationsOf(parsed.error, prefix));
  return parsed.data;
}

const EMPTY = z.strictObject({});

/**
 * The query string as a plain object, refusing keys and values PostgreSQL cannot take (a `%00` in a
 * filter): MikroORM inlines filter values into the SQL text, where a NUL breaks the statement.
 */
function storableQuery(query: Record<string, unknown>): Record<string, unknown> {
  const bad = Object.entries(query).filter(([k, v]) => UNSTORABLE.test(k) || [v].flat().some((s) => typeof s === 'string' && UNSTORABLE.test(s)));
  if (bad.length === 0) return { ...query };
  throw new InputError(
    'the query contains a NUL character or an unpaired surrogate',
    bad.map(([k]) => ({ rule: 'schema', field: `query.${k}`, message: 'keys and values may not contain %00', hint: 'remove NUL characters from the query string' })),
  );
}

/**
 * Registers a route whose params, query and body go through strict zod schemas before the handler
 * sees them; the same spec feeds the OpenAPI document.
 */
export function route<P extends z.ZodType = typeof EMPTY, Q extends z.ZodType = typeof EMPTY, B extends z.ZodType = z.ZodUndefined>(
  router: Router<AppState>,
  spec: RouteSpec<P, Q, B>,
  handler: (ctx: Ctx, input: RouteInput<P, Q, B>) => Promise<void>,
): void {
  // One entry per method and path, however many apps a process builds (tests build several).
  const at = specs.findIndex((s) => s.method === spec.method && s.path === spec.path);
  specs.splice(at === -1 ? specs.length : at, at === -1 ? 0 : 1, spec as unknown as RouteSpec<z.ZodType, z.ZodType, z.ZodType>);
  router[spec.method](spec.path, async (ctx) => {
    const params = parseWith(spec.params ?? EMPTY, ctx.params, 'path');
    const query = parseWith(spec.query ?? EMPTY, storableQuery(ctx.query), 'query');
    const body = spec.body
      ? parseWith(spec.body, ctx.state.body, 'body')
      : parseWith(z.undefined({ error: 'this route takes no body' }), ctx.state.body, 'body');
    await handler(ctx as Ctx, {
      params: params as z.infer<P>,
      query: query as z.infer<Q>,
      body: body as z.infer<B>,
      actor: ctx.state.actor!,
    });
  });
}
