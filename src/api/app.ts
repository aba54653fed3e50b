import Router from '@koa/router';
import Koa from 'koa';
import { authentication } from './auth';
import { errorHandler } from './errors';
import { correlation, metrics } from './middleware';
import { registerAuditRoutes } from './routes/audit.routes';
import { registerDeploymentRoutes } from './routes/deployments.routes';
import { registerEnvironmentRoutes } from './routes/environments.routes';
import { registerHealthRoutes } from './routes/health.routes';
import { registerJobRoutes } from './routes/jobs.routes';
import { registerPolicyRoutes } from './routes/policies.routes';
import { registerServiceRoutes } from './routes/services.routes';
import { registerTeamRoutes } from './routes/teams.routes';
import { registerTargetRoutes } from './routes/targets.routes';
import { registerReleaseRoutes } from './routes/releases.routes';
import { registerWebhookRoutes } from './routes/webhooks.routes';
import { registerEventRoutes } from './routes/events.routes';
import { temporalJobs } from '../temporal/jobs';
import { changeSettings, configureChanges } from '../db/changes';
import { eventNotices } from '../db/event-notices';
import type { ApiDeps, AppDeps, AppState } from './types';

/**
 * The Koa application: correlation id first, then the one error handler, metrics, authentication
 * and the routes (each parses its own params, checks the caller's roles, then reads its body).
 */
export function createApp(appDeps: AppDeps): Koa<AppState> {
  const deps: ApiDeps = { ...appDeps, jobs: temporalJobs(appDeps.temporal, appDeps.config, appDeps.logger) };
  configureChanges(changeSettings(appDeps.config));
  // Listen for changes other processes announce (policies, events) from the start.
  void eventNotices(String(appDeps.orm.config.get('clientUrl'))).start();
  const app = new Koa<AppState>();
  app.proxy = false;
  const router = new Router<AppState>({ prefix: '/api' });
  registerHealthRoutes(router, deps);
  registerTeamRoutes(router, deps);
  registerServiceRoutes(router, deps);
  registerTargetRoutes(router, deps);
  registerEnvironmentRoutes(router, deps);
  registerDeploymentRoutes(router, deps);
  registerReleaseRoutes(router, deps);
  registerJobRoutes(router, deps);
  registerPolicyRoutes(router, deps);
  registerAuditRoutes(router, deps);
  registerWebhookRoutes(router, deps);
  registerEventRoutes(router, deps);

  app.use(correlation(deps.logger));
  app.use(errorHandler);
  app.use(metrics);
  // Authentication before the body, which the route layer reads only once the caller is known to
  // be admitted: a caller without a valid token, or without a role the route admits, never makes us
  // buffer or parse a body. A body left unread is drained by Node after the answer is written,
  // discarded chunk by chunk, so the keep-alive connection stays usable.
  app.use(authentication(deps.config));
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
