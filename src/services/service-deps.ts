import type { MikroORM } from '@mikro-orm/postgresql';
import type { Config } from '../config';
import type { TemporalJobs } from '../temporal/jobs';

/** What the use cases run over: the config, the ORM and Temporal's jobs. */
export interface ServiceDeps {
  config: Config;
  orm: MikroORM;
  jobs: TemporalJobs;
}
