import type { MikroORM } from '@mikro-orm/postgresql';
import type { Logger } from 'pino';
import type { Driver } from './drivers/driver';

/** How this worker reaches targets. */
export interface DeliverySettings {
  /** The API's base as targets call it back (`callback_url`). */
  publicUrl: string;
  /** Where command targets' executables are; undefined: this worker runs no commands. */
  commandsDir: string | undefined;
  /** The key that opens targets' signing secrets; null: this worker signs nothing. */
  encryptionKey: Buffer | null;
}

/** What activities need from the process that runs them. */
export interface ActivityDeps {
  orm: MikroORM;
  logger: Logger;
  /** The driver of `simulated` targets (a custom one may replace it: see README). */
  driver: Driver;
  delivery: DeliverySettings;
}
