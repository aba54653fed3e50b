import { createHash, randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { z } from 'zod';
import { Approval, Deployment, Environment } from '../../domain/entities';
import { ConflictError, NotFoundError, ServiceUnavailableError } from '../../domain/errors';
import { applyStatus, loadPolicies, promotionViolation } from '../../domain/deployment-rules';
import { approvalRequirement, evaluateDeploymentConfig } from '../../domain/policies';
import { canCancel, canDecide, canDeploy } from '../../domain/rbac';
import { ACTIVE_DEPLOYMENT_STATUSES, isTerminal, type Actor, type DeploymentStatus } from '../../domain/types';
import { deploymentsStarted } from '../../metrics';
import { decideUpdate, deployJobId } from '../../workflows/contract';
import { isUnavailable } from '../errors';
import { parseWith, route, type Ctx } from '../route';
import { cancelBody, decisionCreate, deploymentCreate, idempotencyKey } from '../schemas';
import { deploymentJson } from '../serializers';
import { audit, auditAlone, decodeCursor, deny, idParam, isUniqueViolation, pageQuery, refuse, toPage } from '../support';
import type { AppDeps, AppState } from '../types';
import { startJob } from '../workflow-starts';
import { loadService } from './services.routes';

/** Serializes a deployment with its approvals. */
export async function deploymentView(em: EntityManager, d: Deployment, deps: AppDeps) {
  const approvals = await em.find(Approval, { deploymentId: d.id }, { orderBy: { id: 'asc' } });
  return deploymentJson(d, approvals, deps.config);
}

function requestHash(actor: Actor, envId: number, body: unknown): string {
  return createHash('sha256').update(JSON.stringify({ sub: actor.sub, envId, body })).digest('hex');
}

async function loadDeployment(em: EntityManager, id: number): Promise<Deployment> {
  const d = await em.findOne(Deployment, id);
  if (!d) throw new NotFoundError(`deployment ${id} does not exist`);
  return d;
}

/** Deployments: trigger, history, approvals, cancellation. */
export function registerDeploymentRoutes(router: Router<AppState>, deps: AppDeps): void {
  route(
    router,
    {
      method: 'post',
      path: '/services/:id/environments/:envId/deployments',
      tag: 'deployments',
      summary: 'Trigger a deployment (202). An Idempotency-Key header makes retries return the same deployment (200).',
      params: z.strictObject({ id: idParam, envId: idParam }),
      body: deploymentCreate,
      responses: {
        200: 'a replay of the same Idempotency-Key: the same deployment and job_id',
        202: 'the deployment, pending, with its job_id',
        400: 'invalid body, restricted config key or promotion order',
        403: 'not allowed for this team',
        404: 'no such service or environment',
        409: 'environment not ready, an active deployment holds the environment, or the key was used for another request',
        503: 'Temporal unavailable',
      },
    },
    async (ctx, { params, body, actor }) => {
      const keyHeader = ctx.get('idempotency-key');
      const key = keyHeader === '' ? null : parseWith(idempotencyKey, keyHeader, 'header.Idempotency-Key');
      const em = deps.orm.em.fork();
      const { service, team } = await loadService(em, params.id);
      const env = await em.findOne(Environment, { id: params.envId, serviceId: service.id });
      if (!env) throw new NotFoundError(`service ${params.id} has no environment ${params.envId}`);
      const teamName = team?.name ?? null;
      const facts = { action: 'deployment.create', targetType: 'environment', targetId: env.id, team: teamName, details: { version: body.version, tier: env.tier } };
      if (!canDeploy(actor, teamName)) {
        await deny(deps, ctx, facts, `you may not deploy services of ${teamName ? `team '${teamName}'` : 'no team'}`);
      }
      const hash = requestHash(actor, env.id, body);
      const replay = async (existing: Deployment): Promise<void> => {
        if (existing.requestHash !== hash) {
          throw new ConflictError(`Idempotency-Key '${key}' was already used for a different request`, { deployment_id: existing.id, job_id: existing.jobId });
        }
        ctx.status = 200;
        ctx.body = await deploymentView(em, existing, deps);
      };
      if (key !== null) {
        const existing = await em.findOne(Deployment, { environmentId: env.id, idempotencyKey: key });
        if (existing) return replay(existing);
      }

      const policies = await loadPolicies(em);
      const violations = evaluateDeploymentConfig(body.config, policies);
      const order = await promotionViolation(em, policies, service.id, env.tier, body.version);
      if (order) violations.push(order);
      if (violations.length > 0) await refuse(deps, ctx, facts, violations, body, policies);
      if (env.status !== 'ready') {
        throw new ConflictError(`environment '${env.name}' is ${env.status}, not ready; wait for its provisioning job ${env.jobId}`, { job_id: env.jobId });
      }

      const { required, timeoutSeconds } = approvalRequirement(env.tier, policies);
      let deployment: Deployment;
      try {
        deployment = await em.transactional(async (tx) => {
          // The id comes first so the job id (which contains it) is written in the same insert. On the
          // transaction's own connection: without the context it takes a second one from the pool, and
          // a burst of triggers can leave every connection held by a transaction waiting for one more.
          const [row] = await tx.getConnection().execute<{ id: string }[]>(`select nextval('deployment_id_seq') as id`, [], 'all', tx.getTransactionContext());
          const id = Number(row!.id);
          const jobId = deployJobId(service.name, env.name, id);
          const now = new Date();
          const created = tx.create(Deployment, {
            id,
            jobId,
            serviceId: service.id,
            environmentId: env.id,
            tier: env.tier,
            version: body.version,
            status: 'pending',
            initiatedBy: body.initiated_by ?? null,
            requestedBy: actor.sub,
            team: teamName,
            config: body.config ?? {},
            approvalsRequired: required,
            approvalTimeoutSeconds: timeoutSeconds,
            idempotencyKey: key,
            requestHash: hash,
            correlationId: ctx.state.correlationId,
            timeline: [{ status: 'pending', at: now.toISOString(), actor: actor.sub }],
            createdAt: now,
            updatedAt: now,
          });
          audit(tx, ctx, { ...facts, outcome: 'success', targetType: 'deployment', targetId: id, details: { ...facts.details, job_id: jobId, environment_id: env.id } });
          return created;
        });
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        const fresh = deps.orm.em.fork();
        if (key !== null) {
          const existing = await fresh.findOne(Deployment, { environmentId: env.id, idempotencyKey: key });
          if (existing) return replay(existing);
        }
        const active = await fresh.findOne(Deployment, { environmentId: env.id, status: { $in: [...ACTIVE_DEPLOYMENT_STATUSES] } });
        throw new ConflictError(
          active
            ? `environment '${env.name}' is locked by active deployment ${active.jobId} (${active.status}); wait for it or cancel it`
            : `environment '${env.name}' is locked by another deployment; retry`,
          active ? { active_job_id: active.jobId, active_deployment_id: active.id } : {},
        );
      }

      try {
        await startJob(deps, ctx, deployment.jobId, {
          kind: 'deployment',
          input: {
            deploymentId: deployment.id,
            service: service.name,
            environment: env.name,
            tier: env.tier,
            version: body.version,
            team: teamName,
            requestedBy: actor.sub,
          },
          summary: `Deploy ${service.name} ${body.version} to ${env.name} (${env.tier})${required > 0 ? `, ${required} approval(s)` : ''}`,
        });
      } catch (err) {
        // The start failed, or its answer was lost: end the deployment if it is still `pending`, so it
        // does not hold the environment's lock. If the run did start and has moved it on already, the
        // deployment is under way: answer as for a start that succeeded.
        const ended = await endUnstarted(deps, ctx, deployment.id, ['pending'], 'failed', 'the workflow could not be started: Temporal unavailable');
        if (ended) throw err;
      }
      deploymentsStarted.inc({ tier: env.tier });
      ctx.status = 202;
      ctx.set('Location', `/api/deployments/${deployment.id}`);
      ctx.body = deploymentJson(deployment, [], deps.config);
    },
  );

  route(
    router,
    {
      method: 'get',
      path: '/services/:id/environments/:envId/deployments',
      tag: 'deployments',
      summary: "An environment's deployment history, newest first",
      params: z.strictObject({ id: idParam, envId: idParam }),
      query: z.strictObject(pageQuery),
      responses: { 200: 'a page of deployments', 404: 'no such service or environment' },
    },
    async (ctx, { params, query }) => {
      const em = deps.orm.em.fork();
      const env = await em.findOne(Environment, { id: params.envId, serviceId: params.id });
      if (!env) throw new NotFoundError(`service ${params.id} has no environment ${params.envId}`);
      const before = decodeCursor(query.cursor);
      const rows = await em.find(
        Deployment,
        { environmentId: env.id, ...(before ? { id: { $lt: before } } : {}) },
        { orderBy: { id: 'desc' }, limit: query.limit + 1 },
      );
      const approvals = rows.length
        ? await em.find(Approval, { deploymentId: { $in: rows.map((r) => r.id) } }, { orderBy: { id: 'asc' } })
        : [];
      ctx.body = toPage(rows, query.limit, (d) => deploymentJson(d, approvals.filter((a) => a.deploymentId === d.id), deps.config));
    },
  );

  route(
    router,
    {
      method: 'get',
      path: '/deployments/:id',
      tag: 'deployments',
      summary: 'Read a deployment with its approvals and timeline',
      params: z.strictObject({ id: idParam }),
      responses: { 200: 'the deployment', 404: 'no such deployment' },
    },
    async (ctx, { params }) => {
      const em = deps.orm.em.fork();
      ctx.body = await deploymentView(em, await loadDeployment(em, params.id), deps);
    },
  );

  route(
    router,
    {
      method: 'post',
      path: '/deployments/:id/approvals',
      tag: 'deployments',
      summary: 'Approve or reject a deployment waiting for approval',
      params: z.strictObject({ id: idParam }),
      body: decisionCreate,
      responses: {
        202: 'the deployment after the decision',
        403: 'not an eligible approver (wrong role or team, or the requester)',
        404: 'no such deployment',
        409: 'not awaiting approval, or already decided by this approver',
        503: 'Temporal or the worker unavailable',
      },
    },
    async (ctx, { params, body, actor }) => {
      const em = deps.orm.em.fork();
      const d = await loadDeployment(em, params.id);
      const facts = { action: `deployment.${body.decision}`, targetType: 'deployment', targetId: d.id, team: d.team };
      if (!canDecide(actor, d.team, d.requestedBy)) {
        await deny(deps, ctx, facts, actor.sub === d.requestedBy
          ? 'you requested this deployment; another eligible approver must decide'
          : `only PLATFORM_ADMIN or a TEAM_ADMIN of team '${d.team ?? '(none)'}' may decide on this deployment`);
      }
      if (d.status !== 'awaiting_approval') throw new ConflictError(`deployment ${d.id} is ${d.status}, not awaiting approval`);
      if (await em.count(Approval, { deploymentId: d.id, approver: actor.sub })) {
        throw new ConflictError(`${actor.sub} has already decided on deployment ${d.id}`);
      }
      const handle = deps.temporal.workflow.getHandle(d.jobId);
      try {
        await deps.temporal.connection.withDeadline(Date.now() + 20_000, () =>
          handle.executeUpdate(decideUpdate, {
            args: [{ approver: actor.sub, roles: actor.roles, decision: body.decision, comment: body.comment ?? null, correlationId: ctx.state.correlationId }],
            // One update per request: with a shared id, parallel requests of one approver were all
            // answered with the first one's outcome (202 each, one decision recorded). Each request is
            // now a decision of its own, which the workflow records or refuses (409).
            updateId: `decision-${d.id}-${randomUUID()}`,
          }),
        );
      } catch (err) {
        const name = (err as Error).name;
        if (name === 'WorkflowUpdateFailedError') {
          const cause = (err as { cause?: Error }).cause;
          throw new ConflictError(cause?.message ?? 'the deployment refused the decision');
        }
        if (name === 'WorkflowNotFoundError') throw new ConflictError(`deployment ${d.id} is no longer waiting for decisions`);
        if (name === 'WorkflowUpdateRPCTimeoutOrCancelledError' || isUnavailable(err)) {
          throw new ServiceUnavailableError('the decision could not be delivered (Temporal or the worker is unavailable); retry the same request');
        }
        throw err;
      }
      const fresh = deps.orm.em.fork();
      ctx.status = 202;
      ctx.body = await deploymentView(fresh, await loadDeployment(fresh, d.id), deps);
    },
  );

  route(
    router,
    {
      method: 'post',
      path: '/deployments/:id/cancel',
      tag: 'deployments',
      summary: 'Cancel a deployment; its workflow records `cancelled` and releases the environment',
      params: z.strictObject({ id: idParam }),
      body: cancelBody,
      responses: { 202: 'cancellation requested', 403: 'not allowed', 404: 'no such deployment', 409: 'already finished', 503: 'Temporal unavailable' },
    },
    async (ctx, { params, body, actor }) => {
      const em = deps.orm.em.fork();
      const d = await loadDeployment(em, params.id);
      const facts = { action: 'deployment.cancel', targetType: 'deployment', targetId: d.id, team: d.team };
      if (!canCancel(actor, d.team, d.requestedBy)) {
        await deny(deps, ctx, facts, `only PLATFORM_ADMIN, a TEAM_ADMIN of team '${d.team ?? '(none)'}' or the requester may cancel this deployment`);
      }
      if (isTerminal(d.status)) throw new ConflictError(`deployment ${d.id} already ended as ${d.status}`);
      try {
        await deps.temporal.workflow.getHandle(d.jobId).cancel();
      } catch (err) {
        if ((err as Error).name !== 'WorkflowNotFoundError') {
          if (isUnavailable(err)) throw new ServiceUnavailableError('Temporal is unavailable; retry the cancellation');
          throw err;
        }
        // No run exists (its start failed, or Temporal lost it): end the deployment here.
        await endUnstarted(deps, ctx, d.id, ACTIVE_DEPLOYMENT_STATUSES, 'cancelled', 'cancelled before its workflow ran');
      }
      await auditAlone(deps, ctx, { ...facts, outcome: 'success', details: { job_id: d.jobId, ...(body?.reason ? { reason: body.reason } : {}) } });
      const fresh = deps.orm.em.fork();
      ctx.status = 202;
      ctx.body = await deploymentView(fresh, await loadDeployment(fresh, d.id), deps);
    },
  );
}

/**
 * Ends a deployment that has no run behind it, if its status is one of `from`; true when it did.
 * Takes the row lock the activities take, so a run that did start after all (a start whose answer
 * was lost) and this end are serialised: whichever comes second sees the other's status.
 */
async function endUnstarted(
  deps: AppDeps,
  ctx: Ctx,
  id: number,
  from: readonly DeploymentStatus[],
  to: 'failed' | 'cancelled',
  detail: string,
): Promise<boolean> {
  return deps.orm.em.fork().transactional(async (tx) => {
    const d = await tx.findOne(Deployment, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (!d || !from.includes(d.status)) return false;
    applyStatus(d, to, { actor: ctx.state.actor?.sub ?? 'system', detail, error: detail });
    audit(tx, ctx, { action: `deployment.${to}`, outcome: 'failure', targetType: 'deployment', targetId: id, team: d.team, details: { detail } });
    return true;
  });
}
