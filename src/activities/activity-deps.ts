import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Driver } from './drivers/driver';

/** What activities need from the process that runs them. */
export interface ActivityDeps {
  orm: MikroORM;
  logger: Logger;
  driver: Driver;
}
