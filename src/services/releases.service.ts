/** Releases: one version promoted through the tiers by one run; triggered, read and cancelled here. */
import { createHash } from 'node:crypto';
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { nextId } from '../db/next-id';
import { recordChange } from '../db/changes';
import { Deployment, Environment, Release, type ReleaseStage } from '../domain/entities';
import { ConflictError, InputError, NotFoundError } from '../domain/errors';
import { loadPolicies } from '../domain/deployment-rules';
import { moveRelease } from '../domain/lifecycle';
import type { PolicySet } from '../domain/policies';
import { canCancel, canDeploy } from '../domain/rbac';
import { releaseJobId } from '../workflows/contract';
import { byCaller, deny, isUniqueViolation, recordAlone, recordIn, refuseViolations } from './audit-trail';
import type { Caller } from './caller';
import { admitOverride, refuseFrozen, type FreezeOverride } from './deployment-start';
import { evaluate } from './guardrails';
import type { ServiceDeps } from './service-deps';
import { loadService } from './services.service';

/** What a release asks for. */
export interface ReleaseRequest {
  version: string;
  config?: Record<string, unknown>;
  through?: string;
  description?: string;
  freeze_override?: FreezeOverride;
}

/** A release with the live status of each of its deployments. */
export interface ReleaseView {
  release: Release;
  statuses: Map<number, string>;
}

const requestHash = (sub: string, serviceId: number, body: ReleaseRequest): string =>
  createHash('sha256').update(JSON.stringify({ sub, serviceId, body })).digest('hex');

/** The tiers a release goes through: the promotion order up to `through` (400 naming the field otherwise). */
function tiersOf(policies: PolicySet, through: string | undefined): string[] {
  const order = policies.promotionOrder?.tiers;
  const refuse = (message: string, hint: string): never => {
    throw new InputError(message, [{ rule: 'promotion_order', field: 'body.through', message, hint }]);
  };
  if (!order)
    return refuse('releases follow the promotion_order policy, which is disabled', 'enable promotion_order');
  const last = through ?? order[order.length - 1]!;
  const at = order.indexOf(last);
  if (at === -1)
    return refuse(`'${last}' is not a tier of the promotion order`, `use one of: ${order.join(', ')}`);
  return order.slice(0, at + 1);
}

/** A release's stages: every environment of each tier (400 naming the tier with none). */
async function stagesOf(em: EntityManager, serviceId: number, tiers: string[]): Promise<ReleaseStage[]> {
  const envs = await em.find(Environment, { serviceId, tier: { $in: tiers } }, { orderBy: { id: 'asc' } });
  const missing = tiers.filter((tier) => !envs.some((e) => e.tier === tier));
  if (missing.length > 0) {
    throw new InputError(
      `the service has no environment of tier ${missing.map((t) => `'${t}'`).join(', ')}`,
      missing.map((tier) => ({
        rule: 'release',
        field: `stages.${tier}`,
        message: `no environment of tier '${tier}': a release deploys to every environment of each tier it goes through`,
        hint: `provision an environment of tier '${tier}', or stop the release before it with "through"`,
      })),
    );
  }
  return tiers.map((tier) => ({
    tier,
    status: 'pending',
    soak_until: null,
    deployments: envs
      .filter((e) => e.tier === tier)
      .map((e) => ({ environment_id: e.id, environment: e.name, deployment_id: null, status: 'pending' })),
  }));
}

/**
 * Triggers a release (who: as triggering a deployment): permission and break-glass,
 * `Idempotency-Key` replay, guardrails on its config, its stages (400 for a tier with no
 * environment or a `through` outside the order), deploy freezes on every stage's tier, then the
 * row and its audit entry, then the run.
 */
export async function createRelease(
  deps: ServiceDeps,
  caller: Caller,
  serviceId: number,
  body: ReleaseRequest,
  key: string | null,
): Promise<{ view: ReleaseView; replayed: boolean }> {
  const em = deps.orm.em.fork();
  const { service, team } = await loadService(em, serviceId);
  const teamName = team?.name ?? null;
  const facts = {
    action: 'release.create',
    targetType: 'service',
    targetId: service.id,
    team: teamName,
    details: { version: body.version, through: body.through ?? null },
  };
  if (!canDeploy(caller.actor, teamName))
    await deny(
      deps.orm,
      caller,
      facts,
      `you may not release services of ${teamName ? `team '${teamName}'` : 'no team'}`,
    );
  const override = await admitOverride(deps, caller, facts, body.freeze_override);
  const hash = requestHash(caller.actor.sub, service.id, body);
  const earlier =
    key === null ? null : await em.findOne(Release, { serviceId: service.id, idempotencyKey: key });
  if (earlier) {
    if (earlier.requestHash !== hash)
      throw new ConflictError(`Idempotency-Key '${key}' was already used for a different request`, {
        release_id: earlier.id,
      });
    return { view: await getRelease(deps, earlier.id), replayed: true };
  }
  const policies = await loadPolicies(em);
  const violations = await evaluate(em, policies, {
    action: 'deployment.create',
    version: body.version,
    config: body.config,
  });
  await refuseViolations(deps.orm, caller, facts, violations, body, policies);
  let stages: ReleaseStage[];
  try {
    stages = await stagesOf(em, service.id, tiersOf(policies, body.through));
  } catch (err) {
    if (err instanceof InputError)
      await refuseViolations(deps.orm, caller, facts, err.violations, body, policies);
    throw err;
  }
  for (const stage of stages)
    await refuseFrozen(deps, caller, facts, policies, stage.tier, 'deploy', override);
  let release: Release;
  try {
    release = await deps.orm.em.fork().transactional(async (tx) => {
      const id = await nextId(tx, 'release_id_seq');
      const jobId = releaseJobId(service.name, id);
      const created = tx.create(Release, {
        id,
        jobId,
        serviceId: service.id,
        version: body.version,
        config: body.config ?? {},
        through: stages[stages.length - 1]!.tier,
        description: body.description ?? null,
        stages,
        requestedBy: caller.actor.sub,
        team: teamName,
        idempotencyKey: key,
        requestHash: hash,
        correlationId: caller.correlationId,
        freezeOverride: override,
      });
      recordIn(tx, caller, {
        ...facts,
        outcome: 'success',
        targetType: 'release',
        targetId: id,
        details: {
          ...facts.details,
          job_id: jobId,
          ...(override ? { freeze_override: { reason: override } } : {}),
        },
      });
      return created;
    });
  } catch (err) {
    if (!isUniqueViolation(err) || key === null) throw err;
    const raced = await deps.orm.em
      .fork()
      .findOneOrFail(Release, { serviceId: service.id, idempotencyKey: key });
    return { view: await getRelease(deps, raced.id), replayed: true };
  }
  await startRelease(deps, caller, release, service.name);
  return { view: { release, statuses: new Map() }, replayed: false };
}

