/**
 * The schema's migrations, for the processes that apply them: the dev runner, `npm run migrate` and
 * the tests' set-up. The API and the worker open the ORM without them (`initORM`): the migrator
 * brings umzug and its command-line dependencies, and the migrations every statement of the schema's
 * history, about 10 MB of a process's memory that serves nothing there.
 */
import { Migrator } from '@mikro-orm/migrations';
import { MikroORM } from '@mikro-orm/postgresql';
import { MIGRATIONS } from '../../migrations';
import { ormOptions } from './orm';

/** Opens the ORM on `url` with the migrator (`orm.getMigrator()`). */
export async function initMigratingORM(url: string, poolMax?: number): Promise<MikroORM> {
  return MikroORM.init({
    ...ormOptions(url, poolMax),
    extensions: [Migrator],
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

/** Applies every pending migration; returns the names applied. */
export async function migrateUp(orm: MikroORM): Promise<string[]> {
  const applied = await orm.getMigrator().up();
  return applied.map((m) => m.name);
}
