import type Router from '@koa/router';
import { z } from 'zod';
import { Environment, PlatformPolicy } from '../../domain/entities';
import { InputError, NotFoundError, type Violation } from '../../domain/errors';
import {
  POLICY_CONFIG_SCHEMAS,
  evaluateDeploymentConfig,
  evaluateEnvironment,
  evaluateServiceTags,
  type PolicyKind,
} from '../../domain/policies';
import { canManagePolicies } from '../../domain/rbac';
import { parseWith, route } from '../route';
import { deploymentCreate, environmentCreate, policyEvaluate, policyPut, serviceCreate, serviceUpdate, slug } from '../schemas';
import { policyJson } from '../serializers';
import { audit, deny, pageQuery } from '../support';
import type { AppDeps, AppState } from '../types';
import { loadService } from './services.routes';
import { loadPolicies, promotionViolation } from '../../domain/deployment-rules';

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
    { rule: 'schema', field: 'query.cursor', message: 'not a cursor this API issued', hint: 'pass next_cursor from the previous page unchanged' },
  ]);
}

/** Policies: the guardrails, their dry run and their changes. */
export function registerPolicyRoutes(router: Router<AppState>, deps: AppDeps): void {
  route(
    router,
    {
      method: 'get',
      path: '/policies',
      tag: 'policies',
      summary: 'List policies',
      query: z.strictObject(pageQuery),
      responses: { 200: 'a page of policies (by name)' },
    },
    async (ctx, { query }) => {
      // Policies are keyed by name: the cursor carries an offset-free position, the last name seen.
      const after = decodePolicyCursor(query.cursor);
      const rows = await deps.orm.em
        .fork()
        .find(PlatformPolicy, after ? { name: { $gt: after } } : {}, { orderBy: { name: 'asc' }, limit: query.limit + 1 });
      const items = rows.slice(0, query.limit);
      ctx.body = {
        items: items.map(policyJson),
        next_cursor: rows.length > query.limit ? Buffer.from(items[items.length - 1]!.name).toString('base64url') : null,
      };
    },
  );

  route(
    router,
    {
      method: 'put',
      path: '/policies/:name',
      tag: 'policies',
      summary: 'Create or replace a policy (PLATFORM_ADMIN); config is validated per kind',
      params: z.strictObject({ name: policyName }),
      body: policyPut,
      responses: { 200: 'the policy', 400: 'invalid config for the kind', 403: 'not a platform admin' },
    },
    async (ctx, { params, body, actor }) => {
      const facts = { action: 'policy.update', targetType: 'policy', targetId: params.name };
      if (!canManagePolicies(actor)) await deny(deps, ctx, facts, 'only PLATFORM_ADMIN may change policies');
      const config = parseWith(POLICY_CONFIG_SCHEMAS[body.kind as PolicyKind], body.config, 'body.config');
      const em = deps.orm.em.fork();
      const existing = await em.findOne(PlatformPolicy, { name: params.name });
      if (existing && existing.kind !== body.kind) {
        throw new InputError(`policy '${params.name}' is of kind '${existing.kind}'`, [
          { rule: 'schema', field: 'body.kind', message: `cannot change the kind of '${params.name}'`, hint: `send kind '${existing.kind}', or use another name` },
        ]);
      }
      const policy = existing ?? em.create(PlatformPolicy, { name: params.name, kind: body.kind });
      const before = existing ? { enabled: existing.enabled, config: existing.config } : null;
      policy.enabled = body.enabled;
      policy.config = config as Record<string, unknown>;
      policy.updatedAt = new Date();
      policy.updatedBy = actor.sub;
      audit(em, ctx, { ...facts, outcome: 'success', details: { before, after: { kind: body.kind, enabled: body.enabled, config } } });
      await em.flush();
      ctx.body = policyJson(policy);
    },
  );

  route(
    router,
    {
      method: 'post',
      path: '/policies/evaluate',
      tag: 'policies',
      summary: 'Dry run: would this request pass the guardrails? Changes nothing.',
      body: policyEvaluate,
      responses: { 200: '{allowed, violations}', 400: 'payload not of the shape the action takes' },
    },
    async (ctx, { body }) => {
      const em = deps.orm.em.fork();
      const policies = await loadPolicies(em);
      const { service_id, environment_id, ...rest } = body.payload;
      const ids = parseWith(
        z.strictObject({ service_id: z.number().int().min(1).optional(), environment_id: z.number().int().min(1).optional() }),
        { service_id, environment_id },
        'body.payload',
      );
      let violations: Violation[] = [];
      switch (body.action) {
        case 'service.create':
          violations = evaluateServiceTags(parseWith(serviceCreate, rest, 'body.payload').tags, policies);
          break;
        case 'service.update': {
          const update = parseWith(serviceUpdate, rest, 'body.payload');
          const current = ids.service_id ? (await loadService(em, ids.service_id)).service.tags : {};
          violations = evaluateServiceTags(update.tags ?? current, policies);
          break;
        }
        case 'environment.create':
          violations = evaluateEnvironment(parseWith(environmentCreate, rest, 'body.payload'), policies);
          break;
        case 'deployment.create': {
          const deployment = parseWith(deploymentCreate, rest, 'body.payload');
          violations = evaluateDeploymentConfig(deployment.config, policies);
          if (ids.environment_id) {
            const env = await em.findOne(Environment, ids.environment_id);
            if (!env || (ids.service_id && env.serviceId !== ids.service_id)) throw new NotFoundError(`environment ${ids.environment_id} does not exist`);
            const order = await promotionViolation(em, policies, env.serviceId, env.tier, deployment.version);
            if (order) violations.push(order);
          }
          break;
        }
      }
      ctx.body = { allowed: violations.length === 0, violations };
    },
  );
}

