/** Production entry point of the API: `npm run start:api`. */
import { loadConfig, requireAuthConfig, requireEncryptionKey, requireExternalServices } from '../config';
import { initORM } from '../db/orm';
import { createLogger } from '../logger';
import { startApi } from './server';
import { exitOnStartFailure } from '../fatal';

async function main(): Promise<void> {
  const config = loadConfig();
  requireAuthConfig(config);
  requireExternalServices(config);
  requireEncryptionKey(config);
  const logger = createLogger(config.LOG_LEVEL, { component: 'api' });
  const orm = await initORM(config.DATABASE_URL!);
  const api = await startApi(config, orm, logger);
  logger.info({ url: api.url }, 'API listening');
  const stop = (signal: string): void => {
    logger.info({ signal }, 'stopping: finishing requests in flight');
    void api
      .close()
      .then(() => orm.close())
      .then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

main().catch(exitOnStartFailure);
