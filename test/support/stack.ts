/**
 * A real platform for one test file: its own database (copied from the migrated template), the API
 * app, a Temporal client and optionally a worker on a task queue of its own, all against the real
 * dev server and PostgreSQL that global-setup started.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import { DefaultLogger, Runtime, bundleWorkflowCode, type LogEntry } from '@temporalio/worker';
import { Client as PgClient } from 'pg';
import request from 'supertest';
import { createApp } from '../../src/api/app';
import { currentCorrelationId } from '../../src/api/request-context';
import { loadConfig, type Config } from '../../src/config';
import { closeEventNotices } from '../../src/db/event-notices';
import { initORM } from '../../src/db/orm';
import { dropDatabase } from '../../src/dev/postgres';
import { createLogger } from '../../src/logger';
import { createTemporalClient } from '../../src/temporal/connection';
import { WORKFLOW_BUNDLE_OPTIONS, createWorker, type PlatformWorker } from '../../src/worker/worker';
import { TEST_ENCRYPTION_KEY, TEST_SECRET } from './tokens';
import { uniq } from './uniq';

// Their own modules, so the scripts can use the fixtures without loading this one (which installs
// the SDK's runtime); re-exported for the tests that import them from here.
export { eventually } from './eventually';
export { TEST_ENCRYPTION_KEY, TEST_SECRET, tokenFor } from './tokens';
export { uniq } from './uniq';

/** The Temporal SDK's WARN and ERROR lines of this process (workflow task failures among them). */
export const sdkLog: LogEntry[] = ((globalThis as { __idpSdkLog?: LogEntry[] }).__idpSdkLog ??= []);

try {
  // Once per process (jest reuses worker processes across files, hence the array on globalThis): keep
  // the SDK's INFO lines out of test output, and keep the rest for tests that assert on them.
  Runtime.install({
    logger: new DefaultLogger('WARN', (entry) => {
      sdkLog.push(entry);
      if (process.env['TEST_VERBOSE'])
        console.warn(`[sdk ${entry.level}] ${entry.message}`, entry.meta ?? '');
    }),
    // The native core's own lines too (a refused workflow task completion is one of them).
    telemetryOptions: { logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} } },
  });
} catch {
  // already installed by an earlier test file in this process
}

/**
 * Creates a fresh database from the migrated template; returns its URL. `drop` first closes this
 * process's LISTEN connection on it (an API or worker made in the test opened one): left open, the
 * drop would end it and its reconnect timer would fire after the test file is torn down.
 */
export async function freshDatabase(): Promise<{ url: string; name: string; drop: () => Promise<void> }> {
  const admin = process.env['IDP_TEST_PG_ADMIN_URL']!;
  const name = `idp_t_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const client = new PgClient({ connectionString: admin });
  await client.connect();
  await client.query(`create database "${name}" template "${process.env['IDP_TEST_TEMPLATE_DB']}"`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  const drop = async (): Promise<void> => {
    await closeEventNotices(url.toString());
    await dropDatabase(admin, name);
  };
  return { url: url.toString(), name, drop };
}

/** The config a test stack runs with. */
export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    JWT_SECRET: TEST_SECRET,
    TEMPORAL_ADDRESS: process.env['IDP_TEST_TEMPORAL_ADDRESS'],
    TEMPORAL_UI_URL: process.env['IDP_TEST_TEMPORAL_UI'],
    TEMPORAL_TASK_QUEUE: uniq('test-queue'),
    LOG_LEVEL: process.env['TEST_LOG_LEVEL'] ?? 'silent',
    SIMULATED_DELAY_MS: '0',
    WORKER_SHUTDOWN_GRACE_MS: '2000',
    IDP_ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    ...overrides,
  });
}

let bundle: Promise<{ code: string }> | undefined;
/** The workflow bundle, built once per test file. */
export function workflowBundle(): Promise<{ code: string }> {
  bundle ??= bundleWorkflowCode({
    ...WORKFLOW_BUNDLE_OPTIONS,
    logger: {
      info: () => undefined,
      warn: () => undefined,
      error: console.error,
      debug: () => undefined,
      trace: () => undefined,
      log: () => undefined,
    } as never,
  });
  return bundle;
}

export interface TestStack {
  config: Config;
  orm: MikroORM;
  temporal: Client;
  http: ReturnType<typeof request>;
  server: Server;
  baseUrl: string;
  databaseUrl: string;
  /** Starts a worker on this stack's task queue; resolves once it is polling. */
  startWorker(): Promise<PlatformWorker>;
  /** Stops the worker started last (graceful shutdown), if any. */
  stopWorker(): Promise<void>;
  close(): Promise<void>;
}

/** Builds a stack; `worker: true` also starts a worker. */
export async function startStack(
  opts: { worker?: boolean; env?: Record<string, string> } = {},
): Promise<TestStack> {
  const db = await freshDatabase();
  const config = testConfig({ DATABASE_URL: db.url, ...opts.env });
  const logger = createLogger(config.LOG_LEVEL);
  const orm = await initORM(db.url, 20);
  const temporal = await createTemporalClient(config, currentCorrelationId);
  const app = createApp({ config, orm, temporal, logger });
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const address = server.address();
  const baseUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  // Targets call this stack's API back; its port is known only now (the worker reads it when it starts).
  config.PUBLIC_URL ??= baseUrl;
  let worker: PlatformWorker | undefined;
  let running: Promise<void> | undefined;
  const stack: TestStack = {
    config,
    orm,
    temporal,
    http: request(server),
    server,
    baseUrl,
    databaseUrl: db.url,
    async startWorker() {
      const started = await createWorker({ config, orm, logger, workflowBundle: await workflowBundle() });
      worker = started;
      running = started.run();
      return started;
    },
    async stopWorker() {
      if (worker && worker.getState() === 'RUNNING') worker.shutdown();
      await running?.catch(() => undefined);
      worker = undefined;
    },
    async close() {
      await stack.stopWorker();
      await new Promise<void>((r) => server.close(() => r()));
      await temporal.connection.close();
      await orm.close(true);
      await db.drop().catch(() => undefined);
    },
  };
  if (opts.worker) await stack.startWorker();
  return stack;
}
