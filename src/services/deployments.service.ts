/** Triggering a deployment: the use case behind `POST …/deployments`. */
import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { nextId } from '../db/next-id';
import { Deployment, Environment, type Service } from '../domain/entities';
import { ConflictError, NotFoundError } from '../domain/errors';
import { loadPolicies } from '../domain/deployment-rules';
import { ACTIVE_DEPLOYMENT_STATUSES } from '../domain/lifecycle';
import { approvalRequirement } from '../domain/policies';
import { canDeploy } from '../domain/rbac';
import { deploymentsStarted } from '../metrics';
import { deployJobId } from '../workflows/contract';
import { deny, isUniqueViolation, recordIn, refuseViolations } from './audit-trail';
import type { Caller } from './caller';
import { endUnstarted, getDeployment, type DeploymentView } from './deployment-records';
import { evaluate } from './guardrails';
import type { ServiceDeps } from './service-deps';
import { loadService } from './services.service';

/** What a trigger asks for. */
export interface DeploymentRequest {
  version: string;
  initiated_by?: string;
  config?: Record<string, unknown>;
}

const requestHash = (sub: string, envId: number, body: DeploymentRequest): string =>
  createHash('sha256').update(JSON.stringify({ sub, envId, body })).digest('hex');

/** What a trigger is about: the service, its team and the environment, found once. */
interface TriggerTarget {
  service: Service;
  teamName: string | null;
  env: Environment;
}

/** The audit facts every entry of a trigger shares. */
const triggerFacts = (t: TriggerTarget, body: DeploymentRequest) => ({
  action: 'deployment.create',
  targetType: 'environment',
  targetId: t.env.id,
  team: t.teamName,
  details: { version: body.version, tier: t.env.tier },
});

/**
 * Triggers a deployment: permission, `Idempotency-Key` replay, guardrails, readiness, then the row
 * and its audit entry in one transaction (the partial unique index is the environment lock), then
 * the run. `replayed` is true when the key named an earlier trigger of the same request.
 */
export async function triggerDeployment(
  deps: ServiceDeps,
  caller: Caller,
  where: { serviceId: number; environmentId: number },
  body: DeploymentRequest,
  key: string | null,
): Promise<DeploymentView & { replayed: boolean }> {
  const em = deps.orm.em.fork();
  const { service, team } = await loadService(em, where.serviceId);
  const env = await em.findOne(Environment, { id: where.environmentId, serviceId: service.id });
  if (!env) throw new NotFoundError(`service ${where.serviceId} has no environment ${where.environmentId}`);
  const t: TriggerTarget = { service, teamName: team?.name ?? null, env };
  const facts = triggerFacts(t, body);
  if (!canDeploy(caller.actor, t.teamName)) {
    const whose = t.teamName ? `team '${t.teamName}'` : 'no team';
    await deny(deps.orm, caller, facts, `you may not deploy services of ${whose}`);
  }
  const hash = requestHash(caller.actor.sub, env.id, body);
  const replay = async (existing: Deployment) => {
    if (existing.requestHash !== hash) {
      throw new ConflictError(`Idempotency-Key '${key}' was already used for a different request`, {
        deployment_id: existing.id,
        job_id: existing.jobId,
      });
    }
    return { ...(await getDeployment(deps, existing.id)), replayed: true };
  };
  const byKey = (m: EntityManager) =>
    key === null ? null : m.findOne(Deployment, { environmentId: env.id, idempotencyKey: key });
  const earlier = await byKey(em);
  if (earlier) return replay(earlier);

  const policies = await loadPolicies(em);
  const change = { action: 'deployment.create' as const, version: body.version, config: body.config };
  const violations = await evaluate(em, policies, {
    ...change,
    target: { serviceId: service.id, tier: env.tier },
  });
  await refuseViolations(deps.orm, caller, facts, violations, body, policies);
  if (env.status !== 'ready') {
    throw new ConflictError(
      `environment '${env.name}' is ${env.status}, not ready; wait for its provisioning job ${env.jobId}`,
      { job_id: env.jobId },
    );
  }
  const approval = approvalRequirement(env.tier, policies);
  let deployment: Deployment;
  try {
    deployment = await insertDeployment(deps, caller, t, body, { key, hash, ...approval });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const fresh = deps.orm.em.fork();
    const raced = await byKey(fresh);
    if (raced) return replay(raced);
    throw await lockConflict(fresh, env);
  }
  await startRun(deps, caller, t, deployment, approval.required);
  return { deployment, approvals: [], replayed: false };
}

