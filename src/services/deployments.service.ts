/** Deployments: trigger, decide, cancel and read — the use cases behind the deployment routes. */
import { createHash, randomUUID } from 'node:crypto';
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { AuditLog, Approval, Deployment, Environment } from '../domain/entities';
import { ConflictError, NotFoundError } from '../domain/errors';
import { loadPolicies } from '../domain/deployment-rules';
import { ACTIVE_DEPLOYMENT_STATUSES, isTerminal, moveDeployment, type DeploymentStatus } from '../domain/lifecycle';
import { approvalRequirement } from '../domain/policies';
import { canCancel, canDecide, canDeploy } from '../domain/rbac';
import { deploymentsStarted } from '../metrics';
import { nextId } from '../db/next-id';
import { deployJobId } from '../workflows/contract';
import { byCaller, deny, isUniqueViolation, recordAlone, recordIn, refuseViolations } from './audit-trail';
import type { Caller } from './caller';
import { evaluate } from './guardrails';
import type { ServiceDeps } from './service-deps';
import { loadService } from './services.service';

/** A deployment with its approvals, as the API shows it. */
export interface DeploymentView {
  deployment: Deployment;
  approvals: Approval[];
}

/** What a trigger asks for. */
export interface DeploymentRequest {
  version: string;
  initiated_by?: string;
  config?: Record<string, unknown>;
}

/** A decision as the approver sends it. */
export interface DecisionRequest {
  decision: 'approve' | 'reject';
  comment?: string;
}

/** A deployment and its approvals, or 404. */
export async function getDeployment(deps: ServiceDeps, id: number): Promise<DeploymentView> {
  const em = deps.orm.em.fork();
  const deployment = await em.findOne(Deployment, id);
  if (!deployment) throw new NotFoundError(`deployment ${id} does not exist`);
  return { deployment, approvals: await em.find(Approval, { deploymentId: id }, { orderBy: { id: 'asc' } }) };
}

/** A page of an environment's history, newest first (`limit + 1` rows before `before`), with their approvals. */
export async function deploymentHistory(deps: ServiceDeps, serviceId: number, environmentId: number, page: { limit: number; before?: number }): Promise<DeploymentView[]> {
  const em = deps.orm.em.fork();
  const env = await em.findOne(Environment, { id: environmentId, serviceId });
  if (!env) throw new NotFoundError(`service ${serviceId} has no environment ${environmentId}`);
  const rows = await em.find(Deployment, { environmentId: env.id, ...(page.before ? { id: { $lt: page.before } } : {}) }, { orderBy: { id: 'desc' }, limit: page.limit + 1 });
  const approvals = rows.length ? await em.find(Approval, { deploymentId: { $in: rows.map((r) => r.id) } }, { orderBy: { id: 'asc' } }) : [];
  return rows.map((deployment) => ({ deployment, approvals: approvals.filter((a) => a.deploymentId === deployment.id) }));
}

const requestHash = (sub: string, envId: number, body: DeploymentRequest): string =>
  createHash('sha256').update(JSON.stringify({ sub, envId, body })).digest('hex');

/**
 * Triggers a deployment: permission, `Idempotency-Key` replay, guardrails, readiness, then the row
 * and its audit entry in one transaction (the partial unique index is the environment lock), then
 * the run. `replayed` is true when the key named an earlier trigger of the same request.
 */
