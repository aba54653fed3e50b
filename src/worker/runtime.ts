import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { Config } from '../config';

/**
 * Installs the Temporal runtime once per process, before any connection: the SDK's own logs go to
 * pino, and its metrics (task latencies, poll counts…) to a Prometheus endpoint when
 * `TEMPORAL_METRICS_BIND` is set.
 */
export function installRuntime(config: Config, logger: Logger, opts: { handleSignals?: boolean } = {}): void {
  const sdkLog = logger.child({ component: 'temporal-sdk' });
  Runtime.install({
    // The SDK's own handler shuts workers down on SIGINT/SIGTERM and then re-raises the signal; a
    // process with more to stop (the dev runner) handles signals itself instead.
    ...(opts.handleSignals === false ? { shutdownSignals: [] } : {}),
    logger: new DefaultLogger('WARN' as LogLevel, (entry) => {
      const level = entry.level === 'ERROR' ? 'error' : entry.level === 'WARN' ? 'warn' : 'info';
      sdkLog[level]({ ...entry.meta }, entry.message);
    }),
    ...(config.TEMPORAL_METRICS_BIND
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: config.TEMPORAL_METRICS_BIND } } } }
      : {}),
  });
}
