import Router from '@koa/router';
import Koa from 'koa';
import { authentication } from './auth';
import { errorHandler } from './errors';
import { correlation, jsonBody, metrics } from './middleware';
import { registerAuditRoutes } from './routes/audit.routes';
import { registerDeploymentRoutes } from './routes/deployments.routes';
import { registerEnvironmentRoutes } from './routes/environments.routes';
import { registerHealthRoutes } from './routes/health.routes';
import { registerJobRoutes } from './routes/jobs.routes';
import { registerPolicyRoutes } from './routes/policies.routes';
import { registerServiceRoutes } from './routes/services.routes';
import { registerTeamRoutes } from './routes/teams.routes';
import type { AppDeps, AppState } from './types';

/**
 * The Koa application: correlation id first, then the one error handler, metrics, the JSON body
 * parser, authentication and the routes.
 */
export function createApp(deps: AppDeps): Koa<AppState> {
  const app = new Koa<AppState>();
  app.proxy = false;
  const router = new Router<AppState>({ prefix: '/api' });
  registerHealthRoutes(router, deps);
  registerTeamRoutes(router, deps);
  registerServiceRoutes(router, deps);
  registerEnvironmentRoutes(router, deps);
  registerDeploymentRoutes(router, deps);
  registerJobRoutes(router, deps);
  registerPolicyRoutes(router, deps);
  registerAuditRoutes(router, deps);

  app.use(correlation(deps.logger));
  app.use(errorHandler);
  app.use(metrics);
  app.use(jsonBody);
  app.use(authentication(deps.config));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
