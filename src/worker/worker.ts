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
import { CORRELATION_HEADER } from '../workflows/contract';
import { connectionOptions } from '../temporal/connection';
import { changeSettings, configureChanges } from '../db/changes';

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

/** Creates a worker that runs the platform's workflows and activities on the configured task queue. */
export async function createWorker(deps: WorkerDeps): Promise<Worker> {
  const { config, orm, logger } = deps;
  const connection = deps.connection ?? (await NativeConnection.connect(connectionOptions(config)));
  const driver = deps.driver ?? new SimulatedDriver(config.SIMULATED_DELAY_MS);
  configureChanges(changeSettings(config));
  const bundlePath = prebuiltBundlePath();
  const workflowSource = deps.workflowBundle
    ? { workflowBundle: deps.workflowBundle }
    : bundlePath
      ? { workflowBundle: { codePath: bundlePath } }
      : { workflowsPath: require.resolve('../workflows') };
  return Worker.create({
    connection,
    namespace: config.TEMPORAL_NAMESPACE,
    taskQueue: deps.taskQueue ?? config.TEMPORAL_TASK_QUEUE,
    ...workflowSource,
    activities: createActivities({
      orm,
      logger: logger.child({ component: 'activity' }),
      driver,
      delivery: {
        publicUrl: publicUrl(config),
        commandsDir: config.DRIVER_COMMANDS_DIR,
        encryptionKey: config.IDP_ENCRYPTION_KEY ? encryptionKey(config.IDP_ENCRYPTION_KEY) : null,
      },
    }),
    interceptors: {
      workflowModules:
        deps.workflowBundle || bundlePath ? [] : [require.resolve('../workflows/interceptors')],
      activity: [correlationInterceptor],
    },
    shutdownGraceTime: config.WORKER_SHUTDOWN_GRACE_MS,
  });
}

/** Bundler options shared by tests and the image build: the interceptors module rides along. */
export const WORKFLOW_BUNDLE_OPTIONS = {
  workflowsPath: require.resolve('../workflows'),
  workflowInterceptorModules: [require.resolve('../workflows/interceptors')],
};
