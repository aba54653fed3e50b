/**
 * The run's three databases on the machine's PostgreSQL (the compose stack's `postgres` service):
 * Temporal's, Temporal's visibility and the platform's. Their names carry a random part, so runs side
 * by side and leftovers of a killed run never meet; `drop()` removes all three.
 */
import { randomBytes } from 'node:crypto';
import { dropDatabase, ensureDatabase } from '../../src/dev/postgres';

/** The server when DATABASE_URL is not set: a local PostgreSQL with trust authentication. */
const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/** Where PostgreSQL is, split the way the Temporal images take it (POSTGRES_SEEDS, DB_PORT…). */
export interface PostgresServer {
  adminUrl: string;
  host: string;
  port: number;
  user: string;
  /** Sent but not checked under trust authentication: the images require one. */
  password: string;
}

/** The run's database names and the platform's URL. */
export interface RunDatabases {
  server: PostgresServer;
  temporal: string;
  visibility: string;
  platform: string;
  /** The platform database's URL (DATABASE_URL of the API, the workers and the migration). */
  platformUrl: string;
  /** Creates the platform's database (the Temporal ones are temporal-config/setup-schema.sh's job, as in compose). */
  createPlatform(): Promise<void>;
  /** Drops the three (those that exist), connections and all. */
  drop(): Promise<void>;
}

/** The server from DATABASE_URL (any database on it), else the local default. */
export function postgresServer(): PostgresServer {
  const adminUrl = process.env['DATABASE_URL']?.trim() || DEFAULT_ADMIN_URL;
  const url = new URL(adminUrl);
  return {
    adminUrl,
    host: url.hostname || '127.0.0.1',
    port: Number(url.port || 5432),
    user: decodeURIComponent(url.username) || 'postgres',
    password: decodeURIComponent(url.password) || 'postgres',
  };
}

/**
 * Names the run's databases (`topo_<runId>_…`) without creating any: the caller can arrange the
 * drop before the first one exists.
 */
export function runDatabases(server: PostgresServer, runId: string): RunDatabases {
  const prefix = `topo_${runId}`;
  const names = {
    temporal: `${prefix}_temporal`,
    visibility: `${prefix}_temporal_visibility`,
    platform: `${prefix}_idp`,
  };
  const platformUrl = new URL(server.adminUrl);
  platformUrl.pathname = `/${names.platform}`;
  return {
    server,
    ...names,
    platformUrl: platformUrl.toString(),
    async createPlatform() {
      await ensureDatabase(server.adminUrl, names.platform);
    },
    async drop() {
      for (const name of Object.values(names)) await dropDatabase(server.adminUrl, name);
    },
  };
}

/** A random lower-case id for names (databases, folders). */
export function newRunId(): string {
  return randomBytes(4).toString('hex');
}
