import { Migrator } from '@mikro-orm/migrations';
import { MikroORM, defineConfig, type Options } from '@mikro-orm/postgresql';
import { MIGRATIONS } from '../../migrations';
import { ENTITY_SCHEMAS } from '../domain/entities';
import { changesSubscriber } from './changes';

/** The MikroORM options for the platform's PostgreSQL database at `url`. */
export function ormOptions(url: string, poolMax = 10): Options {
  return defineConfig({
    clientUrl: url,
    entities: ENTITY_SCHEMAS,
    // Audit entries and events are written by this subscriber, right before each commit.
    subscribers: [changesSubscriber],
    extensions: [Migrator],
    discovery: { warnWhenNoEntities: false },
    forceUtcTimezone: true,
    // Entities are plain schema definitions; no reflection or decorators at runtime.
    ensureDatabase: false,
    allowGlobalContext: false,
    pool: { min: 0, max: poolMax, acquireTimeoutMillis: 5000 },
    driverOptions: { connection: { connectionTimeoutMillis: 3000, statement_timeout: 30_000 } },
    migrations: {
      migrationsList: MIGRATIONS,
      tableName: 'mikro_orm_migrations',
      transactional: true,
      allOrNothing: true,
      snapshot: false,
      silent: true,
    },
  });
}

/** Opens the ORM on `url`. */
export async function initORM(url: string, poolMax?: number): Promise<MikroORM> {
  return MikroORM.init(ormOptions(url, poolMax));
}

/** Applies every pending migration; returns the names applied. */
export async function migrateUp(orm: MikroORM): Promise<string[]> {
  const applied = await orm.getMigrator().up();
  return applied.map((m) => m.name);
}

export { MikroORM };
