/** Environments of a service: provisioned by a run each, read and listed. */
import { rowsAfter } from '../db/keyset';
import { nextId } from '../db/next-id';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Environment, Target, type Service } from '../domain/entities';
import { ConflictError, InputError, NotFoundError } from '../domain/errors';
import { DEFAULT_TARGET, type Verification } from '../domain/targets';
import { loadPolicies } from '../domain/deployment-rules';
import { canProvision } from '../domain/rbac';
import { provisionJobId } from '../workflows/contract';
import { deny, isUniqueViolation, recordIn, refuseViolations, type RefusalFacts } from './audit-trail';
import type { Caller } from './caller';
import { evaluate } from './guardrails';
import type { ServiceDeps } from './service-deps';
import { loadService } from './services.service';

/** What provisioning an environment takes. */
export interface EnvironmentRequest {
  name: string;
  tier: string;
  config?: Record<string, unknown>;
  target?: string;
}

/** What a PATCH of an environment may change. */
export interface EnvironmentChange {
  target?: string;
  config?: Record<string, unknown>;
  verification?: Verification | null;
}

const sameRequest = (env: Environment, body: EnvironmentRequest): boolean =>
  env.tier === body.tier &&
  env.target === (body.target ?? DEFAULT_TARGET) &&
  JSON.stringify(env.config) === JSON.stringify(body.config ?? {});

/** The target named in a body, or a 400 naming `body.target` when there is none of that name. */
async function knownTarget(em: EntityManager, name: string): Promise<Target> {
  const target = await em.findOne(Target, { name });
  if (target) return target;
  throw new InputError(`target '${name}' does not exist`, [
    {
      rule: 'schema',
      field: 'body.target',
      message: `no target is named '${name}'`,
      hint: 'name a target of GET /api/targets (the default is "simulated")',
    },
  ]);
}

/**
 * Provisions an environment: permission, guardrails, the row and its audit entry in one
 * transaction, then its run. The same request again while its run may not have started (an
 * earlier 503) starts it now instead of answering 409.
 */
export async function provisionEnvironment(
  deps: ServiceDeps,
  caller: Caller,
  serviceId: number,
  body: EnvironmentRequest,
): Promise<Environment> {
  const em = deps.orm.em.fork();
  const { service, team } = await loadService(em, serviceId);
  const teamName = team?.name ?? null;
  const facts = {
    action: 'environment.create',
    targetType: 'service',
    targetId: service.id,
    team: teamName,
    details: { name: body.name, tier: body.tier },
  };
  if (!canProvision(caller.actor, teamName)) {
    await deny(
      deps.orm,
      caller,
      facts,
      `you may not provision environments for ${teamName ? `team '${teamName}'` : 'a service without a team'}`,
    );
  }
  const policies = await loadPolicies(em);
  await refuseViolations(
    deps.orm,
    caller,
    facts,
    await evaluate(em, policies, { action: 'environment.create', tier: body.tier, config: body.config }),
    body,
    policies,
  );
  await knownTarget(em, body.target ?? DEFAULT_TARGET);
  let env: Environment;
  try {
    env = await insertEnvironment(deps, caller, service, body, facts);
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const existing = await deps.orm.em
      .fork()
      .findOne(Environment, { serviceId: service.id, name: body.name });
    if (!existing || existing.status !== 'provisioning' || !sameRequest(existing, body)) {
      throw new ConflictError(
        `service '${service.name}' already has an environment named '${body.name}'`,
        existing ? { environment_id: existing.id } : {},
      );
    }
    env = existing;
  }
  await deps.jobs.start(
    env.jobId,
    {
      kind: 'provisioning',
      input: {
        environmentId: env.id,
        service: service.name,
        environment: env.name,
        tier: env.tier,
        team: teamName,
        requestedBy: caller.actor.sub,
        target: env.target,
      },
      summary: `Provision ${service.name}/${env.name} (${env.tier}) through target '${env.target}'`,
    },
    caller.correlationId,
  );
  return env;
}

/** The environment row, `provisioning`, and its audit entry, in one transaction. */
function insertEnvironment(
  deps: ServiceDeps,
  caller: Caller,
  service: Service,
  body: EnvironmentRequest,
  facts: RefusalFacts,
): Promise<Environment> {
  return deps.orm.em.fork().transactional(async (tx) => {
    // The id first, so the job id (which ends in it) is written in the same insert.
    const id = await nextId(tx, 'environment_id_seq');
    const jobId = provisionJobId(service.name, body.name, id);
    const created = tx.create(Environment, {
      id,
      serviceId: service.id,
      name: body.name,
      tier: body.tier,
      config: body.config ?? {},
      target: body.target ?? DEFAULT_TARGET,
      jobId,
      createdBy: caller.actor.sub,
    });
    recordIn(tx, caller, {
      ...facts,
      outcome: 'success',
      targetType: 'environment',
      targetId: id,
      details: { ...facts.details, job_id: jobId, target: body.target ?? DEFAULT_TARGET },
    });
    return created;
  });
}

/** A page of a service's environments (`limit + 1` rows after `after`), or 404 for no such service. */
export async function listEnvironments(
  deps: ServiceDeps,
  serviceId: number,
  page: { limit: number; after?: number },
): Promise<Environment[]> {
  const em = deps.orm.em.fork();
  await loadService(em, serviceId);
  return rowsAfter(em, Environment, 'id', page, { serviceId });
}

/** One environment of a service, or 404. */
export async function getEnvironment(
  deps: ServiceDeps,
  serviceId: number,
  environmentId: number,
): Promise<Environment> {
  const env = await deps.orm.em.fork().findOne(Environment, { id: environmentId, serviceId });
  if (!env) throw new NotFoundError(`service ${serviceId} has no environment ${environmentId}`);
  return env;
}

/**
 * Changes an environment's target, config or verification (who: as provisioning): guardrails on
 * the config, the target must exist. Applies to jobs started afterwards.
 */
export async function patchEnvironment(
  deps: ServiceDeps,
  caller: Caller,
  where: { serviceId: number; environmentId: number },
  change: EnvironmentChange,
): Promise<Environment> {
  const em = deps.orm.em.fork();
  const { service, team } = await loadService(em, where.serviceId);
  const env = await em.findOne(Environment, { id: where.environmentId, serviceId: service.id });
  if (!env) throw new NotFoundError(`service ${where.serviceId} has no environment ${where.environmentId}`);
  const teamName = team?.name ?? null;
  const facts = {
    action: 'environment.update',
    targetType: 'environment',
    targetId: env.id,
    team: teamName,
  };
  if (!canProvision(caller.actor, teamName)) {
    await deny(
      deps.orm,
      caller,
      facts,
      `you may not change environments of ${teamName ? `team '${teamName}'` : 'a service without a team'}`,
    );
  }
  if (change.config) {
    const policies = await loadPolicies(em);
    const violations = await evaluate(em, policies, {
      action: 'environment.create',
      tier: env.tier,
      config: change.config,
    });
    await refuseViolations(deps.orm, caller, facts, violations, change, policies);
  }
  if (change.target !== undefined) await knownTarget(em, change.target);
  const before = { target: env.target, config: env.config, verification: env.verification };
  if (change.target !== undefined) env.target = change.target;
  if (change.config !== undefined) env.config = change.config;
  if (change.verification !== undefined) env.verification = change.verification;
  recordIn(em, caller, {
    ...facts,
    outcome: 'success',
    details: { before, after: { target: env.target, config: env.config, verification: env.verification } },
  });
  await em.flush();
  return env;
}
