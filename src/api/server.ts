import type { Server } from 'node:http';
import type { MikroORM } from '@mikro-orm/postgresql';
import type { Client } from '@temporalio/client';
import type { Logger } from 'pino';
import type { Config } from '../config';
import { currentCorrelationId } from './request-context';
import { createTemporalClient } from '../temporal/connection';
import { createApp } from './app';
import { startReconciler } from '../services/reconciler';
import { temporalJobs } from '../temporal/jobs';

/** A listening API and how to stop it gracefully. */
export interface RunningApi {
  server: Server;
  url: string;
  temporal: Client;
  /** Stops taking connections and waits (up to `graceMs`) for requests in flight. */
  close(graceMs?: number): Promise<void>;
}

/** Connects to Temporal and serves the API on `config.HOST:config.PORT`. */
export async function startApi(config: Config, orm: MikroORM, logger: Logger): Promise<RunningApi> {
  const temporal = await createTemporalClient(config, currentCorrelationId);
  const app = createApp({ config, orm, temporal, logger });
  // Rows whose run an API process that died mid-request never started get it started here.
  const stopReconciler = startReconciler(
    { config, orm, jobs: temporalJobs(temporal, config, logger) },
    logger.child({ component: 'reconciler' }),
  );
  const server = await new Promise<Server>((resolve) => {
    const s = app.listen(config.PORT, config.HOST, () => resolve(s));
  });
  server.keepAliveTimeout = 5000;
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.PORT;
  return {
    server,
    url: `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${port}`,
    temporal,
    close: (graceMs = 10_000) =>
      new Promise<void>((resolve) => {
        // close() stops accepting and resolves when in-flight requests finish; idle keep-alive
        // sockets are closed at once, busy ones after the grace period.
        stopReconciler();
        const timer = setTimeout(() => server.closeAllConnections(), graceMs);
        timer.unref();
        server.close(() => {
          clearTimeout(timer);
          void temporal.connection.close().finally(resolve);
        });
        server.closeIdleConnections();
      }),
  };
}
