import type Router from '@koa/router';
import { registry } from '../../metrics';
import { docsPage, openApiDocument } from '../openapi';
import { route, type Ctx } from '../route';
import type { AppDeps, AppState } from '../types';

const withTimeout = <T>(p: Promise<T>, ms: number): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error('timeout')), ms).unref())]);

/** Checks each dependency; `ok` or `unavailable`. */
export async function dependencyChecks(deps: AppDeps): Promise<Record<'database' | 'temporal', 'ok' | 'unavailable'>> {
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

/** Health (liveness and readiness), metrics and the API's own documentation. */
export function registerHealthRoutes(router: Router<AppState>, deps: AppDeps): void {
  const ready = async (ctx: Ctx): Promise<void> => {
    const checks = await dependencyChecks(deps);
    const failing = Object.entries(checks).filter(([, v]) => v !== 'ok').map(([k]) => k);
    ctx.status = failing.length ? 503 : 200;
    ctx.body = failing.length ? { status: 'unavailable', checks, failing } : { status: 'ok', checks };
  };
  const responses = { 200: 'every dependency answers', 503: 'names the failing check(s)' };
  route(router, deps, { method: 'get', path: '/health', tag: 'operations', summary: 'Health of the API and its dependencies', auth: false, responses }, ready);
  route(router, deps, { method: 'get', path: '/health/ready', tag: 'operations', summary: 'Readiness: may this instance take traffic?', auth: false, responses }, ready);
  route(
    router,
    deps,
    { method: 'get', path: '/health/live', tag: 'operations', summary: 'Liveness: is the process serving?', auth: false, responses: { 200: 'alive' } },
    async (ctx) => {
      ctx.body = { status: 'ok' };
    },
  );
  route(
    router,
    deps,
    { method: 'get', path: '/metrics', tag: 'operations', summary: 'Prometheus metrics', auth: false, responses: { 200: 'text exposition format' } },
    async (ctx) => {
      ctx.type = registry.contentType;
      ctx.body = await registry.metrics();
    },
  );
  route(
    router,
    deps,
    { method: 'get', path: '/openapi.json', tag: 'operations', summary: 'This OpenAPI document', auth: false, responses: { 200: 'OpenAPI 3.1' } },
    async (ctx) => {
      ctx.body = openApiDocument();
    },
  );
  route(
    router,
    deps,
    { method: 'get', path: '/docs', tag: 'operations', summary: 'Browsable API documentation', auth: false, responses: { 200: 'HTML' } },
    async (ctx) => {
      ctx.type = 'text/html';
      ctx.body = docsPage(openApiDocument());
    },
  );
}