export async function triggerDeployment(
  deps: ServiceDeps,
  caller: Caller,
  target: { serviceId: number; environmentId: number },
  body: DeploymentRequest,
  key: string | null,
): Promise<DeploymentView & { replayed: boolean }> {
  const em = deps.orm.em.fork();
  const { service, team } = await loadService(em, target.serviceId);
  const env = await em.findOne(Environment, { id: target.environmentId, serviceId: service.id });
  if (!env) throw new NotFoundError(`service ${target.serviceId} has no environment ${target.environmentId}`);
  const teamName = team?.name ?? null;
  const facts = { action: 'deployment.create', targetType: 'environment', targetId: env.id, team: teamName, details: { version: body.version, tier: env.tier } };
  if (!canDeploy(caller.actor, teamName)) await deny(deps.orm, caller, facts, `you may not deploy services of ${teamName ? `team '${teamName}'` : 'no team'}`);
  const hash = requestHash(caller.actor.sub, env.id, body);
  const replay = async (existing: Deployment) => {
    if (existing.requestHash !== hash) {
      throw new ConflictError(`Idempotency-Key '${key}' was already used for a different request`, { deployment_id: existing.id, job_id: existing.jobId });
    }
    return { ...(await getDeployment(deps, existing.id)), replayed: true };
  };
  const earlier = key === null ? null : await em.findOne(Deployment, { environmentId: env.id, idempotencyKey: key });
  if (earlier) return replay(earlier);

  const policies = await loadPolicies(em);
  const violations = await evaluate(em, policies, { action: 'deployment.create', version: body.version, config: body.config, target: { serviceId: service.id, tier: env.tier } });
  await refuseViolations(deps.orm, caller, facts, violations, body, policies);
  if (env.status !== 'ready') {
    throw new ConflictError(`environment '${env.name}' is ${env.status}, not ready; wait for its provisioning job ${env.jobId}`, { job_id: env.jobId });
  }
  const { required, timeoutSeconds } = approvalRequirement(env.tier, policies);
  let deployment: Deployment;
  try {
    deployment = await em.transactional(async (tx) => {
      const id = await nextId(tx, 'deployment_id_seq');
      const jobId = deployJobId(service.name, env.name, id);
      const now = new Date();
      const created = tx.create(Deployment, {
        id, jobId, serviceId: service.id, environmentId: env.id, tier: env.tier, version: body.version, status: 'pending',
        initiatedBy: body.initiated_by ?? null, requestedBy: caller.actor.sub, team: teamName, config: body.config ?? {},
        approvalsRequired: required, approvalTimeoutSeconds: timeoutSeconds, idempotencyKey: key, requestHash: hash,
        correlationId: caller.correlationId, timeline: [{ status: 'pending', at: now.toISOString(), actor: caller.actor.sub }], createdAt: now, updatedAt: now,
      });
      recordIn(tx, caller, { ...facts, outcome: 'success', targetType: 'deployment', targetId: id, details: { ...facts.details, job_id: jobId, environment_id: env.id } });
      return created;
    });
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const fresh = deps.orm.em.fork();
    const raced = key === null ? null : await fresh.findOne(Deployment, { environmentId: env.id, idempotencyKey: key });
    if (raced) return replay(raced);
    throw await lockConflict(fresh, env);
  }
  try {
    await deps.jobs.start(deployment.jobId, {
      kind: 'deployment',
      input: { deploymentId: deployment.id, service: service.name, environment: env.name, tier: env.tier, version: body.version, team: teamName, requestedBy: caller.actor.sub },
      summary: `Deploy ${service.name} ${body.version} to ${env.name} (${env.tier})${required > 0 ? `, ${required} approval(s)` : ''}`,
    }, caller.correlationId);
  } catch (err) {
    // The start failed, or its answer was lost: end the deployment if it is still `pending`, so it
    // does not hold the environment's lock. If the run did start and has moved it on already, the
    // deployment is under way: answer as for a start that succeeded.
    if (await endUnstarted(deps, caller, deployment.id, ['pending'], 'failed', 'the workflow could not be started: Temporal unavailable')) throw err;
  }
  deploymentsStarted.inc({ tier: env.tier });
  return { deployment, approvals: [], replayed: false };
}

/** The 409 for an environment whose lock another deployment holds, naming that deployment. */
async function lockConflict(em: EntityManager, env: Environment): Promise<ConflictError> {
  const active = await em.findOne(Deployment, { environmentId: env.id, status: { $in: [...ACTIVE_DEPLOYMENT_STATUSES] } });
  return new ConflictError(
    active
      ? `environment '${env.name}' is locked by active deployment ${active.jobId} (${active.status}); wait for it or cancel it`
      : `environment '${env.name}' is locked by another deployment; retry`,
    active ? { active_job_id: active.jobId, active_deployment_id: active.id } : {},
  );
}

