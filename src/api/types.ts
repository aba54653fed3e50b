import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../config';
import type { Actor } from '../domain/types';
import type { TemporalJobs } from '../temporal/jobs';

/** What the API's routes need: config, ORM, Temporal client and logger. */
export interface AppDeps {
  config: Config;
  orm: MikroORM;
  temporal: Client;
  logger: Logger;
}

/** What the routes run over: the app's dependencies and Temporal's jobs built on its client. */
export interface ApiDeps extends AppDeps {
  jobs: TemporalJobs;
}

/** `ctx.state` of every request. */
export interface AppState {
  correlationId: string;
  log: Logger;
  /** The verified token's claims, as koa-jwt leaves them. */
  jwt?: Record<string, unknown>;
  /** The caller, once the token's claims were checked. */
  actor?: Actor;
}
