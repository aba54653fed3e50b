/**
 * The compose stack's own services as processes: the `migrate` job, the `api` and two `worker`
 * replicas (`docker compose up --scale worker=2`), each the compiled `dist/` entry point the image
 * runs, with compose's environment pointed at this run's databases and Temporal server.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client as TemporalClient } from '@temporalio/client';
import { nodeEntry, ROOT, spawnChild, type Child } from '../../test/support/spawn';
import { runToEnd } from './processes';

/** What compose gives the app containers (`x-app-env` and the api's and workers' extras), for this run. */
export interface PlatformSettings {
  databaseUrl: string;
  temporalAddress: string;
  taskQueue: string;
  apiPort: number;
  simulatedDelayMs: number;
}

/** The app image's environment (API, workers and migration alike) and the JWT secret in it. */
export function platformEnvironment(s: PlatformSettings): { env: Record<string, string>; jwtSecret: string } {
  const jwtSecret = randomBytes(48).toString('base64url');
  return {
    jwtSecret,
    env: {
      DATABASE_URL: s.databaseUrl,
      TEMPORAL_ADDRESS: s.temporalAddress,
      TEMPORAL_NAMESPACE: 'default',
      TEMPORAL_TASK_QUEUE: s.taskQueue,
      JWT_SECRET: jwtSecret,
      IDP_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      HOST: '127.0.0.1',
      PORT: String(s.apiPort),
      LOG_LEVEL: 'info',
      SIMULATED_DELAY_MS: String(s.simulatedDelayMs),
      PUBLIC_URL: `http://127.0.0.1:${s.apiPort}`,
    },
  };
}

/** `npm run build` (tsc and the prebuilt workflow bundle): the image's build stage. */
export async function build(
  logDir: string,
  timeoutMs: number,
  onStart: (child: Child) => void,
): Promise<string> {
  await runToEnd({
    name: 'npm run build',
    command: 'npm',
    args: ['run', '-s', 'build'],
    env: {},
    // npm, its shell and tsc: a stop reaches all of them.
    group: true,
    logFile: path.join(logDir, 'build.log'),
    timeoutMs,
    onStart,
  });
  return 'dist/ and dist/workflow-bundle.js';
}

/** Fails unless `dist/` holds what the processes run (for `--no-build`). */
export function requireDist(): string {
  for (const file of ['dist/src/api/main.js', 'dist/src/worker/main.js', 'dist/workflow-bundle.js'])
    if (!existsSync(path.join(ROOT, file))) throw new Error(`${file} is missing: run without --no-build`);
  return 'reusing dist/ (--no-build)';
}

/** The `migrate` job: `node dist/src/cli/migrate.js up`; answers how many migrations it applied. */
export async function migrate(
  env: Record<string, string>,
  logDir: string,
  timeoutMs: number,
  onStart: (child: Child) => void,
): Promise<string> {
  const output = await runToEnd({
    name: 'migrate',
    ...nodeEntry('dist', 'src/cli/migrate', { args: ['up'] }),
    env,
    logFile: path.join(logDir, 'migrate.log'),
    timeoutMs,
    onStart,
  });
  const applied = /applied: (.*)/.exec(output)?.[1]?.split(', ');
  return applied ? `${applied.length} migrations applied` : (output.trim().split('\n').pop() ?? '');
}

/** The `api` service; ready once `GET /api/health` is 200 (its checks reach PostgreSQL and Temporal). */
export async function startApi(opts: {
  env: Record<string, string>;
  logDir: string;
  readyTimeoutMs: number;
  onStart: (child: Child) => void;
}): Promise<{ child: Child; url: string }> {
  const url = `http://127.0.0.1:${opts.env['PORT']}`;
  const child = await spawnChild({
    name: 'api',
    ...nodeEntry('dist', 'src/api/main'),
    env: opts.env,
    logFile: path.join(opts.logDir, 'api.log'),
    ready: async () =>
      (await fetch(`${url}/api/health`, { signal: AbortSignal.timeout(5000) })).status === 200,
    readyTimeoutMs: opts.readyTimeoutMs,
    readyEveryMs: 250,
    onStart: opts.onStart,
  });
  return { child, url };
}

/**
 * One `worker` replica (`worker-<n>`); ready once Temporal lists a poller of the task queue from this
 * very process (the SDK's identity is `pid@host`), as test/support/platform.ts checks.
 */
export async function startWorker(opts: {
  n: number;
  env: Record<string, string>;
  temporal: TemporalClient;
  logDir: string;
  readyTimeoutMs: number;
  onStart: (child: Child) => void;
}): Promise<Child> {
  return spawnChild({
    name: `worker-${opts.n}`,
    ...nodeEntry('dist', 'src/worker/main'),
    env: opts.env,
    logFile: path.join(opts.logDir, `worker-${opts.n}.log`),
    ready: async (child) => {
      const res = await opts.temporal.workflowService.describeTaskQueue({
        namespace: opts.env['TEMPORAL_NAMESPACE'],
        taskQueue: { name: opts.env['TEMPORAL_TASK_QUEUE'] },
        taskQueueType: 1,
      });
      return (res.pollers ?? []).some((p) => p.identity === `${child.pid}@${os.hostname()}`);
    },
    readyTimeoutMs: opts.readyTimeoutMs,
    readyEveryMs: 500,
    onStart: opts.onStart,
  });
}
