/**
 * What an API process that died mid-request leaves behind: a row committed (its 202 never sent, or
 * sent) whose run was never started — a deployment `pending`, an environment `provisioning`, a release
 * `pending` — which would hold its environment's lock forever; a subscription whose deliveries never
 * began. Every API process looks for such rows
 * now and then and starts their runs: the start is idempotent (the job id is the workflow id), so two
 * processes doing it at once, or a run that exists after all, change nothing.
 */
import type { Logger } from 'pino';
import { deployInputOf } from '../db/deployments';
import { Deployment, Environment, Release, Service, Team, WebhookSubscription } from '../domain/entities';
import type { ServiceDeps } from './service-deps';

/** How old a row must be before it counts as left behind (a live request starts its run within this). */
export const ORPHAN_AGE_MS = 20_000;

/** Rows looked at per kind and sweep. */
export const SWEEP_BATCH = 100;

/**
 * Every so many sweeps each kind starts again from its first row, whatever its cursor: a row can
 * become a candidate after the cursor passed its id (committed late, or another host's clock), and
 * under a steady stream of new candidates the cursor might otherwise never wrap.
 */
export const RESTART_EVERY = 20;

/**
 * Where each kind's last sweep stopped (an id; 0: from the start). The next sweep reads the rows after
 * it, so a backlog larger than a batch (rows whose runs exist and wait for a worker, long
 * provisionings) cannot hide a left-behind row behind it: every candidate is looked at in turn.
 */
export interface SweepCursor {
  /** Sweeps made with this cursor: every {@link RESTART_EVERY}th starts each kind from its first row. */
  sweeps: number;
  deployment: number;
  environment: number;
  release: number;
  subscription: number;
}

export const newSweepCursor = (): SweepCursor => ({
  sweeps: 0,
  deployment: 0,
  environment: 0,
  release: 0,
  subscription: 0,
});

export interface ReconcileOptions {
  /** How old a row must be (default {@link ORPHAN_AGE_MS}). */
  olderThanMs?: number;
  /** Rows per kind and sweep (default {@link SWEEP_BATCH}). */
  batch?: number;
  /** Carried from sweep to sweep; a fresh one starts each kind from its first row. */
  cursor?: SweepCursor;
}

