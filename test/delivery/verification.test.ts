/**
 * Verification after a rollout against a real HTTP endpoint in this process: `verifying` holds the
 * environment's lock, probes every interval for the duration, fails naming the URL and its answer.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AuditLog } from '../../src/domain/entities';
import {
  admin,
  auth,
  createService,
  readyEnvironment,
  triggerDeployment,
  waitForStatus,
} from '../support/fixtures';
import { startStack, type TestStack } from '../support/stack';

let stack: TestStack;
let health: Server;
let base: string;
/** Per path, the statuses it answers in turn (the last one repeats) and how often it was probed. */
const endpoints = new Map<string, { script: number[]; probes: number }>();

/** A health endpoint of its own answering `script`, and its probe count. */
function endpoint(script: number[]) {
  const path = `/healthz/${endpoints.size + 1}`;
  const state = { script, probes: 0 };
  endpoints.set(path, state);
  return { url: `${base}${path}`, probes: () => state.probes };
}

beforeAll(async () => {
  stack = await startStack({ worker: true });
  health = createServer((req, res) => {
    const state = endpoints.get(req.url ?? '');
    const status = state ? state.script[Math.min(state.probes, state.script.length - 1)]! : 404;
    if (state) state.probes += 1;
    res.writeHead(status).end(status === 200 ? 'ok' : 'unhealthy');
  });
  await new Promise<void>((resolve) => health.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(health.address() as AddressInfo).port}`;
});
afterAll(async () => {
  health.closeAllConnections();
  await new Promise((r) => health.close(r));
  await stack.close();
});

/** A ready dev environment that verifies `url` every second for `duration`. */
async function verifiedEnv(url: string, verification: Record<string, unknown>) {
  const service = await createService(stack);
  const env = await readyEnvironment(stack, service.id, 'dev');
  const res = await stack.http
    .patch(`/api/services/${service.id}/environments/${env.id}`)
    .set(auth(admin))
    .send({ verification: { http: { url }, interval: '1s', ...verification } });
  expect(res.status).toBe(200);
  expect(res.body.verification.http.url).toBe(url);
  return { service, env };
}

describe('verification after rollout', () => {
  it('succeeds when every probe answers 200, holding the lock while verifying', async () => {
    const { url, probes } = endpoint([200]);
    const { service, env } = await verifiedEnv(url, { duration: '3s' });
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '1.0.0' });
    await waitForStatus(stack, dep.id, 'verifying', 20_000, 50);
    const second = await stack.http
      .post(`/api/services/${service.id}/environments/${env.id}/deployments`)
      .set(auth(admin))
      .send({ version: '1.0.1' });
    expect(second.status).toBe(409);
    expect(second.body.detail).toContain(dep.job_id);
    expect(second.body.detail).toContain('verifying');
    const done = await waitForStatus(stack, dep.id, 'succeeded', 20_000);
    expect(done.timeline.map((t: { status: string }) => t.status)).toEqual([
      'pending',
      'in_progress',
      'verifying',
      'succeeded',
    ]);
    expect(probes()).toBe(3);
    expect(done.timeline.at(-1).detail).toBe(`verified: 3 of 3 probes of ${url} passed`);
    expect((await stack.http.get('/api/metrics')).text).toMatch(
      /idp_verifications_total\{outcome="passed"\} [1-9]/,
    );
    const entries = await stack.orm.em
      .fork()
      .find(AuditLog, { targetType: 'deployment', targetId: String(dep.id) }, { orderBy: { id: 'asc' } });
    expect(entries.map((e) => e.action)).toEqual([
      'deployment.create',
      'deployment.in_progress',
      'deployment.verifying',
      'deployment.succeeded',
    ]);
  });

  it('fails when the URL answers 500, naming the URL and the status', async () => {
    const { url, probes } = endpoint([500]);
    const { service, env } = await verifiedEnv(url, { duration: '3s' });
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '2.0.0' });
    const failed = await waitForStatus(stack, dep.id, 'failed', 20_000);
    expect(failed.error).toBe(`verification failed: GET ${url} answered 500 (expected 200)`);
    // Failed at the first bad probe: none allowed.
    expect(probes()).toBe(1);
    // The lock is free again.
    const next = await triggerDeployment(stack, service.id, env.id, { version: '2.0.1' });
    expect(next.status).toBe('pending');
  });

  it('tolerates failures_allowed bad probes', async () => {
    const { url } = endpoint([503, 200]);
    const { service, env } = await verifiedEnv(url, { duration: '3s', failures_allowed: 1 });
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '3.0.0' });
    const done = await waitForStatus(stack, dep.id, 'succeeded', 20_000);
    expect(done.timeline.at(-1).detail).toBe(`verified: 2 of 3 probes of ${url} passed`);
  });

  it('fails on a connection error, naming it', async () => {
    // A port that was free a moment ago: nothing listens there.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const down = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/down`;
    await new Promise((r) => closed.close(r));
    const { service, env } = await verifiedEnv(down, { duration: '2s' });
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '4.0.0' });
    const failed = await waitForStatus(stack, dep.id, 'failed', 20_000);
    expect(failed.error).toBe(`verification failed: GET ${down} failed: ECONNREFUSED`);
  });

  it.each([
    ['a non-http URL', { http: { url: 'gopher://x' } }, 'body.verification.http.url'],
    [
      'a duration below a second',
      { http: { url: 'https://x.example' }, interval: '10ms' },
      'body.verification.interval',
    ],
    ['an unknown key', { http: { url: 'https://x.example' }, retries: 2 }, 'body.verification'],
  ])('refuses %s with 400 naming the field', async (_what, verification, field) => {
    const service = await createService(stack);
    const env = await stack.http
      .post(`/api/services/${service.id}/environments`)
      .set(auth(admin))
      .send({ name: 'dev', tier: 'dev' });
    const res = await stack.http
      .patch(`/api/services/${service.id}/environments/${env.body.id}`)
      .set(auth(admin))
      .send({ verification });
    expect(res.status).toBe(400);
    expect(res.body.violations.map((v: { field: string }) => v.field)).toContain(field);
    const read = await stack.http
      .get(`/api/services/${service.id}/environments/${env.body.id}`)
      .set(auth(admin));
    expect(read.body.verification).toBeNull();
  });
});
