import type Router from '@koa/router';
import { registry } from '../../metrics';
import { docsPage, openApiDocument } from '../openapi';
import { route, type Ctx } from '../route';
import type { AppDeps, AppState } from '../types';

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([
    p,
    new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref()),
  ]);

/** Checks each dependency; `ok` or `unavailable`. */
export async function dependencyChecks(
  deps: AppDeps,
): Promise<Record<'database' | 'temporal', 'ok' | 'unavailable'>> {
  const [database, temporal] = await Promise.all([
    withTimeout(deps.orm.em.getConnection().execute('select 1'), 3000).then(
      () => 'ok' as const,
      () => 'unavailable' as const,
    ),
    deps.temporal.connection
      .withDeadline(Date.now() + 3000, () => deps.temporal.workflowService.getSystemInfo({}))
      .then(
        () => 'ok' as const,
        () => 'unavailable' as const,
      ),
  ]);
  return { database, temporal };
}

/** Health (liveness and readiness), metrics and the API's own documentation: public, no token. */
export function registerHealthRoutes(router: Router<AppState>, deps: AppDeps): void {
  const ready = async (ctx: Ctx): Promise<void> => {
    const checks = await dependencyChecks(deps);
    const failing = Object.entries(checks)
      .filter(([, v]) => v !== 'ok')
      .map(([k]) => k);
    ctx.status = failing.length ? 503 : 200;
    ctx.body = failing.length ? { status: 'unavailable', checks, failing } : { status: 'ok', checks };
  };
  const checked = { 200: 'every dependency answers', 503: 'names the failing check(s)' };
  const routes: [string, string, Record<number, string>, (ctx: Ctx) => Promise<void>][] = [
    ['/health', 'Health of the API and its dependencies', checked, ready],
    ['/health/ready', 'Readiness: may this instance take traffic?', checked, ready],
    [
      '/health/live',
      'Liveness: is the process serving?',
      { 200: 'alive' },
      async (ctx) => {
        ctx.body = { status: 'ok' };
      },
    ],
    [
      '/metrics',
      'Prometheus metrics',
      { 200: 'text exposition format' },
      async (ctx) => {
        ctx.type = registry.contentType;
        ctx.body = await registry.metrics();
      },
    ],
    [
      '/openapi.json',
      'This OpenAPI document',
      { 200: 'OpenAPI 3.1' },
      async (ctx) => {
        ctx.body = openApiDocument();
      },
    ],
    [
      '/docs',
      'Browsable API documentation',
      { 200: 'HTML' },
      async (ctx) => {
        ctx.type = 'text/html';
        ctx.body = docsPage(openApiDocument());
      },
    ],
  ];
  for (const [path, summary, responses, handler] of routes) {
    route(router, deps, { method: 'get', path, tag: 'operations', summary, auth: false, responses }, handler);
  }
}