/**
 * Sends an eligible approver's decision to the deployment's run, which records it or refuses it
 * (409); answers the deployment as it stands after the decision.
 */
export async function decide(deps: ServiceDeps, caller: Caller, id: number, body: DecisionRequest): Promise<DeploymentView> {
  const { deployment: d } = await getDeployment(deps, id);
  const facts = { action: `deployment.${body.decision}`, targetType: 'deployment', targetId: d.id, team: d.team };
  if (!canDecide(caller.actor, d.team, d.requestedBy)) {
    await deny(deps.orm, caller, facts, caller.actor.sub === d.requestedBy
      ? 'you requested this deployment; another eligible approver must decide'
      : `only PLATFORM_ADMIN or a TEAM_ADMIN of team '${d.team ?? '(none)'}' may decide on this deployment`);
  }
  if (d.status !== 'awaiting_approval') throw new ConflictError(`deployment ${d.id} is ${d.status}, not awaiting approval`);
  if (await deps.orm.em.fork().count(Approval, { deploymentId: d.id, approver: caller.actor.sub })) {
    throw new ConflictError(`${caller.actor.sub} has already decided on deployment ${d.id}`);
  }
  // One update per request: with a shared id, parallel requests of one approver were all answered
  // with the first one's outcome (202 each, one decision recorded). Each request is a decision of
  // its own, which the run records or refuses.
  await deps.jobs.decide(d.jobId, `decision-${d.id}-${randomUUID()}`, {
    approver: caller.actor.sub, roles: caller.actor.roles, decision: body.decision, comment: body.comment ?? null, correlationId: caller.correlationId,
  });
  return getDeployment(deps, d.id);
}

/** Cancels a deployment: its run records `cancelled` and releases the lock; one with no run is ended here. */
export async function cancelDeployment(deps: ServiceDeps, caller: Caller, id: number, reason: string | undefined): Promise<DeploymentView> {
  const { deployment: d } = await getDeployment(deps, id);
  const facts = { action: 'deployment.cancel', targetType: 'deployment', targetId: d.id, team: d.team };
  if (!canCancel(caller.actor, d.team, d.requestedBy)) {
    await deny(deps.orm, caller, facts, `only PLATFORM_ADMIN, a TEAM_ADMIN of team '${d.team ?? '(none)'}' or the requester may cancel this deployment`);
  }
  if (isTerminal(d.status)) throw new ConflictError(`deployment ${d.id} already ended as ${d.status}`);
  // No run exists (its start failed, or Temporal lost it): end the deployment here.
  if ((await deps.jobs.cancel(d.jobId)) === 'no-run') await endUnstarted(deps, caller, d.id, ACTIVE_DEPLOYMENT_STATUSES, 'cancelled', 'cancelled before its workflow ran');
  await recordAlone(deps.orm, caller, { ...facts, outcome: 'success', details: { job_id: d.jobId, ...(reason ? { reason } : {}) } });
  return getDeployment(deps, d.id);
}

/**
 * Ends a deployment that has no run behind it, if its status is one of `from`; true when it did.
 * The move goes through the lifecycle module like the run's own, with the caller as its actor.
 * Takes the row lock the activities take, so a run that did start after all (a start whose answer
 * was lost) and this end are serialised: whichever comes second sees the other's status.
 */
async function endUnstarted(deps: ServiceDeps, caller: Caller, id: number, from: readonly DeploymentStatus[], to: 'failed' | 'cancelled', detail: string): Promise<boolean> {
  return deps.orm.em.fork().transactional(async (tx) => {
    const d = await tx.findOne(Deployment, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!d || !from.includes(d.status)) return false;
    tx.create(AuditLog, moveDeployment(d, to, { ...byCaller(caller), detail, error: detail }));
    return true;
  });
}
