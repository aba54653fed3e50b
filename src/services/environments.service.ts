/** Environments of a service: provisioned by a run each, read and listed. */
import { rowsAfter } from '../db/keyset';
import { nextId } from '../db/next-id';
import { Environment, type Service } from '../domain/entities';
import { ConflictError, NotFoundError } from '../domain/errors';
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
}

const sameRequest = (env: Environment, body: EnvironmentRequest): boolean =>
  env.tier === body.tier && JSON.stringify(env.config) === JSON.stringify(body.config ?? {});

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
      },
      summary: `Provision ${service.name}/${env.name} (${env.tier})`,
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
      jobId,
      createdBy: caller.actor.sub,
    });
    recordIn(tx, caller, {
      ...facts,
      outcome: 'success',
      targetType: 'environment',
      targetId: id,
      details: { ...facts.details, job_id: jobId },
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