/** The deployment row, `pending`, and its audit entry, in one transaction; the id comes first, for the job id. */
function insertDeployment(
  deps: ServiceDeps,
  caller: Caller,
  t: TriggerTarget,
  body: DeploymentRequest,
  o: { key: string | null; hash: string; required: number; timeoutSeconds: number },
): Promise<Deployment> {
  const facts = triggerFacts(t, body);
  return deps.orm.em.fork().transactional(async (tx) => {
    const id = await nextId(tx, 'deployment_id_seq');
    const jobId = deployJobId(t.service.name, t.env.name, id);
    const now = new Date();
    const created = tx.create(Deployment, {
      id,
      jobId,
      serviceId: t.service.id,
      environmentId: t.env.id,
      tier: t.env.tier,
      version: body.version,
      status: 'pending',
      initiatedBy: body.initiated_by ?? null,
      requestedBy: caller.actor.sub,
      team: t.teamName,
      config: body.config ?? {},
      target: t.env.target,
      approvalsRequired: o.required,
      approvalTimeoutSeconds: o.timeoutSeconds,
      idempotencyKey: o.key,
      requestHash: o.hash,
      correlationId: caller.correlationId,
      timeline: [{ status: 'pending', at: now.toISOString(), actor: caller.actor.sub }],
      createdAt: now,
      updatedAt: now,
    });
    recordIn(tx, caller, {
      ...facts,
      outcome: 'success',
      targetType: 'deployment',
      targetId: id,
      details: { ...facts.details, job_id: jobId, environment_id: t.env.id },
    });
    return created;
  });
}

/**
 * Starts the deployment's run. When the start failed, or its answer was lost, the deployment is
 * ended if it is still `pending`, so it does not hold the environment's lock, and the 503 goes on;
 * if the run did start and has moved it on already, the deployment is under way: no error.
 */
async function startRun(
  deps: ServiceDeps,
  caller: Caller,
  t: TriggerTarget,
  d: Deployment,
  required: number,
): Promise<void> {
  const { service, env } = t;
  const approvals = required > 0 ? `, ${required} approval(s)` : '';
  try {
    await deps.jobs.start(
      d.jobId,
      {
        kind: 'deployment',
        input: {
          deploymentId: d.id,
          service: service.name,
          environment: env.name,
          tier: env.tier,
          version: d.version,
          team: t.teamName,
          requestedBy: caller.actor.sub,
          target: d.target,
        },
        summary: `Deploy ${service.name} ${d.version} to ${env.name} (${env.tier}) through '${d.target}'${approvals}`,
      },
      caller.correlationId,
    );
  } catch (err) {
    const detail = 'the workflow could not be started: Temporal unavailable';
    if (await endUnstarted(deps, caller, d.id, ['pending'], 'failed', detail)) throw err;
  }
  deploymentsStarted.inc({ tier: env.tier });
}

/** The 409 for an environment whose lock another deployment holds, naming that deployment. */
async function lockConflict(em: EntityManager, env: Environment): Promise<ConflictError> {
  const active = await em.findOne(Deployment, {
    environmentId: env.id,
    status: { $in: [...ACTIVE_DEPLOYMENT_STATUSES] },
  });
  return new ConflictError(
    active
      ? `environment '${env.name}' is locked by active deployment ${active.jobId} (${active.status}); wait for it or cancel it`
      : `environment '${env.name}' is locked by another deployment; retry`,
    active ? { active_job_id: active.jobId, active_deployment_id: active.id } : {},
  );
}
