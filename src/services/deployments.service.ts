/** Triggering a deployment: the use case behind `POST …/deployments`. */
import { createHash } from 'node:crypto';
import type { EntityManager } from '@mikro-orm/postgresql';
import { insertDeployment } from '../db/deployments';
import { Deployment, Environment, Service } from '../domain/entities';
import { ConflictError, NotFoundError } from '../domain/errors';
import { loadPolicies } from '../domain/deployment-rules';
import { approvalRequirement } from '../domain/policies';
import { canDeploy } from '../domain/rbac';
import { byCaller, deny, isUniqueViolation, refuseViolations } from './audit-trail';
import type { Caller } from './caller';
import { getDeployment, type DeploymentView } from './deployment-records';
import {
  admitOverride,
  lockConflict,
  refuseFrozen,
  startRun,
  type FreezeOverride,
  type TriggerTarget,
} from './deployment-start';
import { evaluate } from './guardrails';
import type { ServiceDeps } from './service-deps';
import { loadService } from './services.service';

/** What a trigger asks for. */
export interface DeploymentRequest {
  version: string;
  initiated_by?: string;
  config?: Record<string, unknown>;
  freeze_override?: FreezeOverride;
}

const requestHash = (sub: string, envId: number, body: DeploymentRequest): string =>
  createHash('sha256').update(JSON.stringify({ sub, envId, body })).digest('hex');

/** The audit facts every entry of a trigger shares. */
const triggerFacts = (t: TriggerTarget, body: DeploymentRequest) => ({
  action: 'deployment.create',
  targetType: 'environment',
  targetId: t.env.id,
  team: t.teamName,
  details: { version: body.version, tier: t.env.tier },
});

/**
 * The service, its team and one of its environments, in one round trip (the trigger's hot path);
 * 404 naming what does not exist.
 */
export async function triggerTarget(
  em: EntityManager,
  where: { serviceId: number; environmentId: number },
): Promise<TriggerTarget> {
  const [row] = await em
    .getConnection()
    .execute<{ s: Record<string, unknown>; e: Record<string, unknown>; team: string | null }[]>(
      `select row_to_json(s) as s, row_to_json(e) as e, t.name as team
       from environment e join service s on s.id = e.service_id left join team t on t.id = s.team_id
      where e.id = ? and s.id = ?`,
      [where.environmentId, where.serviceId],
    );
  if (!row) {
    await loadService(em, where.serviceId);
    throw new NotFoundError(`service ${where.serviceId} has no environment ${where.environmentId}`);
  }
  return { service: em.map(Service, row.s), teamName: row.team, env: em.map(Environment, row.e) };
}

/**
 * Triggers a deployment: permission (and break-glass), `Idempotency-Key` replay, guardrails, deploy
 * freezes, readiness, then the row and its audit entry in one transaction (the partial unique index
 * is the environment lock), then the run. `replayed` is true when the key named an earlier trigger
 * of the same request.
 */
export async function triggerDeployment(
  deps: ServiceDeps,
  caller: Caller,
  where: { serviceId: number; environmentId: number },
  body: DeploymentRequest,
  key: string | null,
): Promise<DeploymentView & { replayed: boolean }> {
  const em = deps.orm.em.fork();
  const t = await triggerTarget(em, where);
  const { env } = t;
  const facts = triggerFacts(t, body);
  if (!canDeploy(caller.actor, t.teamName)) {
    const whose = t.teamName ? `team '${t.teamName}'` : 'no team';
    await deny(deps.orm, caller, facts, `you may not deploy services of ${whose}`);
  }
  const override = await admitOverride(deps, caller, facts, body.freeze_override);
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
    target: { serviceId: t.service.id, tier: env.tier },
  });
  await refuseViolations(deps.orm, caller, facts, violations, body, policies);
  await refuseFrozen(deps, caller, facts, policies, env.tier, 'deploy', override);
  if (env.status !== 'ready') {
    throw new ConflictError(
      `environment '${env.name}' is ${env.status}, not ready; wait for its provisioning job ${env.jobId}`,
      { job_id: env.jobId },
    );
  }
  const approval = approvalRequirement(env.tier, policies);
  let deployment: Deployment;
  try {
    deployment = await deps.orm.em.fork().transactional((tx) =>
      insertDeployment(
        tx,
        {
          service: t.service,
          environment: env,
          team: t.teamName,
          version: body.version,
          config: body.config ?? {},
          initiatedBy: body.initiated_by ?? null,
          requestedBy: caller.actor.sub,
          approvalsRequired: approval.required,
          approvalTimeoutSeconds: approval.timeoutSeconds,
          idempotencyKey: key,
          requestHash: hash,
          correlationId: caller.correlationId,
          freezeOverride: override,
        },
        byCaller(caller),
      ),
    );
  } catch (err) {
    if (!isUniqueViolation(err)) throw err;
    const fresh = deps.orm.em.fork();
    const raced = await byKey(fresh);
    if (raced) return replay(raced);
    throw await lockConflict(fresh, env);
  }
  await startRun(deps, caller, t, deployment);
  return { deployment, approvals: [], replayed: false };
}
