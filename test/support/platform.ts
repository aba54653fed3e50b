/**
 * The platform as production runs it, every part a process of its own: PostgreSQL (a server's URL,
 * or an embedded cluster in a child process that can be stopped), a database of its own migrated to
 * the current schema, a Temporal CLI dev server (in memory, or on a file that survives a kill), and
 * the API and the worker as separate `node` children (compiled `dist/` or TypeScript through tsx)
 * whose pids can be sampled. The fault suite kills its parts; the bench and the soak measure them.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { Pool } from 'pg';
import { signToken } from '../../src/auth/tokens';
import { initMigratingORM, migrateUp } from '../../src/db/migrator';
import { dropDatabase, ensureDatabase } from '../../src/dev/postgres';
import { findTemporalCli, startTemporalDevServer, type DevServerHandle } from '../../src/dev/temporal-server';
import type { Role } from '../../src/domain/types';
import { nodeEntry, spawnChild, type Child, type Runtime } from './spawn';

/** How {@link startPlatform} runs the platform. */
export interface PlatformOptions {
  /** Names the platform database (`idp_<name>_<random>`, dropped by `close()`). */
  name: string;
  /** The run's folder (made if missing; the caller empties it): the children's logs (`api.log`, `worker.log`) and Temporal's file. */
  dir: string;
  /** How the API and the worker run. */
  runtime: Runtime;
  /**
   * A PostgreSQL server's admin URL, or an embedded cluster under `dir` on `port`, run by a child
   * process (test/support/postgres.process.ts) that `stopPostgres()` and `startPostgres()` stop and
   * restart.
   */
  postgres: { adminUrl: string } | { dir: string; port: number };
  ports: { temporal: number; api: number };
  /** Keep Temporal's state in `<dir>/temporal.db`, so a server killed and restarted has every workflow; in memory otherwise. */
  persistTemporal?: boolean;
  taskQueue: string;
  /** The API's JWT secret (random when absent; `token()` signs with it). */
  jwtSecret?: string;
  /** More environment of the API and the worker (SIMULATED_DELAY_MS, LOG_LEVEL…). */
  env?: Record<string, string>;
  /** Extra node flags of the API (e.g. `--cpu-prof`). */
  apiNodeArgs?: string[];
  /** Start the worker too (the default). */
  worker?: boolean;
  /** SIGINT and SIGTERM stop everything and exit 130 (a script run from a terminal). */
  stopOnSignals?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
  /** Called with the API and each worker as soon as it is spawned (before it is ready): a hook to sample its memory and CPU. */
  onSpawn?: (child: Child) => void;
}

/** A running platform: where everything is, and handles on its processes. */
export interface Platform {
  runtime: Runtime;
  dir: string;
  /** The platform database. */
  databaseUrl: string;
  embeddedPostgres: boolean;
  temporalAddress: string;
  namespace: string;
  apiUrl: string;
  /** A pool on the platform database for setup and checks (its errors while PostgreSQL is down are ignored). */
  sql: Pool;
  /** A Temporal client of this process's own. */
  temporal: TemporalClient;
  readonly api: Child;
  worker(): Child | undefined;
  /** The Temporal dev server's pid, when this platform started it (not when it reused one). */
  temporalPid(): number | undefined;
  /** A token the API accepts. */
  token(sub: string, roles: Role[], teams?: string[]): string;
  /** Starts a worker; resolves once the server lists it (this very pid) as a poller of the task queue. */
  startWorker(): Promise<Child>;
  /** Starts one more API process on `port` (the same database and Temporal), stopped by `close()`. */
  startExtraApi(port: number): Promise<Child>;
  /** Starts one more worker process, stopped by `close()` (kill it with its handle). */
  startExtraWorker(): Promise<Child>;
  /** Stops the API and starts it again on its port, with `env` added (e.g. IDP_AUDIT_CHAIN=off). */
  restartApi(env?: Record<string, string>): Promise<void>;
  /** Stops the worker gracefully (SIGTERM: running activities get their grace), if one runs. */
  stopWorker(): Promise<void>;
  /** SIGKILLs the worker, if one runs. */
  killWorker(): Promise<void>;
  /** SIGKILLs the Temporal dev server (its file, if any, stays). */
  killTemporal(): Promise<void>;
  startTemporal(): Promise<void>;
  /** Stops the embedded PostgreSQL (fast shutdown: open connections are cut). */
  stopPostgres(): Promise<void>;
  startPostgres(): Promise<void>;
  /** Everything the API and every worker printed (the log checks, a failing test's message). */
  logs(): string;
  /** Stops everything that was started and drops the database; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts PostgreSQL, a migrated database, the Temporal dev server, the API (ready once `/api/health`
 * is 200) and, unless `worker: false`, the worker. When a step fails, what was started is stopped.
 */
export async function startPlatform(opts: PlatformOptions): Promise<Platform> {
  const log = opts.log ?? (() => undefined);
  mkdirSync(opts.dir, { recursive: true });
  const cleanups: Cleanups = [];
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const cleanup of cleanups) await cleanup().catch((err: unknown) => log(`cleanup: ${String(err)}`));
  };
  if (opts.stopOnSignals) {
    const onSignal = (signal: NodeJS.Signals): void => {
      log(`${signal}: stopping everything`);
      void close().finally(() => process.exit(130));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    cleanups.push(async () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    });
  }
  try {
    return await start(opts, log, cleanups, close);
  } catch (err) {
    await close();
    throw err;
  }
}

