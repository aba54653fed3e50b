/** Policies: the guardrails' rows, their changes and the dry run. */
import { rowsAfter } from '../db/keyset';
import { Environment, PlatformPolicy, Service } from '../domain/entities';
import { InputError, NotFoundError, type Violation } from '../domain/errors';
import { POLICIES_CHANNEL } from '../db/event-notices';
import { forgetPolicies, loadPolicies } from '../domain/deployment-rules';
import { freezeHolding, freezeViolation } from '../domain/freezes';
import { canManagePolicies } from '../domain/rbac';
import { deny, recordIn } from './audit-trail';
import type { Caller } from './caller';
import { evaluate, type GuardedChange } from './guardrails';
import type { ServiceDeps } from './service-deps';

/** A page of policies by name (`limit + 1` rows after the name `after`). */
export function listPolicies(
  deps: ServiceDeps,
  page: { limit: number; after?: string },
): Promise<PlatformPolicy[]> {
  return rowsAfter(deps.orm.em.fork(), PlatformPolicy, 'name', page);
}

/** Creates or replaces a policy (its config already validated for its kind); a policy never changes kind. */
export async function putPolicy(
  deps: ServiceDeps,
  caller: Caller,
  name: string,
  body: { kind: string; enabled: boolean; config: Record<string, unknown> },
): Promise<PlatformPolicy> {
  const facts = { action: 'policy.update', targetType: 'policy', targetId: name };
  if (!canManagePolicies(caller.actor))
    await deny(deps.orm, caller, facts, 'only PLATFORM_ADMIN may change policies');
  const em = deps.orm.em.fork();
  const existing = await em.findOne(PlatformPolicy, { name });
  if (existing && existing.kind !== body.kind) {
    throw new InputError(`policy '${name}' is of kind '${existing.kind}'`, [
      {
        rule: 'schema',
        field: 'body.kind',
        message: `cannot change the kind of '${name}'`,
        hint: `send kind '${existing.kind}', or use another name`,
      },
    ]);
  }
  const policy = existing ?? em.create(PlatformPolicy, { name, kind: body.kind });
  const before = existing ? { enabled: existing.enabled, config: existing.config } : null;
  policy.enabled = body.enabled;
  policy.config = body.config;
  policy.updatedAt = new Date();
  policy.updatedBy = caller.actor.sub;
  recordIn(em, caller, {
    ...facts,
    outcome: 'success',
    details: { before, after: { kind: body.kind, enabled: body.enabled, config: body.config } },
  });
  await em.flush();
  // Committed: this process forgets its cached policies now, every other one when the notice arrives.
  forgetPolicies();
  await em.getConnection().execute(`select pg_notify('${POLICIES_CHANNEL}', ?)`, [name]);
  return policy;
}

/** A dry run's question: an action's body, and the ids of what it would change where the rules need them. */
export type DryRun =
  | { action: 'service.create'; tags: Record<string, string> }
  | { action: 'service.update'; tags?: Record<string, string>; serviceId?: number }
  | { action: 'environment.create'; tier: string; config?: Record<string, unknown> }
  | {
      action: 'deployment.create';
      version: string;
      config?: Record<string, unknown>;
      serviceId?: number;
      environmentId?: number;
    };

/**
 * The violations the action would meet, by the same evaluation the write itself runs; changes
 * nothing. An update without new tags is judged on the stored ones; a deployment's promotion order
 * is judged when the environment is named.
 */
export async function dryRun(deps: ServiceDeps, question: DryRun): Promise<Violation[]> {
  const em = deps.orm.em.fork();
  const policies = await loadPolicies(em);
  let change: GuardedChange;
  switch (question.action) {
    case 'service.update': {
      const stored = question.serviceId === undefined ? null : await em.findOne(Service, question.serviceId);
      if (question.serviceId !== undefined && !stored)
        throw new NotFoundError(`service ${question.serviceId} does not exist`);
      change = { action: 'service.update', tags: question.tags ?? stored?.tags ?? {} };
      break;
    }
    case 'deployment.create': {
      const env =
        question.environmentId === undefined ? null : await em.findOne(Environment, question.environmentId);
      if (
        question.environmentId !== undefined &&
        (!env || (question.serviceId !== undefined && env.serviceId !== question.serviceId))
      ) {
        throw new NotFoundError(`environment ${question.environmentId} does not exist`);
      }
      change = {
        action: 'deployment.create',
        version: question.version,
        config: question.config,
        ...(env ? { target: { serviceId: env.serviceId, tier: env.tier } } : {}),
      };
      break;
    }
    default:
      change = question;
  }
  const violations = await evaluate(em, policies, change);
  // A deploy freeze refuses the trigger with 409; the dry run reports it beside the rest.
  const tier = change.action === 'deployment.create' ? change.target?.tier : undefined;
  const freeze = tier === undefined ? null : freezeHolding(policies.deployFreeze, tier, 'deploy', new Date());
  return freeze ? [...violations, freezeViolation(tier!, freeze)] : violations;
}
