/**
 * The steps of a release's run, each on the release row locked for its transaction: begin (the
 * plan), the soak before a stage, each environment's deployment (made like any other, or the job
 * that holds the environment), the close of a stage, the end of the release. Safe to repeat: a
 * stage's deployment is keyed by the release (`release-<id>` as its idempotency key).
 */
import { LockMode, type EntityManager } from '@mikro-orm/postgresql';
import { deployInputOf, insertDeployment } from '../db/deployments';
import { isUniqueViolation } from '../db/errors';
import { Deployment, Environment, Release, Service } from '../domain/entities';
import type { ReleaseStage } from '../domain/entities';
import { loadPolicies } from '../domain/deployment-rules';
import { ACTIVE_DEPLOYMENT_STATUSES, moveRelease, type ReleaseStatus } from '../domain/lifecycle';
import { approvalRequirement, soakSeconds } from '../domain/policies';
import { releasesFinished } from '../metrics';
import type { DeploymentStart, ReleasePlan } from '../workflows/contract';
import type { ActivityDeps } from './activity-deps';
import { SYSTEM_ACTOR, activityLogger, moveFacts, record, runInfo } from './run-context';

const lockRelease = (em: EntityManager, id: number): Promise<Release> =>
  em.findOneOrFail(Release, id, { lockMode: LockMode.PESSIMISTIC_WRITE });

/** Writes a changed stage back (the stages are one JSON column). */
function setStage(r: Release, index: number, stage: ReleaseStage): void {
  r.stages = r.stages.map((s, i) => (i === index ? stage : s));
}

/**
 * The idempotency key of a release's deployments: one per environment and release. Its `/` is not
 * in the alphabet of the keys clients send, so no client can take a release's place.
 */
export const releaseKey = (releaseId: number): string => `release/${releaseId}`;

/** Makes the stage's deployment to `envId` (or finds it), or names the job that holds the environment. */
async function open(
  em: EntityManager,
  r: Release,
  stageIndex: number,
  envId: number,
): Promise<{ start: DeploymentStart } | { busy: string }> {
  const env = await em.findOneOrFail(Environment, envId);
  const service = await em.findOneOrFail(Service, r.serviceId);
  const existing = await em.findOne(Deployment, { environmentId: envId, idempotencyKey: releaseKey(r.id) });
  const policies = await loadPolicies(em);
  const approval = approvalRequirement(env.tier, policies);
  const d =
    existing ??
    (await insertDeployment(
      em,
      {
        service,
        environment: env,
        team: r.team,
        version: r.version,
        config: r.config,
        initiatedBy: `release ${r.jobId}`,
        requestedBy: r.requestedBy,
        approvalsRequired: approval.required,
        approvalTimeoutSeconds: approval.timeoutSeconds,
        idempotencyKey: releaseKey(r.id),
        requestHash: null,
        correlationId: r.correlationId,
        releaseId: r.id,
        freezeOverride: r.freezeOverride,
      },
      { actor: r.requestedBy, actorRoles: [], correlationId: r.correlationId },
      { release_job_id: r.jobId, ...runInfo() },
    ));
  const stage = r.stages[stageIndex]!;
  setStage(r, stageIndex, {
    ...stage,
    status: 'in_progress',
    deployments: stage.deployments.map((e) =>
      e.environment_id === envId ? { ...e, deployment_id: d.id, status: d.status, waiting_for: null } : e,
    ),
  });
  return {
    start: {
      deploymentId: d.id,
      jobId: d.jobId,
      input: deployInputOf(d, service, env),
      summary: `Deploy ${service.name} ${d.version} to ${env.name} (${env.tier}), stage ${stageIndex + 1} of release ${r.jobId}`,
    },
  };
}

