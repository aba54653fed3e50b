/**
 * The platform as the bench and the soak run it (test/support/platform.ts, with the scripts'
 * choices): the API and the worker from `npm run build`'s `dist/` as in production (TypeScript
 * through tsx when the build fails or `--tsx` is given), PostgreSQL from DATABASE_URL or an embedded
 * cluster kept under `.data/<name>-pg`, Temporal in memory, logs under `.data/<name>-run`, a random
 * JWT secret, and Ctrl-C stopping everything.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import path from 'node:path';
import { startPlatform, type Platform } from '../../test/support/platform';
import { RssSampler } from '../../test/support/process-usage';
import { ROOT, type Child, type Runtime } from '../../test/support/spawn';
import { say } from './report';

/**
 * Builds with `npm run build` (tsc and the prebuilt workflow bundle) and answers `dist`, or `tsx`
 * when the build fails or `build` is false and no compiled output exists.
 */
function prepareRuntime(opts: { build: boolean; force?: Runtime; logDir: string }): Runtime {
  const compiled =
    existsSync(path.join(ROOT, 'dist/src/api/main.js')) &&
    existsSync(path.join(ROOT, 'dist/workflow-bundle.js'));
  if (opts.force === 'tsx') return 'tsx';
  if (!opts.build) return compiled ? 'dist' : 'tsx';
  say('npm run build (the children run the compiled output, as production does)');
  const log = openSync(path.join(opts.logDir, 'build.log'), 'w');
  const result = spawnSync('npm', ['run', '-s', 'build'], { cwd: ROOT, stdio: ['ignore', log, log] });
  closeSync(log);
  if (result.status === 0 && existsSync(path.join(ROOT, 'dist/src/api/main.js'))) return 'dist';
  say(
    `the build failed (see ${path.join(opts.logDir, 'build.log')}): running the TypeScript sources through tsx instead`,
  );
  return 'tsx';
}

/** What a script chooses. */
export interface ScriptPlatformOptions {
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
}

/** A platform of the scripts: the processes' resident memory is sampled from their start (peaks per phase). */
export type ScriptPlatform = Platform & { rss: RssSampler };

/** Builds (unless `--no-build`), then starts the platform with the scripts' choices. */
export async function startScriptPlatform(opts: ScriptPlatformOptions): Promise<ScriptPlatform> {
  const dir = path.join(ROOT, '.data', `${opts.name}-run`);
  // This run's logs only (a restarted worker appends to its own).
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const runtime = prepareRuntime({
    build: !process.argv.includes('--no-build'),
    force: process.argv.includes('--tsx') ? 'tsx' : undefined,
    logDir: dir,
  });
  const adminUrl = process.env['DATABASE_URL']?.trim() || undefined;
  const children: Record<string, Child> = {};
  const rss = new RssSampler({ api: () => children['api'], worker: () => children['worker'] });
  const platform = await startPlatform({
    name: opts.name,
    dir,
    runtime,
    postgres: adminUrl
      ? { adminUrl }
      : { dir: path.join(ROOT, '.data', `${opts.name}-pg`), port: opts.pgPort },
    ports: { temporal: opts.temporalPort, api: opts.apiPort },
    taskQueue: opts.taskQueue,
    env: opts.childEnv,
    apiNodeArgs: opts.apiNodeArgs,
    stopOnSignals: true,
    log: say,
    onSpawn: (child) => (children[child.name] = child),
  }).catch((err: unknown) => {
    rss.stop();
    throw err;
  });
  say(
    `children run from ${runtime === 'dist' ? 'dist/ (node, compiled)' : 'TypeScript sources (node --import tsx)'}; logs in ${path.relative(ROOT, dir)}`,
  );
  const close = platform.close;
  return {
    ...platform,
    rss,
    async close() {
      rss.stop();
      await close();
    },
  };
}
