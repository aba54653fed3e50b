import { existsSync } from 'node:fs';
import path from 'node:path';
import type { MikroORM } from '@mikro-orm/postgresql';
import { NativeConnection, Worker, type ActivityInboundCallsInterceptor } from '@temporalio/worker';
import { defaultPayloadConverter } from '@temporalio/common';
import type { Logger } from 'pino';
import { publicUrl, type Config } from '../config';
import { encryptionKey } from '../security/secret-box';
import { createActivities } from '../activities';
import { activityCorrelation } from '../activities/correlation';
import { SimulatedDriver } from '../activities/drivers/simulated.driver';
import type { Driver } from '../activities/drivers/driver';
import { CORRELATION_HEADER, notificationsQueue } from '../workflows/contract';
import { connectionOptions } from '../temporal/connection';
import { changeSettings, configureChanges } from '../db/changes';
import { eventNotices } from '../db/event-notices';

/** Reads the correlation header the workflow copied onto the activity and runs the activity under it. */
const correlationInterceptor = (): { inbound: ActivityInboundCallsInterceptor } => ({
  inbound: {
    async execute(input, next) {
      const payload = input.headers[CORRELATION_HEADER];
      const id = payload ? defaultPayloadConverter.fromPayload<string>(payload) : undefined;
      return id === undefined ? next(input) : activityCorrelation.run(id, () => next(input));
    },
  },
});

/** The prebuilt workflow bundle (`npm run build` writes it), when this code runs from `dist`. */
export function prebuiltBundlePath(): string | undefined {
  const candidate = path.resolve(__dirname, '../../workflow-bundle.js');
  return __filename.endsWith('.js') && existsSync(candidate) ? candidate : undefined;
}

export interface WorkerDeps {
  config: Config;
  orm: MikroORM;
  logger: Logger;
  connection?: NativeConnection;
  driver?: Driver;
  taskQueue?: string;
  /** Workflow code bundled beforehand (tests bundle once per file; images at build time). */
  workflowBundle?: { code: string } | { codePath: string };
}

/**
 * The platform's workers in one process, run and stopped together: the main task queue (provisioning,
 * deployments, releases) and the notifications queue (event deliveries, whose long activities must
 * never take the slots a deployment's activities need).
 */
export interface PlatformWorker {
  run(): Promise<void>;
  shutdown(): void;
  getState(): ReturnType<Worker['getState']>;
}

/** Creates the workers of the platform's workflows and activities on the configured task queues. */
export async function createWorker(deps: WorkerDeps): Promise<PlatformWorker> {
  const { config, orm, logger } = deps;
  const connection = deps.connection ?? (await NativeConnection.connect(connectionOptions(config)));
  const driver = deps.driver ?? new SimulatedDriver(config.SIMULATED_DELAY_MS);
  configureChanges(changeSettings(config));
  // Policies changed by an API process reach this one's cache through its NOTIFY.
  void eventNotices(String(orm.config.get('clientUrl'))).start();
  const bundlePath = prebuiltBundlePath();
  const workflowSource = deps.workflowBundle
    ? { workflowBundle: deps.workflowBundle }
    : bundlePath
      ? { workflowBundle: { codePath: bundlePath } }
      : { workflowsPath: require.resolve('../workflows') };
  const activities = createActivities({
    orm,
    logger: logger.child({ component: 'activity' }),
    driver,
    delivery: {
      publicUrl: publicUrl(config),
      commandsDir: config.DRIVER_COMMANDS_DIR,
      encryptionKey: config.IDP_ENCRYPTION_KEY ? encryptionKey(config.IDP_ENCRYPTION_KEY) : null,
    },
  });
  const queue = deps.taskQueue ?? config.TEMPORAL_TASK_QUEUE;
  const options = {
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    ...workflowSource,
    activities,
    interceptors: {
      workflowModules:
        deps.workflowBundle || bundlePath ? [] : [require.resolve('../workflows/interceptors')],
      activity: [correlationInterceptor],
    },
    shutdownGraceTime: config.WORKER_SHUTDOWN_GRACE_MS,
  };
  const main = await Worker.create({
    ...options,
    taskQueue: queue,
    maxCachedWorkflows: config.WORKER_MAX_CACHED_WORKFLOWS,
  });
  // One run per subscription: a small cache is plenty, and leaves the memory to the deployments.
  const notifications = await Worker.create({
    ...options,
    taskQueue: notificationsQueue(queue),
    maxCachedWorkflows: 50,
  });
  return {
    async run() {
      // One stopping (a fatal error, or the runtime's signal handling) stops the other.
      const stopBoth = () => {
        for (const w of [main, notifications]) if (w.getState() === 'RUNNING') w.shutdown();
      };
      await Promise.all([main.run().finally(stopBoth), notifications.run().finally(stopBoth)]);
    },
    shutdown() {
      for (const w of [main, notifications]) if (w.getState() === 'RUNNING') w.shutdown();
    },
    getState: () => main.getState(),
  };
}

/** Bundler options shared by tests and the image build: the interceptors module rides along. */
export const WORKFLOW_BUNDLE_OPTIONS = {
  workflowsPath: require.resolve('../workflows'),
  workflowInterceptorModules: [require.resolve('../workflows/interceptors')],
};