/** The release steps over the ORM. */
export function releaseActivities({ orm, logger }: Pick<ActivityDeps, 'orm' | 'logger'>) {
  const move = (em: EntityManager, r: Release, to: ReleaseStatus, error?: string) => {
    record(
      em,
      moveRelease(r, to, moveFacts(SYSTEM_ACTOR, r.correlationId, error ? { detail: error, error } : {})),
      { type: 'release', row: r },
    );
    if (to !== 'in_progress') releasesFinished.inc({ outcome: to });
    activityLogger(logger).info({ release_id: r.id, to }, 'release status changed');
  };
  return {
    /** Moves a pending release on and answers its plan: the stages, the soak after each tier, those done. */
    async beginRelease(releaseId: number): Promise<ReleasePlan> {
      return orm.em.fork().transactional(async (em) => {
        const r = await lockRelease(em, releaseId);
        if (r.status !== 'pending' && r.status !== 'in_progress')
          return { stages: [], done: 0, ended: r.status };
        if (r.status === 'pending') move(em, r, 'in_progress');
        const policies = await loadPolicies(em);
        const done = r.stages.findIndex((s) => s.status !== 'succeeded');
        return {
          stages: r.stages.map((s) => ({
            tier: s.tier,
            environments: s.deployments.map((d) => ({ id: d.environment_id, name: d.environment })),
            soakAfterSeconds: soakSeconds(s.tier, policies),
          })),
          done: done === -1 ? r.stages.length : done,
        };
      });
    },

    /** Records the soak before stage `index` (from the end of the stage before) and answers its end. */
    async startSoak(releaseId: number, index: number, seconds: number): Promise<string> {
      return orm.em.fork().transactional(async (em) => {
        const r = await lockRelease(em, releaseId);
        const stage = r.stages[index]!;
        if (stage.soak_until) return stage.soak_until;
        const from = Date.parse(r.stages[index - 1]?.finished_at ?? new Date().toISOString());
        const until = new Date(from + seconds * 1000).toISOString();
        setStage(r, index, { ...stage, status: 'soaking', soak_until: until });
        return until;
      });
    },

    /**
     * The deployment of stage `index` to environment `envId`: made like any other (every rule, the
     * lock, approvals, audit; `release_id` set), or `busy` with the job that holds the environment
     * (noted on the stage as `waiting_for`).
     */
    async openStageDeployment(
      releaseId: number,
      index: number,
      envId: number,
    ): Promise<{ start: DeploymentStart } | { busy: string }> {
      try {
        return await orm.em
          .fork()
          .transactional(async (em) => open(em, await lockRelease(em, releaseId), index, envId));
      } catch (err) {
        if (!isUniqueViolation(err)) throw err;
      }
      return orm.em.fork().transactional(async (em) => {
        const r = await lockRelease(em, releaseId);
        const holder = await em.findOne(Deployment, {
          environmentId: envId,
          status: { $in: [...ACTIVE_DEPLOYMENT_STATUSES] },
        });
        const stage = r.stages[index]!;
        const waitingFor = holder?.jobId ?? 'another deployment';
        setStage(r, index, {
          ...stage,
          status: 'in_progress',
          deployments: stage.deployments.map((e) =>
            e.environment_id === envId ? { ...e, status: 'waiting', waiting_for: waitingFor } : e,
          ),
        });
        return { busy: waitingFor };
      });
    },

    /** Closes stage `index` from its deployments' rows: ok when every one succeeded, else what went wrong. */
    async closeStage(releaseId: number, index: number): Promise<{ ok: boolean; message: string | null }> {
      return orm.em.fork().transactional(async (em) => {
        const r = await lockRelease(em, releaseId);
        const stage = r.stages[index]!;
        const ids = stage.deployments.map((d) => d.deployment_id).filter((id): id is number => id !== null);
        const rows = ids.length ? await em.find(Deployment, { id: { $in: ids } }) : [];
        const byId = new Map(rows.map((d) => [d.id, d]));
        const deployments = stage.deployments.map((e) => ({
          ...e,
          status: e.deployment_id === null ? 'not_started' : (byId.get(e.deployment_id)?.status ?? e.status),
        }));
        const bad = deployments.filter((e) => e.status !== 'succeeded');
        const status =
          bad.length === 0
            ? 'succeeded'
            : bad.every((e) => e.status === 'cancelled')
              ? 'cancelled'
              : 'failed';
        setStage(r, index, { ...stage, status, deployments, finished_at: new Date().toISOString() });
        const why = bad.map((e) => {
          const d = e.deployment_id === null ? undefined : byId.get(e.deployment_id);
          return `deployment ${e.deployment_id ?? '(none)'} to '${e.environment}' ${e.status}${d?.error ? `: ${d.error}` : ''}`;
        });
        return {
          ok: bad.length === 0,
          message: bad.length ? `stage '${stage.tier}': ${why.join('; ')}` : null,
        };
      });
    },

    /** Ends the release (a repeat changes nothing). */
    async finishRelease(
      releaseId: number,
      to: 'succeeded' | 'failed' | 'cancelled',
      error: string | null,
    ): Promise<string> {
      return orm.em.fork().transactional(async (em) => {
        const r = await lockRelease(em, releaseId);
        if (r.status === 'pending' || r.status === 'in_progress') {
          if (to === 'cancelled')
            r.stages = r.stages.map((s) =>
              s.status === 'succeeded' || s.status === 'failed' ? s : { ...s, status: 'cancelled' },
            );
          move(em, r, to, error ?? undefined);
        }
        return r.status;
      });
    },
  };
}
