/**
 * The compose stack's `temporal` service without its container: the pinned server binary on
 * loopback, PostgreSQL persistence and visibility, configured by temporal-config/native/native.yaml
 * from the environment variables the `temporalio/server` image takes, and the dynamic config file
 * compose mounts.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client as TemporalClient } from '@temporalio/client';
import { temporalHealthy } from '../../src/dev/temporal-server';
import { ROOT, spawnChild, type Child } from '../../test/support/spawn';
import type { RunDatabases } from './database';
import { freePorts } from './processes';
import { TEMPORAL_SERVER_VERSION, type Toolbox } from './tools';

const run = promisify(execFile);

/** The config folder (relative to the root, as `--config` takes it) and the file in it (`--env`). */
const CONFIG_DIR = 'temporal-config/native';
const CONFIG_ENV = 'native';
/** The dynamic config compose mounts into the server container. */
const DYNAMIC_CONFIG = 'temporal-config/dynamicconfig/development.yaml';

/**
 * The image's port variables, and one for the Prometheus endpoint (PROMETHEUS_ENDPOINT), each given
 * a free port: several runs can share the machine.
 */
const PORT_VARIABLES = [
  'FRONTEND_GRPC_PORT',
  'FRONTEND_HTTP_PORT',
  'FRONTEND_MEMBERSHIP_PORT',
  'HISTORY_GRPC_PORT',
  'HISTORY_MEMBERSHIP_PORT',
  'MATCHING_GRPC_PORT',
  'MATCHING_MEMBERSHIP_PORT',
  'WORKER_GRPC_PORT',
  'WORKER_MEMBERSHIP_PORT',
  'METRICS_PORT',
] as const;

/**
 * Where the server's ports are picked. Temporal's PostgreSQL schema keeps each service's membership
 * port in `cluster_membership.rpc_port`, a SMALLINT, so a port above 32767 stops the server at start
 * ("out of range for type smallint"); the system hands out ports from 32768 up, hence a range below.
 */
const PORT_RANGE: [number, number] = [20000, 32767];

/** A running server. */
export interface NativeTemporal {
  /** The frontend, `127.0.0.1:<port>` (TEMPORAL_ADDRESS). */
  address: string;
  /** Its Prometheus endpoint. */
  metricsUrl: string;
  child: Child;
}

/**
 * What compose gives the server container (the `x-temporal-db` block, BIND_ON_IP,
 * DYNAMIC_CONFIG_FILE_PATH), pointed at this run's databases and ports and bound to loopback.
 */
function serverEnvironment(db: RunDatabases, ports: Record<(typeof PORT_VARIABLES)[number], number>) {
  const { METRICS_PORT, ...rpcPorts } = ports;
  return {
    DB: 'postgres12',
    POSTGRES_SEEDS: db.server.host,
    DB_PORT: String(db.server.port),
    POSTGRES_USER: db.server.user,
    POSTGRES_PWD: db.server.password,
    DBNAME: db.temporal,
    VISIBILITY_DBNAME: db.visibility,
    BIND_ON_IP: '127.0.0.1',
    TEMPORAL_BROADCAST_ADDRESS: '127.0.0.1',
    DYNAMIC_CONFIG_FILE_PATH: path.join(ROOT, DYNAMIC_CONFIG),
    PROMETHEUS_ENDPOINT: `127.0.0.1:${METRICS_PORT}`,
    ...Object.fromEntries(Object.entries(rpcPorts).map(([name, port]) => [name, String(port)])),
  };
}

/**
 * Checks the dynamic config against the keys and types this server release knows
 * (`server validate-dynamic-config`): a misspelt key is otherwise ignored without a word.
 */