/** What undoes each step started so far, newest first. */
type Cleanups = (() => Promise<unknown>)[];

/** PostgreSQL (embedded in a child process, or the given server) and the platform database, migrated. */
async function startDatabase(opts: PlatformOptions, log: (line: string) => void, cleanups: Cleanups) {
  const embedded = 'port' in opts.postgres ? opts.postgres : undefined;
  const readyLine = /postgres ready on (\S+)\n/;
  let pg: Child | undefined;
  const startPostgres = async (): Promise<string> => {
    pg = await spawnChild({
      name: 'postgres',
      ...nodeEntry('tsx', 'test/support/postgres.process', { args: [embedded!.dir, String(embedded!.port)] }),
      env: {},
      ready: async (child) => readyLine.test(child.output()),
    });
    return readyLine.exec(pg.output())![1]!;
  };
  let adminUrl: string;
  if (embedded) {
    log(`starting embedded PostgreSQL on 127.0.0.1:${embedded.port} (${embedded.dir})`);
    adminUrl = await startPostgres();
    cleanups.unshift(async () => pg?.kill('SIGTERM'));
  } else {
    adminUrl = (opts.postgres as { adminUrl: string }).adminUrl;
  }
  const databaseName = `idp_${opts.name.replace(/\W/g, '_')}_${randomBytes(4).toString('hex')}`;
  const databaseUrl = await ensureDatabase(adminUrl, databaseName);
  cleanups.unshift(() => dropDatabase(adminUrl, databaseName));
  const orm = await initMigratingORM(databaseUrl, 2);
  await migrateUp(orm);
  await orm.close(true);
  log(
    `database ${databaseName} created and migrated on ${embedded ? 'embedded PostgreSQL' : 'the given server'}`,
  );
  const sql = new Pool({ connectionString: databaseUrl, max: 4 });
  // An idle connection cut by a stopped server is an error event; unhandled, it would end this process.
  sql.on('error', (err) => log(`pool: ${err.message}`));
  cleanups.unshift(() => sql.end());
  return {
    databaseUrl,
    sql,
    embedded: embedded !== undefined,
    async stop(): Promise<void> {
      if (!pg) throw new Error('PostgreSQL is not embedded: this platform cannot stop it');
      await pg.kill('SIGTERM');
    },
    async restart(): Promise<void> {
      await startPostgres();
    },
  };
}

