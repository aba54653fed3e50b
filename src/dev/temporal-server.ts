import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { SEARCH_ATTRIBUTE_NAMES } from '../workflows/contract';

const run = promisify(execFile);

/** The Temporal CLI release the project pins (its dev server is Temporal 1.29.1). */
export const TEMPORAL_CLI_MODULE = 'github.com/temporalio/cli/cmd/temporal@v1.5.1';

/** The project-local tools folder where the pinned CLI is built. */
export const TOOLS_BIN = path.resolve(__dirname, '../../.tools/bin');

function onPath(name: string): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * Finds the `temporal` binary: `TEMPORAL_CLI_PATH`, then the project's tools folder, then PATH, then a
 * pinned `go install` into the tools folder; undefined when none of these works (the caller may fall
 * back to the SDK's own download).
 */
export async function findTemporalCli(
  log: (line: string) => void = () => undefined,
): Promise<string | undefined> {
  const fromEnv = process.env['TEMPORAL_CLI_PATH'];
  if (fromEnv && existsSync(fromEnv)) return fromEnv;
  const local = path.join(TOOLS_BIN, 'temporal');
  if (existsSync(local)) return local;
  const inPath = onPath('temporal');
  if (inPath) return inPath;
  const go = onPath('go');
  if (!go) return undefined;
  log(`building the Temporal CLI (${TEMPORAL_CLI_MODULE}) into ${TOOLS_BIN}; this takes a few minutes once`);
  await mkdir(TOOLS_BIN, { recursive: true });
  await run(go, ['install', TEMPORAL_CLI_MODULE], {
    env: { ...process.env, GOBIN: TOOLS_BIN },
    maxBuffer: 64 * 1024 * 1024,
  });
  return existsSync(local) ? local : undefined;
}

/** True when a Temporal frontend answers at `address`. */
export async function temporalHealthy(cli: string, address: string): Promise<boolean> {
  try {
    await run(cli, ['operator', 'cluster', 'health', '--address', address], { timeout: 5000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * Registers the platform's search attributes in `namespace` (needed when the server's database
 * already existed, since `--search-attribute` flags only apply to a new one). Safe to repeat.
 */
export async function registerSearchAttributes(
  cli: string,
  address: string,
  namespace: string,
): Promise<void> {
  const { stdout } = await run(
    cli,
    ['operator', 'search-attribute', 'list', '--address', address, '--namespace', namespace, '-o', 'json'],
    { timeout: 15000 },
  );
  const missing = SEARCH_ATTRIBUTE_NAMES.filter((name) => !stdout.includes(`"${name}"`));
  for (const name of missing) {
    await run(
      cli,
      [
        'operator',
        'search-attribute',
        'create',
        '--address',
        address,
        '--namespace',
        namespace,
        '--name',
        name,
        '--type',
        'Keyword',
      ],
      {
        timeout: 15000,
      },
    );
  }
}

export interface DevServerOptions {
  cli: string;
  port: number;
  uiPort?: number;
  /** SQLite file that keeps every workflow across restarts; in memory when absent. */
  dbFile?: string;
  namespace: string;
  log?: (line: string) => void;
}

/** A dev server this process started (or found running), with a way to stop it. */
export interface DevServerHandle {
  address: string;
  process?: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts `temporal server start-dev` with the platform's search attributes and waits until it is
 * healthy; reuses a server already answering on that port (left by a killed run).
 */
export async function startTemporalDevServer(opts: DevServerOptions): Promise<DevServerHandle> {
  const address = `127.0.0.1:${opts.port}`;
  const log = opts.log ?? (() => undefined);
  if (await temporalHealthy(opts.cli, address)) {
    log(`reusing the Temporal server already answering on ${address}`);
    await registerSearchAttributes(opts.cli, address, opts.namespace);
    return { address, stop: async () => undefined };
  }
  if (opts.dbFile) await mkdir(path.dirname(opts.dbFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--ip',
    '127.0.0.1',
    '--port',
    String(opts.port),
    '--log-level',
    'warn',
    '--namespace',
    opts.namespace,
    ...(opts.uiPort ? ['--ui-port', String(opts.uiPort), '--ui-ip', '127.0.0.1'] : ['--headless']),
    ...(opts.dbFile ? ['--db-filename', opts.dbFile] : []),
    ...SEARCH_ATTRIBUTE_NAMES.flatMap((name) => ['--search-attribute', `${name}=Keyword`]),
  ];
  const child = spawn(opts.cli, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (d: Buffer) => log(d.toString().trim()));
  child.stderr?.on('data', (d: Buffer) => log(d.toString().trim()));
  let exited = false;
  child.on('exit', () => (exited = true));
  const deadline = Date.now() + 120_000;
  while (!(await temporalHealthy(opts.cli, address))) {
    if (exited) throw new Error(`temporal server start-dev exited early (is port ${opts.port} taken?)`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error('the Temporal dev server did not become healthy within 120 s');
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  await registerSearchAttributes(opts.cli, address, opts.namespace);
  return {
    address,
    process: child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }),
  };
}