export async function validateDynamicConfig(toolbox: Toolbox): Promise<string> {
  const { stdout } = await run(toolbox.server, ['validate-dynamic-config', DYNAMIC_CONFIG], {
    cwd: ROOT,
  }).catch((err: { stdout?: string }) => {
    throw new Error(`${DYNAMIC_CONFIG} is not valid for the server: ${err.stdout?.trim() || String(err)}`);
  });
  const warnings = stdout.split('\n').filter((line) => line.includes('warning:'));
  if (warnings.length) throw new Error(`${DYNAMIC_CONFIG}: ${warnings.map((w) => w.trim()).join('; ')}`);
  return `every key known to server v${TEMPORAL_SERVER_VERSION}`;
}

/**
 * Renders the config (`server render-config`, into `<logDir>/temporal-config.yaml` for the record),
 * then starts the server and waits (up to `readyTimeoutMs`) until `temporal operator cluster health`
 * answers on its frontend.
 */
export async function startNativeTemporal(opts: {
  toolbox: Toolbox;
  db: RunDatabases;
  logDir: string;
  readyTimeoutMs: number;
  onStart?: (child: Child) => void;
}): Promise<NativeTemporal> {
  const values = await freePorts(PORT_VARIABLES.length, PORT_RANGE);
  const ports = Object.fromEntries(PORT_VARIABLES.map((name, i) => [name, values[i]!])) as Record<
    (typeof PORT_VARIABLES)[number],
    number
  >;
  const env = serverEnvironment(opts.db, ports);
  const configArgs = ['--root', ROOT, '--config', CONFIG_DIR, '--env', CONFIG_ENV];
  const rendered = await run(opts.toolbox.server, [...configArgs, 'render-config'], {
    cwd: ROOT,
    env: { PATH: process.env['PATH'] ?? '', ...env },
  });
  await writeFile(path.join(opts.logDir, 'temporal-config.yaml'), rendered.stdout);
  const address = `127.0.0.1:${ports.FRONTEND_GRPC_PORT}`;
  const logFile = path.join(opts.logDir, 'temporal.log');
  const child = await spawnChild({
    name: 'temporal',
    command: opts.toolbox.server,
    args: [...configArgs, 'start'],
    env,
    logFile,
    ready: () => temporalHealthy(opts.toolbox.cli, address),
    readyTimeoutMs: opts.readyTimeoutMs,
    readyEveryMs: 1000,
    onStart: opts.onStart,
  }).catch(async (err: unknown) => {
    const reason = lastFatal(await readFile(logFile, 'utf8').catch(() => ''));
    throw reason ? new Error(`${reason}\n${String(err)}`) : err;
  });
  return { address, metricsUrl: `http://127.0.0.1:${ports.METRICS_PORT}/metrics`, child };
}

/**
 * Asks the running server what it is: the pinned release, with PostgreSQL behind both its
 * persistence and its visibility (not a fallback), and its Prometheus endpoint answering.
 */
export async function checkServer(client: TemporalClient, temporal: NativeTemporal): Promise<string> {
  const info = await client.workflowService.getClusterInfo({});
  const facts = `server ${info.serverVersion}, persistence ${info.persistenceStore}, visibility ${info.visibilityStore}`;
  if (
    info.serverVersion !== TEMPORAL_SERVER_VERSION ||
    !info.persistenceStore.startsWith('postgres') ||
    !info.visibilityStore.startsWith('postgres')
  )
    throw new Error(`expected server ${TEMPORAL_SERVER_VERSION} on PostgreSQL: ${facts}`);
  const metrics = await fetch(temporal.metricsUrl, { signal: AbortSignal.timeout(10_000) });
  if (metrics.status !== 200) throw new Error(`${temporal.metricsUrl}: ${metrics.status}`);
  return `${facts}, metrics ${temporal.metricsUrl}`;
}

/** The message and error of the server's last `fatal` log line (its JSON logs), if any. */
function lastFatal(log: string): string | undefined {
  const line = log
    .split('\n')
    .reverse()
    .find((l) => l.includes('"level":"fatal"'));
  if (!line) return undefined;
  try {
    const entry = JSON.parse(line) as { msg?: string; error?: string };
    return `server: ${entry.msg}${entry.error ? `: ${entry.error}` : ''}`;
  } catch {
    return line.slice(0, 300);
  }
}