/** The Temporal dev server (in memory, or on `<dir>/temporal.db`) and a client of it. */
async function startTemporal(opts: PlatformOptions, log: (line: string) => void, cleanups: Cleanups) {
  const cli = await findTemporalCli(log);
  if (!cli) throw new Error('no temporal CLI: set TEMPORAL_CLI_PATH or install Go (see README)');
  const namespace = 'default';
  const serverOpts = {
    cli,
    port: opts.ports.temporal,
    namespace,
    dbFile: opts.persistTemporal ? path.join(opts.dir, 'temporal.db') : undefined,
  };
  log(
    `starting the Temporal dev server on 127.0.0.1:${opts.ports.temporal} (${opts.persistTemporal ? 'on a file' : 'in memory'}, headless)`,
  );
  let server: DevServerHandle = await startTemporalDevServer(serverOpts);
  cleanups.unshift(() => server.stop());
  const connection = await Connection.connect({ address: server.address });
  cleanups.unshift(() => connection.close());
  return {
    address: server.address,
    namespace,
    client: new TemporalClient({ connection, namespace }),
    pid: (): number | undefined => server.process?.pid,
    async kill(): Promise<void> {
      const child = server.process;
      if (!child || child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    },
    async restart(): Promise<void> {
      server = await startTemporalDevServer(serverOpts);
    },
  };
}

/** The steps of {@link startPlatform}: PostgreSQL, Temporal, then the API and the worker. */
async function start(
  opts: PlatformOptions,
  log: (line: string) => void,
  cleanups: Cleanups,
  close: () => Promise<void>,
): Promise<Platform> {
  const db = await startDatabase(opts, log, cleanups);
  const temporal = await startTemporal(opts, log, cleanups);
  const secret = opts.jwtSecret ?? randomBytes(48).toString('base64url');
  const env = {
    DATABASE_URL: db.databaseUrl,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_NAMESPACE: temporal.namespace,
    TEMPORAL_TASK_QUEUE: opts.taskQueue,
    TEMPORAL_UI_URL: `http://localhost:${opts.ports.temporal + 1000}`,
    JWT_SECRET: secret,
    IDP_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    HOST: '127.0.0.1',
    PORT: String(opts.ports.api),
    LOG_LEVEL: 'info',
    WORKER_SHUTDOWN_GRACE_MS: '2000',
    ...opts.env,
  };
  const apiUrl = `http://127.0.0.1:${opts.ports.api}`;
  log(`starting the API (${opts.runtime}) on 127.0.0.1:${opts.ports.api}`);
  /** An API process on `port` (its log appended to `api.log`), ready once `/api/health` is 200. */
  const spawnApi = (port: number, more: Record<string, string> = {}): Promise<Child> => {
    const url = `http://127.0.0.1:${port}`;
    return spawnChild({
      name: port === opts.ports.api ? 'api' : `api:${port}`,
      ...nodeEntry(opts.runtime, 'src/api/main', { nodeArgs: opts.apiNodeArgs }),
      env: { ...env, ...more, PORT: String(port) },
      logFile: path.join(opts.dir, 'api.log'),
      ready: async () =>
        (await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(5000) })).status === 200,
      readyEveryMs: 200,
      onStart: opts.onSpawn,
    });
  };
  let api = await spawnApi(opts.ports.api);
  const extras: Child[] = [];
  cleanups.unshift(async () => {
    await api.stop();
    for (const child of extras) await child.stop();
  });

  let worker: Child | undefined;
  /** A worker process (its log appended to `worker.log`), ready once the server lists it as a poller. */
  const spawnWorker = (): Promise<Child> =>
    spawnChild({
      name: 'worker',
      ...nodeEntry(opts.runtime, 'src/worker/main'),
      env,
      // Every worker of the run appends to the one file.
      logFile: path.join(opts.dir, 'worker.log'),
      // Ready once the server lists a poller from this very process (the SDK's identity is `pid@host`).
      ready: async (child) => {
        const res = await temporal.client.workflowService.describeTaskQueue({
          namespace: temporal.namespace,
          taskQueue: { name: opts.taskQueue },
          taskQueueType: 1,
        });
        return (res.pollers ?? []).some((p) => p.identity === `${child.pid}@${os.hostname()}`);
      },
      readyEveryMs: 250,
      onStart: opts.onSpawn,
    });
  const startWorker = async (): Promise<Child> => {
    worker = await spawnWorker();
    return worker;
  };
  const stopWorker = async (): Promise<void> => {
    await worker?.stop();
    worker = undefined;
  };
  cleanups.unshift(stopWorker);
  if (opts.worker !== false) {
    log(`starting the worker (${opts.runtime}) on task queue ${opts.taskQueue}`);
    await startWorker();
  }

  const readLog = (name: string): string =>
    existsSync(path.join(opts.dir, name)) ? readFileSync(path.join(opts.dir, name), 'utf8') : '';
  return {
    runtime: opts.runtime,
    dir: opts.dir,
    databaseUrl: db.databaseUrl,
    embeddedPostgres: db.embedded,
    temporalAddress: temporal.address,
    namespace: temporal.namespace,
    apiUrl,
    sql: db.sql,
    temporal: temporal.client,
    get api() {
      return api;
    },
    worker: () => worker,
    async startExtraApi(port) {
      const child = await spawnApi(port);
      extras.push(child);
      return child;
    },
    async startExtraWorker() {
      const child = await spawnWorker();
      extras.push(child);
      return child;
    },
    async restartApi(more = {}) {
      await api.stop();
      api = await spawnApi(opts.ports.api, more);
    },
    temporalPid: temporal.pid,
    token: (sub, roles, teams = []) => signToken(secret, { sub, roles, teams, ttl: '2h' }),
    startWorker,
    stopWorker,
    async killWorker() {
      await worker?.kill('SIGKILL');
      worker = undefined;
    },
    killTemporal: temporal.kill,
    startTemporal: temporal.restart,
    stopPostgres: db.stop,
    startPostgres: db.restart,
    logs: () => [readLog('worker.log'), readLog('api.log')].join('\n'),
    close,
  };
}