/** Starts the runs of rows older than `olderThanMs` that have none; answers how many it started. */
export async function reconcileOrphans(
  deps: ServiceDeps,
  logger: Logger,
  { olderThanMs = ORPHAN_AGE_MS, batch = SWEEP_BATCH, cursor = newSweepCursor() }: ReconcileOptions = {},
): Promise<number> {
  const em = deps.orm.em.fork();
  const before = new Date(Date.now() - olderThanMs);
  let started = 0;
  const service = async (id: number) => {
    const s = await em.findOneOrFail(Service, id);
    const team = s.teamId === null ? null : ((await em.findOne(Team, s.teamId))?.name ?? null);
    return { name: s.name, team };
  };
  cursor.sweeps++;
  if (cursor.sweeps % RESTART_EVERY === 0) Object.assign(cursor, newSweepCursor(), { sweeps: cursor.sweeps });
  const page = () => ({ orderBy: { id: 'asc' }, limit: batch }) as const;
  /**
   * Starts what `rows` (one page of `kind`) left behind, one row at a time: a row that fails is logged
   * and the others still go. The next sweep reads the page after this one, or from the first row when
   * this page was the last; a page with a failure is read again, so Temporal being down for a while
   * never moves a left-behind row out of reach.
   */
  const sweep = async <T extends { id: number; jobId: string }>(
    kind: Exclude<keyof SweepCursor, 'sweeps'>,
    rows: T[],
    startOne: (row: T) => Promise<void>,
  ): Promise<void> => {
    let failed = false;
    for (const row of rows) {
      try {
        await startOne(row);
      } catch (err) {
        failed = true;
        logger.warn({ err, job_id: row.jobId }, 'could not start a left-behind job; retrying later');
      }
    }
    if (!failed) cursor[kind] = rows.length < batch ? 0 : rows.at(-1)!.id;
  };
  const start = async (jobId: string, run: () => Promise<void>): Promise<void> => {
    if ((await deps.jobs.describe(jobId)) !== null) return;
    await run();
    started++;
    logger.warn({ job_id: jobId }, 'started the run of a job whose API did not (it died mid-request)');
  };
  // A release's stage deployments and automatic rollbacks are started by their parent runs (durable
  // themselves): never by this.
  await sweep(
    'deployment',
    await em.find(
      Deployment,
      {
        id: { $gt: cursor.deployment },
        status: 'pending',
        createdAt: { $lt: before },
        releaseId: null,
        requestedBy: { $ne: 'system:auto-rollback' },
      },
      page(),
    ),
    async (d) => {
      const env = await em.findOneOrFail(Environment, d.environmentId);
      const s = await service(d.serviceId);
      await start(d.jobId, () =>
        deps.jobs.start(
          d.jobId,
          {
            kind: 'deployment',
            input: deployInputOf(d, s, env),
            summary: `Deploy ${s.name} ${d.version} to ${env.name} (${d.tier}) through '${d.target}' (restarted)`,
          },
          d.correlationId,
        ),
      );
    },
  );
  await sweep(
    'environment',
    await em.find(
      Environment,
      { id: { $gt: cursor.environment }, status: 'provisioning', createdAt: { $lt: before } },
      page(),
    ),
    async (env) => {
      const s = await service(env.serviceId);
      await start(env.jobId, () =>
        deps.jobs.start(
          env.jobId,
          {
            kind: 'provisioning',
            input: {
              environmentId: env.id,
              service: s.name,
              environment: env.name,
              tier: env.tier,
              team: s.team,
              requestedBy: env.createdBy,
              target: env.target,
            },
            summary: `Provision ${s.name}/${env.name} (${env.tier}) through target '${env.target}' (restarted)`,
          },
          env.jobId,
        ),
      );
    },
  );
  await sweep(
    'release',
    await em.find(
      Release,
      { id: { $gt: cursor.release }, status: 'pending', createdAt: { $lt: before } },
      page(),
    ),
    async (r) => {
      const s = await service(r.serviceId);
      await start(r.jobId, () =>
        deps.jobs.start(
          r.jobId,
          {
            kind: 'release',
            input: {
              releaseId: r.id,
              service: s.name,
              version: r.version,
              team: r.team,
              requestedBy: r.requestedBy,
            },
            summary: `Release ${s.name} ${r.version} (restarted)`,
          },
          r.correlationId,
        ),
      );
    },
  );
  await sweep(
    'subscription',
    await em.find(
      WebhookSubscription,
      // Those of the last day: an older one has had its run for long (this keeps the sweep cheap).
      {
        id: { $gt: cursor.subscription },
        deletedAt: null,
        createdAt: { $lt: before, $gt: new Date(Date.now() - 86_400_000) },
      },
      page(),
    ),
    async (w) => {
      await start(w.jobId, () =>
        deps.jobs.start(
          w.jobId,
          {
            kind: 'notification',
            input: { subscriptionId: w.id, team: w.team },
            summary: `Deliver ${w.events.join(', ')} events to ${w.url} (restarted)`,
          },
          w.jobId,
        ),
      );
    },
  );
  return started;
}

/** Runs {@link reconcileOrphans} every `everyMs` (its failures logged, never thrown); answers how to stop it. */
export function startReconciler(deps: ServiceDeps, logger: Logger, everyMs = 15_000): () => void {
  let running = false;
  const cursor = newSweepCursor();
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    reconcileOrphans(deps, logger, { cursor })
      .catch((err: unknown) => logger.warn({ err }, 'reconciling left-behind jobs failed; retrying later'))
      .finally(() => (running = false));
  }, everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
