import { MikroORM, defineConfig, type Options } from '@mikro-orm/postgresql';
import { ENTITY_SCHEMAS } from '../domain/entities';
import { changesSubscriber } from './changes';

/** The MikroORM options for the platform's PostgreSQL database at `url`. */
export function ormOptions(url: string, poolMax = 10): Options {
  return defineConfig({
    clientUrl: url,
    entities: ENTITY_SCHEMAS,
    // Audit entries and events are written by this subscriber, right before each commit.
    subscribers: [changesSubscriber],
    discovery: { warnWhenNoEntities: false },
    forceUtcTimezone: true,
    // Entities are plain schema definitions; no reflection or decorators at runtime.
    ensureDatabase: false,
    allowGlobalContext: false,
    pool: { min: 0, max: poolMax, acquireTimeoutMillis: 5000 },
    driverOptions: { connection: { connectionTimeoutMillis: 3000, statement_timeout: 30_000 } },
  });
}

/**
 * Opens the ORM on `url`, without the migrator: the API and the worker never apply migrations, so
 * they do not load it (see `migrator.ts`).
 */
export async function initORM(url: string, poolMax?: number): Promise<MikroORM> {
  return MikroORM.init(ormOptions(url, poolMax));
}

export { MikroORM };
