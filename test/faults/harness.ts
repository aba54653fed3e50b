/**
 * The fault suite's platform: every part a real process of its own that a test can kill — an
 * embedded PostgreSQL cluster, a Temporal CLI dev server on a SQLite file, the API and the worker as
 * `tsx` children (or the whole `npm run dev` runner) — plus the probes and the invariant checks that
 * every scenario ends with. Nothing here is shared with the other suites: they keep running while a
 * fault test stops its own PostgreSQL or Temporal.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { Client as PgClient } from 'pg';
import { signToken } from '../../src/auth/tokens';
import { ensureDatabase } from '../../src/dev/postgres';
import { findTemporalCli, startTemporalDevServer, type DevServerHandle } from '../../src/dev/temporal-server';
import { ACTIVE_DEPLOYMENT_STATUSES } from '../../src/domain/types';
import { eventually } from '../support/stack';

export const ROOT = path.resolve(__dirname, '../..');
export const SECRET = 'fault-suite-secret-that-is-long-enough-for-hs256';

/** A PLATFORM_ADMIN token for `sub` (requester and approver must differ on prod). */
export const adminToken = (sub: string): string => signToken(SECRET, { sub, roles: ['PLATFORM_ADMIN'], teams: [], ttl: '1h' });

/** The folder a scenario keeps its PostgreSQL cluster and Temporal file in. */
export function dataDir(name: string): string {
  const dir = path.join(ROOT, '.data/faults', `${name}-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  return dir;
}

/** A JSON response body: the assertions that read it check its shape (as supertest's `any` does). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Body = any;

/** A child process with its collected output. */
export interface Proc {
  child: ChildProcess;
  output(): string;
  /** Resolves once the process has exited. */
  exited: Promise<void>;
}

/**
 * Runs a TypeScript entry point as ONE process (`node --import tsx`: the `tsx` command would put a
 * wrapper process in front, and a SIGKILL of the wrapper leaves the real one running) with `env`;
 * resolves once its output contains `ready`.
 */
export function spawnTs(script: string, env: Record<string, string>, ready: string, opts: { timeoutMs?: number; args?: string[] } = {}): Promise<Proc> {
  return spawnReady(process.execPath, ['--import', 'tsx', script, ...(opts.args ?? [])], env, ready, { timeoutMs: opts.timeoutMs });
}

/**
 * Spawns `command` with `env`; resolves once its output contains `ready`. `group` puts the child in
 * a process group of its own, so a signal to the group reaches every process it started.
 */
export function spawnReady(command: string, args: string[], env: Record<string, string>, ready: string, opts: { group?: boolean; timeoutMs?: number } = {}): Promise<Proc> {
  const script = `${path.basename(command)} ${args.join(' ')}`;
  const child = spawn(command, args, {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: opts.group ?? false,
  });
  let out = '';
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const proc: Proc = { child, output: () => out, exited };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} not ready after ${opts.timeoutMs ?? 120_000} ms:\n${out.slice(-3000)}`)), opts.timeoutMs ?? 120_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(ready)) {
        clearTimeout(timer);
        resolve(proc);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${script} exited (${code ?? signal}) before it was ready:\n${out.slice(-3000)}`));
    });
  });
}

/** Sends `signal` to the process (or its whole group) and waits until it has exited. */
export async function kill(proc: Proc, signal: NodeJS.Signals, group = false): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  if (group) process.kill(-proc.child.pid!, signal);
  else proc.child.kill(signal);
  await proc.exited;
}

/** Parts of the platform a scenario can stop and start one by one. */
export interface Platform {
  apiUrl: string;
  databaseUrl: string;
  /** SIGKILLs the worker (or does nothing when it is down). */
  killWorker(): Promise<void>;
  startWorker(): Promise<void>;
  /** SIGKILLs the Temporal dev server; its SQLite file stays. */
  killTemporal(): Promise<void>;
  startTemporal(): Promise<void>;
  /** Stops PostgreSQL (fast shutdown: open connections are cut). */
  stopPostgres(): Promise<void>;
  startPostgres(): Promise<void>;
  /** Everything the processes printed (for a failing test's message and the log checks). */
  logs(): string;
  close(): Promise<void>;
}

/**
 * Starts PostgreSQL (always embedded: the suite must be able to stop it), a migrated database, the
 * Temporal dev server on a file, the worker and the API, each as its own process.
 */
export async function startPlatform(name: string, ports: { pg: number; temporal: number; api: number }): Promise<Platform> {
  const dir = dataDir(name);
  const cli = await findTemporalCli();
  if (!cli) throw new Error('no temporal CLI (see README)');
  const startPostgres = () => spawnTs('test/faults/postgres.process.ts', {}, 'postgres ready', { args: [path.join(dir, 'pg'), String(ports.pg)] });
  let pg = await startPostgres();
  const databaseUrl = await ensureDatabase(`postgres://postgres:postgres@127.0.0.1:${ports.pg}/postgres`, 'idp');
  const temporalOpts = { cli, port: ports.temporal, dbFile: path.join(dir, 'temporal.db'), namespace: 'default' };
  let temporal: DevServerHandle = await startTemporalDevServer(temporalOpts);
  const env = {
    DATABASE_URL: databaseUrl,
    TEMPORAL_ADDRESS: temporal.address,
    TEMPORAL_TASK_QUEUE: 'faults',
    JWT_SECRET: SECRET,
    HOST: '127.0.0.1',
    PORT: String(ports.api),
    LOG_LEVEL: 'info',
    SIMULATED_DELAY_MS: '0',
    WORKER_SHUTDOWN_GRACE_MS: '1000',
  };
  const migrate = spawn(process.execPath, ['--import', 'tsx', 'src/cli/migrate.ts', 'up'], { cwd: ROOT, env: { ...process.env, ...env }, stdio: 'ignore' });
  const code = await new Promise<number | null>((r) => migrate.once('exit', r));
  if (code !== 0) throw new Error(`migrations failed (${code})`);

  const dead: string[] = [];
  const startWorker = () => spawnTs('src/worker/main.ts', env, 'worker started');
  let worker: Proc | undefined = await startWorker();
  const api = await spawnTs('src/api/main.ts', env, 'API listening');
  return {
    apiUrl: `http://127.0.0.1:${ports.api}`,
    databaseUrl,
    async killWorker() {
      if (!worker) return;
      await kill(worker, 'SIGKILL');
      dead.push(worker.output());
      worker = undefined;
    },
    async startWorker() {
      worker = await startWorker();
    },
    async killTemporal() {
      temporal.process?.kill('SIGKILL');
      await new Promise((r) => (temporal.process?.exitCode !== null ? r(undefined) : temporal.process.once('exit', r)));
    },
    async startTemporal() {
      temporal = await startTemporalDevServer(temporalOpts);
    },
    async stopPostgres() {
      await kill(pg, 'SIGTERM');
    },
    async startPostgres() {
      pg = await startPostgres();
    },
    logs: () => [...dead, worker?.output() ?? '', api.output()].join('\n'),
    async close() {
      if (worker) await kill(worker, 'SIGKILL');
      await kill(api, 'SIGKILL');
      await temporal.stop();
      await kill(pg, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A minimal HTTP client for the platform's API that remembers every status it saw. */
export class Api {
  /** Every response status, with the request that got it. */
  readonly seen: { status: number; what: string; body: unknown }[] = [];

  constructor(
    private base: string,
    private token: string,
  ) {}

  /** The same API as another user, sharing the record of statuses seen. */
  as(token: string): Api {
    const other = new Api(this.base, token);
    (other as { seen: Api['seen'] }).seen = this.seen;
    return other;
  }

  async call(method: string, url: string, body?: unknown): Promise<{ status: number; body: Body }> {
    const what = `${method} ${url}`;
    try {
      const res = await fetch(this.base + url, {
        method,
        headers: { Authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(60_000),
      });
      const text = await res.text();
      const parsed = text ? (JSON.parse(text) as unknown) : null;
      this.seen.push({ status: res.status, what, body: parsed });
      return { status: res.status, body: parsed };
    } catch (err) {
      // The API process itself is down (the whole-runner scenario): no HTTP status at all.
      this.seen.push({ status: 0, what, body: String(err) });
      return { status: 0, body: null };
    }
  }

  /** Like call, but fails unless the status is `expected`. */
  async must(method: string, url: string, expected: number, body?: unknown): Promise<Body> {
    const res = await this.call(method, url, body);
    if (res.status !== expected) throw new Error(`${method} ${url}: ${res.status}, expected ${expected}: ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /** Every 5xx other than 503 seen so far. */
  serverErrors(): Api['seen'] {
    return this.seen.filter((s) => s.status >= 500 && s.status !== 503);
  }
}

/** A service with ready dev, staging and prod environments, made through the API. */
export interface Fixture {
  service: { id: number; name: string };
  envs: Record<'dev' | 'staging' | 'prod', { id: number }>;
}

/** Registers a service and provisions its three environments; waits until they are ready. */
export async function serviceWithEnvironments(api: Api, name: string): Promise<Fixture> {
  const service = await api.must('POST', '/api/services', 201, { name, tags: { owner: 'platform', data_sensitivity: 'internal' } });
  const envs = {} as Fixture['envs'];
  for (const tier of ['dev', 'staging', 'prod'] as const) {
    envs[tier] = await api.must('POST', `/api/services/${service.id}/environments`, 202, { name: tier, tier });
  }
  for (const tier of ['dev', 'staging', 'prod'] as const) {
    await eventually(async () => (await api.call('GET', `/api/services/${service.id}/environments/${envs[tier].id}`)).body?.status === 'ready', 60_000, `${name} ${tier} ready`);
  }
  return { service, envs };
}

/** Triggers a deployment; 202 or fails. */
export async function trigger(api: Api, f: Fixture, tier: 'dev' | 'staging' | 'prod', version: string, delayMs = 0): Promise<number> {
  const body = await api.must('POST', `/api/services/${f.service.id}/environments/${f.envs[tier].id}/deployments`, 202, {
    version,
    ...(delayMs ? { config: { simulate: { delay_ms: delayMs } } } : {}),
  });
  return body.id as number;
}

/** Waits until deployment `id` is in one of `statuses`; returns its body. */
export function statusOf(api: Api, id: number, statuses: string[], timeoutMs = 90_000): Promise<Body> {
  return eventually(async () => {
    const res = await api.call('GET', `/api/deployments/${id}`);
    return res.status === 200 && statuses.includes(res.body.status) ? res.body : undefined;
  }, timeoutMs, `deployment ${id} ${statuses.join('|')}`);
}

/** Walks `version` through dev and staging (waiting for each) and starts prod; returns the prod deployment id. */
export async function promoteToProd(api: Api, f: Fixture, version: string): Promise<number> {
  await statusOf(api, await trigger(api, f, 'dev', version), ['succeeded']);
  await statusOf(api, await trigger(api, f, 'staging', version), ['succeeded']);
  const id = await trigger(api, f, 'prod', version);
  await statusOf(api, id, ['awaiting_approval']);
  return id;
}

/**
 * Repeats GETs against the API while a fault lasts and records what came back: `/api/health` and a
 * read that needs PostgreSQL. Stop it to get the samples.
 */
export function probe(api: Api, readUrl: string): { stop(): Promise<{ health: { status: number; body: Body }[]; reads: number[] }> } {
  const health: { status: number; body: Body }[] = [];
  const reads: number[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      const [h, r] = await Promise.all([api.call('GET', '/api/health'), api.call('GET', readUrl)]);
      health.push(h);
      reads.push(r.status);
      await new Promise((res) => setTimeout(res, 300));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { health, reads };
    },
  };
}

/** What the database says about a set of deployments once everything has settled. */
export interface Ledger {
  /** deployment id → final status */
  status: Map<number, string>;
  /** deployment ids whose timeline repeats a status */
  repeatedTimeline: number[];
  /** `id action count` for every transition audited other than once (or not at all) */
  auditMismatches: string[];
  /** active deployments left on the environments of these deployments (the lock) */
  locksLeft: number;
}

/**
 * Reads the deployments and their audit entries straight from PostgreSQL and checks the durable
 * record: each status in the timeline once, each transition audited exactly once (the API's
 * `deployment.create` on the environment, then a `deployment.<status>` entry per later status), and
 * no active deployment left on their environments.
 */
export async function ledger(databaseUrl: string, ids: number[]): Promise<Ledger> {
  const db = new PgClient({ connectionString: databaseUrl });
  await db.connect();
  try {
    const { rows } = await db.query<{ id: string; status: string; timeline: { status: string }[]; environment_id: number; job_id: string }>(
      'select id, status, timeline, environment_id, job_id from deployment where id = any($1::bigint[])',
      [ids],
    );
    const audit = await db.query<{ target_id: string; action: string; n: string }>(
      "select target_id, action, count(*)::text as n from audit_log where target_type = 'deployment' and target_id = any($1::text[]) group by 1, 2",
      [ids.map(String)],
    );
    const created = await db.query<{ job_id: string; n: string }>(
      "select details->>'job_id' as job_id, count(*)::text as n from audit_log where action = 'deployment.create' and outcome = 'success' group by 1",
    );
    const createdCount = new Map(created.rows.map((r) => [r.job_id, Number(r.n)]));
    const approvals = await db.query<{ deployment_id: string; n: string }>(
      'select deployment_id, count(*)::text as n from approval where deployment_id = any($1::bigint[]) group by 1',
      [ids],
    );
    const approvalCount = new Map(approvals.rows.map((r) => [Number(r.deployment_id), Number(r.n)]));
    const counts = new Map(audit.rows.map((r) => [`${r.target_id} ${r.action}`, Number(r.n)]));
    const result: Ledger = { status: new Map(), repeatedTimeline: [], auditMismatches: [], locksLeft: 0 };
    for (const row of rows) {
      const id = Number(row.id);
      result.status.set(id, row.status);
      const statuses = row.timeline.map((t) => t.status);
      if (new Set(statuses).size !== statuses.length) result.repeatedTimeline.push(id);
      if (createdCount.get(row.job_id) !== 1) result.auditMismatches.push(`${id} deployment.create ${createdCount.get(row.job_id) ?? 0}`);
      for (const status of statuses.slice(1)) {
        const n = counts.get(`${id} deployment.${status}`) ?? 0;
        if (n !== 1) result.auditMismatches.push(`${id} deployment.${status} ${n}`);
      }
      const decisions = (counts.get(`${id} deployment.approve`) ?? 0) + (counts.get(`${id} deployment.reject`) ?? 0);
      if (decisions !== (approvalCount.get(id) ?? 0)) result.auditMismatches.push(`${id} decisions audited ${decisions}, recorded ${approvalCount.get(id) ?? 0}`);
      // Nothing audited for a status the timeline does not hold.
      for (const [key, n] of counts) {
        const [target, action] = key.split(' ');
        const status = action!.slice('deployment.'.length);
        if (Number(target) === id && !['create', 'approve', 'reject', 'cancel'].includes(status) && !statuses.includes(status)) {
          result.auditMismatches.push(`${id} ${action} ${n} (not in the timeline)`);
        }
      }
    }
    const envIds = [...new Set(rows.map((r) => r.environment_id))];
    const locks = await db.query<{ n: string }>('select count(*)::text as n from deployment where environment_id = any($1::bigint[]) and status = any($2::text[])', [envIds, [...ACTIVE_DEPLOYMENT_STATUSES]]);
    result.locksLeft = Number(locks.rows[0]!.n);
    return result;
  } finally {
    await db.end();
  }
}

/** Lines the processes logged at level error (pino: "level":50) or above. */
export function errorLines(logs: string): string[] {
  return logs.split('\n').filter((l) => /"level":(50|60)/.test(l));
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
