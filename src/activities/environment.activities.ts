import { ApplicationFailure, Context } from '@temporalio/activity';
import { LockMode } from '@mikro-orm/postgresql';
import { Environment, Service, Team } from '../domain/entities';
import { moveEnvironment } from '../domain/lifecycle';
import { FAILURE_TYPES, type ProvisionInput } from '../workflows/contract';
import { DriverError } from './drivers/driver';
import type { ActivityDeps } from './activity-deps';
import { SYSTEM_ACTOR, activityLogger, moveFacts, record } from './run-context';

/** The activities of an environment's provisioning. */
export function environmentActivities({ orm, logger, driver }: ActivityDeps) {
  return {
    /** Creates the environment's resources through the driver. */
    async provisionResources(input: ProvisionInput): Promise<string> {
      const env = await orm.em.fork().findOneOrFail(Environment, input.environmentId);
      try {
        const result = await driver.provision(
          {
            jobId: env.jobId,
            service: input.service,
            environment: env.name,
            tier: env.tier,
            config: env.config,
          },
          () => Context.current().heartbeat(),
          Context.current().cancellationSignal,
        );
        return result.detail;
      } catch (err) {
        if (err instanceof DriverError && !err.retryable) {
          throw ApplicationFailure.nonRetryable(err.message, FAILURE_TYPES.provisionFailed);
        }
        throw err;
      }
    },

    /** Records the outcome of provisioning; only a `provisioning` environment changes (a repeat is a no-op). */
    async markEnvironment(
      environmentId: number,
      status: 'ready' | 'failed',
      error: string | null,
      extra: { externalUrl?: string | null } = {},
    ): Promise<string> {
      return orm.em.fork().transactional(async (em) => {
        const env = await em.findOneOrFail(Environment, environmentId, {
          lockMode: LockMode.PESSIMISTIC_WRITE,
        });
        if (env.status !== 'provisioning') return env.status;
        if (extra.externalUrl) env.externalUrl = extra.externalUrl;
        const service = await em.findOneOrFail(Service, env.serviceId);
        const team =
          service.teamId === null ? null : ((await em.findOne(Team, service.teamId))?.name ?? null);
        record(
          em,
          moveEnvironment(env, team, status, moveFacts(SYSTEM_ACTOR, null, error ? { error } : {})),
          {
            type: 'environment',
            row: env,
          },
        );
        activityLogger(logger).info({ environment_id: env.id, status }, 'environment status changed');
        return env.status;
      });
    },
  };
}
