import type Router from '@koa/router';
import { z } from 'zod';
import { InputError } from '../../domain/errors';
import { POLICY_CONFIG_SCHEMAS, type PolicyKind } from '../../domain/policies';
import { dryRun, listPolicies, putPolicy, type DryRun } from '../../services/policies.service';
import { parseWith, route } from '../route';
import {
  deploymentCreate,
  environmentCreate,
  policyEvaluate,
  policyPut,
  serviceCreate,
  serviceUpdate,
  slug,
} from '../schemas';
import { policyJson } from '../../views/resources';
import { pageQuery } from '../pagination';
import type { ApiDeps, AppState } from '../types';

/** Policy names: the seeded ones are snake_case, new ones may also be slugs. */
const policyName = slug.or(z.string().regex(/^[a-z][a-z0-9_]{0,62}$/));

/**
 * The last policy name a page showed, from its cursor; anything else is 400 (a decoded NUL would
 * otherwise reach the SQL text and fail the statement).
 */
function decodePolicyCursor(cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const name = Buffer.from(cursor, 'base64url').toString('utf8');
  if (policyName.safeParse(name).success) return name;
  throw new InputError('invalid cursor', [
    {
      rule: 'schema',
      field: 'query.cursor',
      message: 'not a cursor this API issued',
      hint: 'pass next_cursor from the previous page unchanged',
    },
  ]);
}

/** The dry run's question: the payload parsed with the schema of the route the action names. */
function dryRunOf(body: z.infer<typeof policyEvaluate>): DryRun {
  const { service_id, environment_id, ...rest } = body.payload;
  const ids = parseWith(
    z.strictObject({
      service_id: z.number().int().min(1).optional(),
      environment_id: z.number().int().min(1).optional(),
    }),
    { service_id, environment_id },
    'body.payload',
  );
  switch (body.action) {
    case 'service.create':
      return { action: body.action, tags: parseWith(serviceCreate, rest, 'body.payload').tags };
    case 'service.update':
      return {
        action: body.action,
        tags: parseWith(serviceUpdate, rest, 'body.payload').tags,
        serviceId: ids.service_id,
      };
    case 'environment.create':
      return { action: body.action, ...parseWith(environmentCreate, rest, 'body.payload') };
    case 'deployment.create': {
      const d = parseWith(deploymentCreate, rest, 'body.payload');
      return {
        action: body.action,
        version: d.version,
        config: d.config,
        serviceId: ids.service_id,
        environmentId: ids.environment_id,
      };
    }
  }
}

/** Policies: the guardrails, their dry run and their changes. */
export function registerPolicyRoutes(router: Router<AppState>, deps: ApiDeps): void {
  route(
    router,
    deps,
    {
      method: 'get',
      path: '/policies',
      tag: 'policies',
      summary: 'List policies',
      query: z.strictObject(pageQuery),
      responses: { 200: 'a page of policies (by name)' },
    },
    async (ctx, { query }) => {
      // Policies are keyed by name: the cursor carries the last name seen.
      const rows = await listPolicies(deps, { limit: query.limit, after: decodePolicyCursor(query.cursor) });
      const items = rows.slice(0, query.limit);
      ctx.body = {
        items: items.map(policyJson),
        next_cursor:
          rows.length > query.limit ? Buffer.from(items[items.length - 1]!.name).toString('base64url') : null,
      };
    },
  );

  route(
    router,
    deps,
    {
      method: 'put',
      path: '/policies/:name',
      access: { roles: ['PLATFORM_ADMIN'], action: 'policy.update', targetType: 'policy' },
      tag: 'policies',
      summary: 'Create or replace a policy (PLATFORM_ADMIN); config is validated per kind',
      params: z.strictObject({ name: policyName }),
      body: policyPut,
      responses: { 200: 'the policy', 400: 'invalid config for the kind', 403: 'not a platform admin' },
    },
    async (ctx, { params, body, caller }) => {
      if (body.name !== undefined && body.name !== params.name) {
        throw new InputError('the body names another policy than the path', [
          {
            rule: 'schema',
            field: 'body.name',
            message: `'${body.name}' is not '${params.name}'`,
            hint: `send the body to PUT /api/policies/${body.name}, or drop name from it`,
          },
        ]);
      }
      const config = parseWith(
        POLICY_CONFIG_SCHEMAS[body.kind as PolicyKind],
        body.config,
        'body.config',
      ) as Record<string, unknown>;
      ctx.body = policyJson(
        await putPolicy(deps, caller, params.name, { kind: body.kind, enabled: body.enabled, config }),
      );
    },
  );

  route(
    router,
    deps,
    {
      method: 'post',
      path: '/policies/evaluate',
      tag: 'policies',
      summary: 'Dry run: would this request pass the guardrails? Changes nothing.',
      body: policyEvaluate,
      responses: { 200: '{allowed, violations}', 400: 'payload not of the shape the action takes' },
    },
    async (ctx, { body }) => {
      const violations = await dryRun(deps, dryRunOf(body));
      ctx.body = { allowed: violations.length === 0, violations };
    },
  );
}