/** Starts the release's run; a start that failed ends the release (still pending) as failed, and the 503 goes on. */
async function startRelease(deps: ServiceDeps, caller: Caller, r: Release, service: string): Promise<void> {
  try {
    await deps.jobs.start(
      r.jobId,
      {
        kind: 'release',
        input: { releaseId: r.id, service, version: r.version, team: r.team, requestedBy: caller.actor.sub },
        summary: `Release ${service} ${r.version} through ${r.stages.map((s) => s.tier).join(' → ')}`,
      },
      caller.correlationId,
    );
  } catch (err) {
    await endRelease(deps, caller, r.id, 'failed', 'the workflow could not be started: Temporal unavailable');
    throw err;
  }
}

/** Ends a release that has no run behind it (still pending or in progress), by the lifecycle's rule. */
async function endRelease(
  deps: ServiceDeps,
  caller: Caller,
  id: number,
  to: 'failed' | 'cancelled',
  detail: string,
): Promise<void> {
  await deps.orm.em.fork().transactional(async (tx) => {
    const r = await tx.findOneOrFail(Release, id, { lockMode: LockMode.PESSIMISTIC_WRITE });
    if (r.status !== 'pending' && r.status !== 'in_progress') return;
    recordChange(tx, moveRelease(r, to, { ...byCaller(caller), detail, error: detail }), {
      type: 'release',
      row: r,
    });
  });
}

/** A release with its deployments' live statuses, or 404. */
export async function getRelease(deps: ServiceDeps, id: number): Promise<ReleaseView> {
  const em = deps.orm.em.fork();
  const release = await em.findOne(Release, id);
  if (!release) throw new NotFoundError(`release ${id} does not exist`);
  return { release, statuses: await statusesOf(em, [release]) };
}

async function statusesOf(em: EntityManager, releases: Release[]): Promise<Map<number, string>> {
  const ids = releases.flatMap((r) => r.stages.flatMap((s) => s.deployments.map((d) => d.deployment_id)));
  const known = ids.filter((id): id is number => id !== null);
  const rows = known.length
    ? await em.find(Deployment, { id: { $in: known } }, { fields: ['id', 'status'] })
    : [];
  return new Map(rows.map((d) => [d.id, d.status]));
}

/** A page of a service's releases, newest first (`limit + 1` rows before `before`). */
export async function listReleases(
  deps: ServiceDeps,
  serviceId: number,
  page: { limit: number; before?: number },
): Promise<ReleaseView[]> {
  const em = deps.orm.em.fork();
  await loadService(em, serviceId);
  const rows = await em.find(
    Release,
    { serviceId, ...(page.before ? { id: { $lt: page.before } } : {}) },
    { orderBy: { id: 'desc' }, limit: page.limit + 1 },
  );
  const statuses = await statusesOf(em, rows);
  return rows.map((release) => ({ release, statuses }));
}

/** Cancels a release (who: as cancelling a deployment): its running stage's deployments are cancelled, no later stage starts. */
export async function cancelRelease(deps: ServiceDeps, caller: Caller, id: number): Promise<ReleaseView> {
  const { release: r } = await getRelease(deps, id);
  const facts = { action: 'release.cancel', targetType: 'release', targetId: r.id, team: r.team };
  if (!canCancel(caller.actor, r.team, r.requestedBy))
    await deny(
      deps.orm,
      caller,
      facts,
      `only PLATFORM_ADMIN, a TEAM_ADMIN of team '${r.team ?? '(none)'}' or the requester may cancel this release`,
    );
  if (r.status !== 'pending' && r.status !== 'in_progress')
    throw new ConflictError(`release ${r.id} already ended as ${r.status}`);
  if ((await deps.jobs.cancel(r.jobId)) === 'no-run')
    await endRelease(deps, caller, r.id, 'cancelled', 'cancelled before its workflow ran');
  await recordAlone(deps.orm, caller, { ...facts, outcome: 'success', details: { job_id: r.jobId } });
  return getRelease(deps, r.id);
}
