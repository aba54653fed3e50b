import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';
import type { Logger } from 'pino';
import type { Config } from '../config';

/**
 * The SDK's logger, writing to pino under `component: temporal-sdk`. The SDK's metadata goes under
 * `sdk`: its keys are the SDK's (and core's) choice, so spread at the top they could repeat one of
 * pino's or ours (`time`, `level`, `component`…) and write that key twice.
 */
export function sdkLogger(logger: Logger): DefaultLogger {
  const sdkLog = logger.child({ component: 'temporal-sdk' });
  return new DefaultLogger('WARN' as LogLevel, (entry) => {
    const level = entry.level === 'ERROR' ? 'error' : entry.level === 'WARN' ? 'warn' : 'info';
    sdkLog[level](entry.meta === undefined ? {} : { sdk: entry.meta }, entry.message);
  });
}

/**
 * Installs the Temporal runtime once per process, before any connection: the SDK's own logs and
 * its native core's go to pino, and its metrics (task latencies, poll counts…) to a Prometheus endpoint when
 * `TEMPORAL_METRICS_BIND` is set.
 */
export function installRuntime(config: Config, logger: Logger, opts: { handleSignals?: boolean } = {}): void {
  Runtime.install({
    // The SDK's own handler shuts workers down on SIGINT/SIGTERM and then re-raises the signal; a
    // process with more to stop (the dev runner) handles signals itself instead.
    ...(opts.handleSignals === false ? { shutdownSignals: [] } : {}),
    logger: sdkLogger(logger),
    telemetryOptions: {
      // The native core's lines (a refused workflow task, a lost poller…) through the same logger:
      // without `forward` core prints them to the console as plain text, outside the JSON log.
      logging: { filter: { core: 'WARN', other: 'ERROR' }, forward: {} },
      ...(config.TEMPORAL_METRICS_BIND
        ? { metrics: { prometheus: { bindAddress: config.TEMPORAL_METRICS_BIND } } }
        : {}),
    },
  });
}
