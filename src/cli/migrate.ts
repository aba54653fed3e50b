/** `npm run migrate [-- up|down|pending]`: applies (or reverts the last of) the migrations on DATABASE_URL. */
import { loadConfig } from '../config';
import { initMigratingORM } from '../db/migrator';
import { exitOnStartFailure } from '../fatal';

async function main(): Promise<void> {
  const command = process.argv[2] ?? 'up';
  const config = loadConfig();
  if (!config.DATABASE_URL) throw new Error('DATABASE_URL is required');
  const orm = await initMigratingORM(config.DATABASE_URL, 2);
  try {
    const migrator = orm.getMigrator();
    if (command === 'up') {
      const done = await migrator.up();
      console.log(done.length ? `applied: ${done.map((m) => m.name).join(', ')}` : 'nothing to apply');
    } else if (command === 'down') {
      const done = await migrator.down();
      console.log(done.length ? `reverted: ${done.map((m) => m.name).join(', ')}` : 'nothing to revert');
    } else if (command === 'pending') {
      const pending = await migrator.getPendingMigrations();
      console.log(pending.length ? pending.map((m) => m.name).join('\n') : 'none pending');
    } else {
      throw new Error(`unknown command '${command}'; use up, down or pending`);
    }
  } finally {
    await orm.close();
  }
}

main().catch(exitOnStartFailure);
