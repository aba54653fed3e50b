/**
 * `npm run test:topology`: `docker compose up` without Docker, as close as this machine allows. The
 * compose stack's parts run as native processes in its start order, from the same files it mounts:
 * the pinned Temporal server and SQL tool built from their Go modules (v1.29.1, the images' release),
 * the machine's PostgreSQL with databases of this run only, temporal-config/setup-schema.sh (the
 * `temporal-schema` job), the server with PostgreSQL persistence and visibility configured by
 * temporal-config/native/native.yaml and compose's dynamic config, temporal-config/setup-namespace.sh
 * (`temporal-setup`), then the `migrate` job, the API and two workers from `npm run build`'s `dist/`.
 * Through the API it runs the README's examples and walks a version to prod with an approval, and
 * finds the runs through Temporal's visibility by the platform's search attributes.
 *
 * Prints every step PASS/FAIL with its time and exits 0 only if all passed. Every process it started
 * is stopped (SIGTERM, then SIGKILL) and the databases are dropped, also on failure and on Ctrl-C.
 * Logs stay under `.data/topology/<run>/` when a run fails.
 *
 * `--no-build` reuses `dist/`. PostgreSQL: DATABASE_URL's server when set, else
 * postgres://postgres@127.0.0.1:5432 (trust authentication). Go: `GO`, else `go` on PATH, else
 * /usr/local/go/bin/go.
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTE_NAMES } from '../src/workflows/contract';
import { ROOT, type Child } from '../test/support/spawn';
import { machineInfo, say } from './lib/report';
import { newRunId, postgresServer, runDatabases, type RunDatabases } from './topology/database';
import { build, migrate, platformEnvironment, requireDist, startApi, startWorker } from './topology/platform';
import { freePorts, runJob } from './topology/processes';
import { runScenario } from './topology/scenario';
import { seconds, Steps } from './topology/steps';
import {
  checkServer,
  startNativeTemporal,
  validateDynamicConfig,
  type NativeTemporal,
} from './topology/temporal';
import { prepareToolbox, type Toolbox } from './topology/tools';

/** Generous limits: the machine may be busy with other suites. */
const LIMITS = {
  /** A compose one-shot job (schema setup, namespace setup). */
  jobMs: 5 * 60_000,
  buildMs: 10 * 60_000,
  migrateMs: 2 * 60_000,
  /** The Temporal server, the API or a worker becoming ready. */
  readyMs: 3 * 60_000,
  /** One environment or deployment reaching the state awaited. */
  waitMs: 2 * 60_000,
};

/** One run: its id, its log folder, its steps, and the undo actions of what it started. */
class Run {
  readonly id = newRunId();
  readonly dir = path.join(ROOT, '.data', 'topology', this.id);
  readonly steps = new Steps();
  private readonly cleanups: { what: string; undo: () => Promise<unknown> }[] = [];
  private closing?: Promise<void>;

  /** Registers `undo` to run at close, before everything registered earlier. */
  defer(what: string, undo: () => Promise<unknown>): void {
    this.cleanups.unshift({ what, undo });
  }

  /** Stops `child` at close: SIGTERM, SIGKILL after 15 s. */
  readonly track = (child: Child): void => this.defer(`stop ${child.name}`, () => child.stop(15_000));

