import type Router from '@koa/router';
import { z } from 'zod';
import { Environment } from '../../domain/entities';
import { ConflictError, NotFoundError } from '../../domain/errors';
import { evaluateEnvironment } from '../../domain/policies';
import { canProvision } from '../../domain/rbac';
import { provisionJobId } from '../../workflows/contract';
import { loadPolicies } from '../../domain/deployment-rules';
import { route } from '../route';
import { environmentCreate } from '../schemas';
import { environmentJson } from '../serializers';
import { audit, decodeCursor, deny, idParam, isUniqueViolation, pageQuery, refuse, toPage } from '../support';
import type { AppDeps, AppState } from '../types';
import { startJob } from '../workflow-starts';
import { loadService } from './services.routes';

const sameRequest = (env: Environment, body: z.infer<typeof environmentCreate>): boolean =>
  env.tier === body.tier && JSON.stringify(env.config) === JSON.stringify(body.config ?? {});

/** Environments of a service, provisioned by a workflow each. */
export function registerEnvironmentRoutes(router: Router<AppState>, deps: AppDeps): void {
  route(
    router,
    {
      method: 'post',
      path: '/services/:id/environments',
      tag: 'environments',
      summary: 'Provision an environment (202; a provisioning workflow makes it ready)',
      params: z.strictObject({ id: idParam }),
      body: environmentCreate,
      responses: {
        202: 'the environment, provisioning, with its job_id',
        400: 'invalid body or guardrail violation',
        403: 'not allowed for this team',
        404: 'no such service',
        409: 'an environment of that name exists',
        503: 'Temporal unavailable: retry the same request',
      },
    },
    async (ctx, { params, body, actor }) => {
      const em = deps.orm.em.fork();
      const { service, team } = await loadService(em, params.id);
      const teamName = team?.name ?? null;
      const facts = { action: 'environment.create', targetType: 'service', targetId: service.id, team: teamName, details: { name: body.name, tier: body.tier } };
      if (!canProvision(actor, teamName)) {
        await deny(deps, ctx, facts, `you may not provision environments for ${teamName ? `team '${teamName}'` : 'a service without a team'}`);
      }
      const policies = await loadPolicies(em);
      const violations = evaluateEnvironment(body, policies);
      if (violations.length > 0) await refuse(deps, ctx, facts, violations, body, policies);

      let env: Environment;
      try {
        env = await em.transactional(async (tx) => {
          // The id first, so the job id (which ends in it) is written in the same insert; on the
          // transaction's own connection (see the deployment trigger).
          const [row] = await tx.getConnection().execute<{ id: string }[]>(`select nextval('environment_id_seq') as id`, [], 'all', tx.getTransactionContext());
          const id = Number(row!.id);
          const jobId = provisionJobId(service.name, body.name, id);
          const created = tx.create(Environment, {
            id,
            serviceId: service.id,
            name: body.name,
            tier: body.tier,
            config: body.config ?? {},
            jobId,
            createdBy: actor.sub,
          });
          await tx.flush();
          audit(tx, ctx, { ...facts, outcome: 'success', targetType: 'environment', targetId: created.id, details: { ...facts.details, job_id: jobId } });
          return created;
        });
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
        const existing = await deps.orm.em.fork().findOne(Environment, { serviceId: service.id, name: body.name });
        // The same request again while its job may not have started (an earlier 503): start it now.
        if (!existing || existing.status !== 'provisioning' || !sameRequest(existing, body)) {
          throw new ConflictError(`service '${service.name}' already has an environment named '${body.name}'`, existing ? { environment_id: existing.id } : {});
        }
        env = existing;
      }
      await startJob(deps, ctx, env.jobId, {
        kind: 'provisioning',
        input: { environmentId: env.id, service: service.name, environment: env.name, tier: env.tier, team: teamName, requestedBy: actor.sub },
        summary: `Provision ${service.name}/${env.name} (${env.tier})`,
      });
      ctx.status = 202;
      ctx.set('Location', `/api/services/${service.id}/environments/${env.id}`);
      ctx.body = environmentJson(env, deps.config);
    },
  );

  route(
    router,
    {
      method: 'get',
      path: '/services/:id/environments',
      tag: 'environments',
      summary: "List a service's environments",
      params: z.strictObject({ id: idParam }),
      query: z.strictObject(pageQuery),
      responses: { 200: 'a page of environments', 404: 'no such service' },
    },
    async (ctx, { params, query }) => {
      const em = deps.orm.em.fork();
      await loadService(em, params.id);
      const after = decodeCursor(query.cursor);
      const rows = await em.find(
        Environment,
        { serviceId: params.id, ...(after ? { id: { $gt: after } } : {}) },
        { orderBy: { id: 'asc' }, limit: query.limit + 1 },
      );
      ctx.body = toPage(rows, query.limit, (e) => environmentJson(e, deps.config));
    },
  );

  route(
    router,
    {
      method: 'get',
      path: '/services/:id/environments/:envId',
      tag: 'environments',
      summary: 'Read an environment',
      params: z.strictObject({ id: idParam, envId: idParam }),
      responses: { 200: 'the environment', 404: 'no such service or environment' },
    },
    async (ctx, { params }) => {
      const env = await deps.orm.em.fork().findOne(Environment, { id: params.envId, serviceId: params.id });
      if (!env) throw new NotFoundError(`service ${params.id} has no environment ${params.envId}`);
      ctx.body = environmentJson(env, deps.config);
    },
  );
}
