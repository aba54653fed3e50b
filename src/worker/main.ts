/** Production entry point of the worker: `npm run start:worker`. */
import { createServer } from 'node:http';
import { loadConfig, requireEncryptionKey, requireExternalServices } from '../config';
import { initORM } from '../db/orm';
import { createLogger } from '../logger';
import { registry } from '../metrics';
import { installRuntime } from './runtime';
import { createWorker } from './worker';
import { exitOnStartFailure } from '../fatal';

async function main(): Promise<void> {
  const config = loadConfig();
  requireExternalServices(config);
  requireEncryptionKey(config);
  const logger = createLogger(config.LOG_LEVEL, { component: 'worker' });
  installRuntime(config, logger);
  const orm = await initORM(config.DATABASE_URL!);
  if (config.WORKER_METRICS_PORT !== undefined) {
    createServer((_req, res) => {
      void registry.metrics().then((text) => {
        res.writeHead(200, { 'Content-Type': registry.contentType });
        res.end(text);
      });
    }).listen(config.WORKER_METRICS_PORT, config.HOST);
  }
  const worker = await createWorker({ config, orm, logger });
  logger.info(
    { task_queue: config.TEMPORAL_TASK_QUEUE, namespace: config.TEMPORAL_NAMESPACE },
    'worker started',
  );
  // The runtime turns SIGTERM/SIGINT into worker.shutdown(): polling stops, running activities get
  // shutdownGraceTime to finish, then run() resolves.
  await worker.run();
  await orm.close();
  logger.info('worker stopped');
  // The runtime forwards the native core's logs through a timer of its own that keeps the event loop
  // alive after the worker is done: end the process explicitly, as the API's entry point does.
  process.exit(0);
}

main().catch(exitOnStartFailure);