  /** Runs every cleanup once, each even when an earlier one failed. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      for (const { what, undo } of this.cleanups)
        await undo().catch((err: unknown) => say(`cleanup (${what}) failed: ${String(err)}`));
    })();
    return this.closing;
  }
}

/**
 * The Temporal schema job, as compose's `temporal-schema` service runs it on every `up`; `name`
 * tells a first run's log from a second's.
 */
async function temporalSchema(run: Run, toolbox: Toolbox, db: RunDatabases, name: string): Promise<string> {
  await runJob({
    name,
    script: 'temporal-config/setup-schema.sh',
    env: {
      PATH: toolbox.path,
      POSTGRES_SEEDS: db.server.host,
      DB_PORT: String(db.server.port),
      POSTGRES_USER: db.server.user,
      POSTGRES_PWD: db.server.password,
      DBNAME: db.temporal,
      VISIBILITY_DBNAME: db.visibility,
      SCHEMA_ROOT: toolbox.schemaRoot,
    },
    logDir: run.dir,
    timeoutMs: LIMITS.jobMs,
    onStart: run.track,
  });
  return `${db.temporal}, ${db.visibility}`;
}

/** What a namespace job did: create the namespace or find it, and how many search attributes it registered. */
interface SetupOutcome {
  created: boolean;
  registered: number;
}

const describeSetup = (o: SetupOutcome): string =>
  `namespace default ${o.created ? 'created' : 'found'} (retention 72 h), ${o.registered} of ${SEARCH_ATTRIBUTE_NAMES.length} search attributes registered`;

/**
 * The namespace job, as compose's `temporal-setup` service runs it on every `up`, then a check of
 * its result through the server's own API: the namespace keeps runs 72 h and every search attribute
 * of the code is registered. `name` tells a first run's log from a second's.
 */
async function temporalSetup(
  run: Run,
  toolbox: Toolbox,
  temporal: NativeTemporal,
  client: TemporalClient,
  name: string,
): Promise<SetupOutcome> {
  const output = await runJob({
    name,
    script: 'temporal-config/setup-namespace.sh',
    env: {
      PATH: toolbox.path,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: 'default',
      NAMESPACE_RETENTION: '72h',
    },
    logDir: run.dir,
    timeoutMs: LIMITS.jobMs,
    onStart: run.track,
  });
  const { customAttributes } = await client.connection.operatorService.listSearchAttributes({
    namespace: 'default',
  });
  const missing = SEARCH_ATTRIBUTE_NAMES.filter((name) => !(name in (customAttributes ?? {})));
  if (missing.length) throw new Error(`search attributes not registered: ${missing.join(', ')}`);
  const { config } = await client.workflowService.describeNamespace({ namespace: 'default' });
  const retentionHours = Number(config?.workflowExecutionRetentionTtl?.seconds ?? 0) / 3600;
  if (retentionHours !== 72) throw new Error(`namespace default keeps runs ${retentionHours} h, not 72 h`);
  return {
    created: output.includes('creating namespace'),
    registered: output.match(/^registering search attribute/gm)?.length ?? 0,
  };
}

/** Everything in compose's start order, then the scenario. */
async function stack(run: Run): Promise<void> {
  const { steps } = run;
  const toolbox = await steps.run(
    'tools: temporal server, temporal-sql-tool, CLI',
    () => prepareToolbox(path.join(run.dir, 'bin'), say),
    (t) => [t.server, t.sqlTool, t.cli].map((p) => path.relative(ROOT, p)).join(', '),
  );
  await steps.run('dynamic config valid for the server', () => validateDynamicConfig(toolbox));
  const db = runDatabases(postgresServer(), run.id);
  run.defer('drop the databases', () => db.drop());
  await steps.run('postgres: platform database', async () => {
    await db.createPlatform();
    return `${db.server.host}:${db.server.port} ${db.platform}`;
  });
  await steps.run('temporal-schema: setup-schema.sh', () =>
    temporalSchema(run, toolbox, db, 'temporal-schema'),
  );
  await steps.run('temporal-schema again (the next `up`)', () =>
    temporalSchema(run, toolbox, db, 'temporal-schema-again'),
  );
  const temporal = await steps.run(
    'temporal: server healthy (PostgreSQL persistence + visibility)',
    () =>
      startNativeTemporal({
        toolbox,
        db,
        logDir: run.dir,
        readyTimeoutMs: LIMITS.readyMs,
        onStart: run.track,
      }),
    (t) => `frontend ${t.address}`,
  );
  const { client } = await steps.run(
    'temporal: release, stores, metrics',
    async () => {
      const connection = await Connection.connect({ address: temporal.address });
      run.defer('close the Temporal connection', () => connection.close());
      const client = new TemporalClient({ connection, namespace: 'default' });
      return { client, detail: await checkServer(client, temporal) };
    },
    (r) => r.detail,
  );
  await steps.run(
    'temporal-setup: setup-namespace.sh',
    () => temporalSetup(run, toolbox, temporal, client, 'temporal-setup'),
    describeSetup,
  );
  await steps.run(
    'temporal-setup again (the next `up`)',
    async () => {
      const outcome = await temporalSetup(run, toolbox, temporal, client, 'temporal-setup-again');
      if (outcome.created || outcome.registered > 0)
        throw new Error(`a second run changed something: ${describeSetup(outcome)}`);
      return outcome;
    },
    describeSetup,
  );

  await steps.run(process.argv.includes('--no-build') ? 'build (skipped)' : 'npm run build', () =>
    process.argv.includes('--no-build')
      ? Promise.resolve(requireDist())
      : build(run.dir, LIMITS.buildMs, run.track),
  );
  const [apiPort] = await freePorts(1);
  const { env, jwtSecret } = platformEnvironment({
    databaseUrl: db.platformUrl,
    temporalAddress: temporal.address,
    taskQueue: `idp-topology-${run.id}`,
    apiPort: apiPort!,
    simulatedDelayMs: 500,
  });
  await steps.run('migrate: migrate.js up', () => migrate(env, run.dir, LIMITS.migrateMs, run.track));
  const api = await steps.run(
    'api: /api/health 200',
    () => startApi({ env, logDir: run.dir, readyTimeoutMs: LIMITS.readyMs, onStart: run.track }),
    (a) => a.url,
  );
  for (const n of [1, 2])
    await steps.run(
      `worker ${n}: polling the task queue`,
      () =>
        startWorker({
          n,
          env,
          temporal: client,
          logDir: run.dir,
          readyTimeoutMs: LIMITS.readyMs,
          onStart: run.track,
        }),
      (w) => `pid ${w.pid} on ${env['TEMPORAL_TASK_QUEUE']}`,
    );
  await runScenario({ steps, apiUrl: api.url, jwtSecret, temporal: client, waitMs: LIMITS.waitMs });
}

async function main(): Promise<void> {
  const began = Date.now();
  const run = new Run();
  mkdirSync(run.dir, { recursive: true });
  say(`topology run ${run.id}: logs in ${path.relative(ROOT, run.dir)}`);
  const onSignal = (signal: NodeJS.Signals): void => {
    say(`${signal}: stopping everything and dropping the databases`);
    void run.close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let failed = false;
  try {
    await stack(run);
  } catch (err) {
    failed = true;
    // A step's failure is already on screen; anything else is not.
    if (run.steps.passed()) console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  } finally {
    say('stopping every process and dropping the databases');
    await run.close();
  }
  const ok = !failed && run.steps.passed();
  process.stdout.write(`\n${run.steps.table()}\n`);
  const m = machineInfo();
  say(
    `machine: ${m.nproc} cores, load average ${m.load_average.join(' ')}; ${seconds(Date.now() - began)} in all`,
  );
  if (ok) rmSync(run.dir, { recursive: true, force: true });
  say(ok ? 'topology passed' : `topology FAILED: logs in ${path.relative(ROOT, run.dir)}`);
  process.exit(ok ? 0 : 1);
}

void main();
