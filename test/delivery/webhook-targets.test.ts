/**
 * Webhook targets against a real receiver (an HTTP server in this process that verifies every
 * signature with the `standardwebhooks` package and calls back as a user's system would), through
 * the API, a real worker, the Temporal dev server and PostgreSQL.
 */
import { AuditLog, CallbackReceipt, Deployment, Target } from '../../src/domain/entities';
import {
  admin,
  auth,
  createService,
  createTarget,
  provisionOn,
  triggerDeployment,
  waitForEnvironment,
  waitForStatus,
} from '../support/fixtures';
import { callBack, startReceiver, type Receiver } from '../support/receiver';
import { eventually, startStack, tokenFor, uniq, type TestStack } from '../support/stack';

let stack: TestStack;
const receivers: Receiver[] = [];
beforeAll(async () => {
  stack = await startStack({ worker: true });
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await stack.close();
});

/** A receiver and a webhook target pointing at it; provisioning is answered at once (synchronous completion). */
async function hook(config: Record<string, unknown> = {}) {
  const receiver = await startReceiver();
  receivers.push(receiver);
  const target = await createTarget(stack, 'webhook', { url: receiver.url, ...config });
  receiver.secret = target.signing_secret;
  receiver.answer = (req) =>
    req.body['type'] === 'environment.provision'
      ? { status: 200, body: { status: 'succeeded', external_url: 'https://console.example.com/env' } }
      : { status: 202, body: { accepted: true } };
  return { receiver, target };
}

/** A service with a ready dev environment on a new webhook target. */
async function hookedEnv(config: Record<string, unknown> = {}) {
  const { receiver, target } = await hook(config);
  const service = await createService(stack);
  const env = await provisionOn(stack, service.id, target.name);
  await waitForEnvironment(stack, service.id, env.id);
  return { receiver, target, service, env };
}

const audits = (deploymentId: number) =>
  stack.orm.em
    .fork()
    .find(AuditLog, { targetType: 'deployment', targetId: String(deploymentId) }, { orderBy: { id: 'asc' } });

describe('targets as data', () => {
  it('creates a webhook target whose secret is shown once, in Standard Webhooks format, and kept sealed', async () => {
    const name = uniq('hooks');
    const res = await stack.http
      .post('/api/targets')
      .set(auth(admin))
      .send({ name, kind: 'webhook', config: { url: 'https://ci.example.com/hook', timeout: '30m' } });
    expect(res.status).toBe(201);
    expect(res.body).toMatchObject({ name, kind: 'webhook', config: { url: 'https://ci.example.com/hook' } });
    expect(res.body.signing_secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const read = await stack.http.get(`/api/targets/${name}`).set(auth(admin));
    expect(read.status).toBe(200);
    expect(read.body.signing_secret).toBeUndefined();
    expect(JSON.stringify(read.body)).not.toContain(res.body.signing_secret.slice(6));
    const list = await stack.http.get('/api/targets?limit=200').set(auth(tokenFor('dev', ['DEVELOPER'])));
    expect(list.body.items.map((t: { name: string }) => t.name)).toEqual(
      expect.arrayContaining(['simulated', name]),
    );
    const row = await stack.orm.em.fork().findOneOrFail(Target, { name });
    expect(row.secret).toMatch(/^v1\./);
    expect(row.secret).not.toContain(res.body.signing_secret.slice(6, 20));
    const entries = await stack.orm.em.fork().find(AuditLog, { targetType: 'target', targetId: name });
    expect(entries.map((e) => e.action)).toEqual(['target.create']);
    expect(JSON.stringify(entries)).not.toContain(res.body.signing_secret.slice(6, 20));
  });

  it.each([
    ['an unknown kind', { kind: 'ftp', config: {} }, 'body.kind'],
    ['a command with a slash', { kind: 'command', config: { command: '../bin/sh' } }, 'body.config.command'],
    ['a command with ..', { kind: 'command', config: { command: 'deploy..sh' } }, 'body.config.command'],
    ['a non-http URL', { kind: 'webhook', config: { url: 'ftp://example.com/x' } }, 'body.config.url'],
    ['a file URL', { kind: 'webhook', config: { url: 'file:///etc/passwd' } }, 'body.config.url'],
    [
      'an unknown config key',
      { kind: 'webhook', config: { url: 'https://x.example', retries: 3 } },
      'body.config',
    ],
    ['a restricted key in config', { kind: 'simulated', config: { api_token: 'x' } }, 'config.api_token'],
    ['a bad name', { name: 'Hooks!', kind: 'simulated', config: {} }, 'body.name'],
  ])('refuses %s with 400 naming the field, creating nothing', async (_what, body, field) => {
    const name = uniq('bad');
    const before = await stack.orm.em.fork().count(Target, {});
    const res = await stack.http
      .post('/api/targets')
      .set(auth(admin))
      .send({ name, ...body });
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toContain('application/problem+json');
    expect(res.body.violations.map((v: { field: string }) => v.field)).toContain(field);
    expect(await stack.orm.em.fork().count(Target, {})).toBe(before);
  });

  it('is for PLATFORM_ADMIN only (403, audited), and a taken name is 409', async () => {
    const name = uniq('mine');
    const res = await stack.http
      .post('/api/targets')
      .set(auth(tokenFor('team', ['TEAM_ADMIN'], ['t1'])))
      .send({ name, kind: 'simulated', config: {} });
    expect(res.status).toBe(403);
    expect(
      await stack.orm.em.fork().count(AuditLog, { action: 'target.create', outcome: 'denied' }),
    ).toBeGreaterThan(0);
    await createTarget(stack, 'simulated', {}, name);
    const again = await stack.http
      .post('/api/targets')
      .set(auth(admin))
      .send({ name, kind: 'simulated', config: {} });
    expect(again.status).toBe(409);
  });

  it('refuses an environment on an unknown target with 400 naming body.target, and creates nothing', async () => {
    const service = await createService(stack);
    const res = await stack.http
      .post(`/api/services/${service.id}/environments`)
      .set(auth(admin))
      .send({ name: 'dev', tier: 'dev', target: 'no-such-target' });
    expect(res.status).toBe(400);
    expect(res.body.violations[0].field).toBe('body.target');
    const list = await stack.http.get(`/api/services/${service.id}/environments`).set(auth(admin));
    expect(list.body.items).toEqual([]);
  });

  it('PATCHes an environment onto another target and back (200, audited); an unknown one is 400', async () => {
    const { target } = await hook();
    const service = await createService(stack);
    const env = await stack.http
      .post(`/api/services/${service.id}/environments`)
      .set(auth(admin))
      .send({ name: 'dev', tier: 'dev' });
    expect(env.body.target).toBe('simulated');
    const url = `/api/services/${service.id}/environments/${env.body.id}`;
    const moved = await stack.http.patch(url).set(auth(admin)).send({ target: target.name });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ target: target.name, external_url: null, verification: null });
    const bad = await stack.http.patch(url).set(auth(admin)).send({ target: 'nope' });
    expect(bad.status).toBe(400);
    expect(bad.body.violations[0].field).toBe('body.target');
    expect((await stack.http.get(url).set(auth(admin))).body.target).toBe(target.name);
    const entries = await stack.orm.em
      .fork()
      .find(AuditLog, { action: 'environment.update', targetId: String(env.body.id) });
    expect(entries).toHaveLength(1);
  });
});

describe('provisioning and deploying through a webhook target', () => {
  it('provisions (synchronous completion), deploys, hears in_progress and succeeded callbacks, keeps external_url', async () => {
    const { receiver, target, service, env } = await hookedEnv();
    const provision = await receiver.waitFor('environment.provision');
    expect(provision.verified).toBe(true);
    expect(provision.headers['webhook-id']).toBe(`${env.job_id}:provision`);
    const readyEnv = await stack.http
      .get(`/api/services/${service.id}/environments/${env.id}`)
      .set(auth(admin));
    expect(readyEnv.body).toMatchObject({ status: 'ready', external_url: 'https://console.example.com/env' });

    const dep = await triggerDeployment(stack, service.id, env.id, { version: '1.2.3' });
    expect(dep.target).toBe(target.name);
    const req = await receiver.waitFor('deployment.deploy');
    expect(req.verified).toBe(true);
    expect(req.headers['webhook-id']).toBe(`${dep.job_id}:deploy`);
    expect(req.body).toMatchObject({
      type: 'deployment.deploy',
      job_id: dep.job_id,
      callback_url: `${stack.baseUrl}/api/jobs/${dep.job_id}/callback`,
      service: { id: service.id, name: service.name, team: null },
      environment: { id: env.id, name: 'dev', tier: 'dev', config: {} },
      deployment: { id: dep.id, version: '1.2.3', kind: 'deploy', requested_by: 'root-admin' },
      attempt: 1,
    });
    const secret = target.signing_secret;
    const progress = await callBack(req.body.callback_url, secret, {
      status: 'in_progress',
      detail: 'pods rolling',
    });
    expect(progress.status).toBe(202);
    await eventually(async () => {
      const d = (await stack.http.get(`/api/deployments/${dep.id}`).set(auth(admin))).body;
      return d.timeline.some((t: { detail?: string }) => t.detail?.includes('pods rolling'));
    });
    const done = {
      status: 'succeeded',
      detail: 'all pods ready',
      external_url: 'https://argo.example.com/app/1',
    };
    const first = await callBack(req.body.callback_url, secret, done, { webhookId: 'cb-done-1' });
    expect(first.status).toBe(202);
    const finished = await waitForStatus(stack, dep.id, 'succeeded');
    expect(finished.external_url).toBe('https://argo.example.com/app/1');
    expect(finished.timeline.map((t: { status: string }) => t.status)).toEqual([
      'pending',
      'in_progress',
      'in_progress',
      'succeeded',
    ]);
    // The same callback again: 202, nothing changes.
    const again = await callBack(req.body.callback_url, secret, done, { webhookId: 'cb-done-1' });
    expect(again.status).toBe(202);
    expect(again.body.duplicate).toBe(true);
    const entries = await audits(dep.id);
    expect(entries.filter((e) => e.action === 'deployment.succeeded')).toHaveLength(1);
    expect(entries.find((e) => e.action === 'deployment.succeeded')?.actor).toBe(`target:${target.name}`);
    expect(await stack.orm.em.fork().count(CallbackReceipt, { jobId: dep.job_id })).toBe(2);
    const metrics = (await stack.http.get('/api/metrics')).text;
    expect(metrics).toMatch(/idp_target_dispatches_total\{kind="webhook",outcome="accepted"\} [1-9]/);
    expect(metrics).toMatch(/idp_target_callback_latency_seconds_count\{kind="webhook"\} [1-9]/);
    expect(metrics).toMatch(/idp_target_callbacks_total\{answer="duplicate"\} [1-9]/);
    const job = await stack.temporal.workflow.getHandle(dep.job_id).describe();
    expect(job.searchAttributes['IdpTarget']).toEqual([target.name]);
    expect(await job.memo?.['external_url']).toBe('https://argo.example.com/app/1');
  });

  it('accepts a callback that arrives before the target has answered the dispatch', async () => {
    const { receiver, target, service, env } = await hookedEnv();
    receiver.answer = async (req) => {
      if (req.body['type'] === 'deployment.deploy') {
        const cb = await callBack(req.body['callback_url'], target.signing_secret, { status: 'succeeded' });
        expect(cb.status).toBe(202);
      }
      return { status: 202 };
    };
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '2.0.0' });
    await waitForStatus(stack, dep.id, 'succeeded');
  });

  it('completes at once on a synchronous {"status":"failed"} answer, with its detail', async () => {
    const { receiver, service, env } = await hookedEnv();
    receiver.answer = () => ({ status: 200, body: { status: 'failed', detail: 'quota exceeded' } });
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '2.0.1' });
    const failed = await waitForStatus(stack, dep.id, 'failed');
    expect(failed.error).toContain('quota exceeded');
  });

  it('retries 500s with the same webhook-id: 500 three times, then 200 → one deployment, four requests', async () => {
    const { receiver, service, env } = await hookedEnv();
    let deploys = 0;
    receiver.answer = (req) => {
      if (req.body['type'] !== 'deployment.deploy') return { status: 202 };
      deploys += 1;
      return deploys <= 3 ? { status: 500 } : { status: 200, body: { status: 'succeeded' } };
    };
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '3.0.0' });
    await waitForStatus(stack, dep.id, 'succeeded', 60_000);
    const sent = receiver.received.filter((r) => r.body['type'] === 'deployment.deploy');
    expect(sent).toHaveLength(4);
    expect(new Set(sent.map((r) => r.headers['webhook-id']))).toEqual(new Set([`${dep.job_id}:deploy`]));
    expect(sent.map((r) => r.body['attempt'])).toEqual([1, 2, 3, 4]);
    expect(sent.every((r) => r.verified)).toBe(true);
    expect(await stack.orm.em.fork().count(Deployment, { environmentId: env.id })).toBe(1);
  });

  it('fails at once on a 400 from the target, naming the status', async () => {
    const { receiver, target, service, env } = await hookedEnv();
    receiver.answer = () => ({ status: 400, body: { error: 'bad version' } });
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '3.1.0' });
    const failed = await waitForStatus(stack, dep.id, 'failed');
    expect(failed.error).toContain(`target '${target.name}' answered 400`);
    expect(receiver.received.filter((r) => r.body['type'] === 'deployment.deploy')).toHaveLength(1);
  });

  it('retries an unreachable target, then fails naming the connection error', async () => {
    const { receiver, target, service, env } = await hookedEnv();
    await receiver.close();
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '3.2.0' });
    const failed = await waitForStatus(stack, dep.id, 'failed', 90_000);
    expect(failed.error).toContain(`target '${target.name}' could not be reached`);
    expect(failed.error).toContain('ECONNREFUSED');
  });

  it('fails a job whose target reports no completion within its timeout, in the contract words', async () => {
    const { target, service, env } = await hookedEnv({ timeout: '2s' });
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '3.3.0' });
    const failed = await waitForStatus(stack, dep.id, 'failed', 30_000);
    expect(failed.error).toBe(`target '${target.name}' reported no completion within 2s`);
    // Too late now: the job no longer waits.
    const late = await callBack(`${stack.baseUrl}/api/jobs/${dep.job_id}/callback`, target.signing_secret, {
      status: 'succeeded',
    });
    expect(late.status).toBe(409);
  });

  it('sends deployment.cancel (signed, its own webhook-id) before the deployment ends cancelled', async () => {
    const { receiver, service, env } = await hookedEnv();
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '4.0.0' });
    await receiver.waitFor('deployment.deploy');
    const cancel = await stack.http.post(`/api/deployments/${dep.id}/cancel`).set(auth(admin)).send({});
    expect(cancel.status).toBe(202);
    const notice = await receiver.waitFor('deployment.cancel');
    expect(notice.verified).toBe(true);
    expect(notice.headers['webhook-id']).toBe(`${dep.job_id}:cancel`);
    expect(notice.body).toMatchObject({
      type: 'deployment.cancel',
      job_id: dep.job_id,
      deployment: { id: dep.id },
    });
    const ended = await waitForStatus(stack, dep.id, 'cancelled');
    expect(Date.parse(ended.finished_at)).toBeGreaterThanOrEqual(notice.at - 1000);
  });
});

describe('the callback route', () => {
  it('answers 401/401/401/401/404/409 to bad callbacks, and changes nothing', async () => {
    const { receiver, target, service, env } = await hookedEnv();
    const other = await createTarget(stack, 'webhook', { url: 'https://other.example.com' });
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '5.0.0' });
    const req = await receiver.waitFor('deployment.deploy');
    const url: string = req.body.callback_url;
    const ok = { status: 'succeeded' };
    const snapshot = async () => {
      const d = await stack.orm.em.fork().findOneOrFail(Deployment, dep.id);
      return { status: d.status, timeline: d.timeline.length, audits: (await audits(dep.id)).length };
    };
    const before = await snapshot();
    expect((await callBack(url, target.signing_secret, ok, { unsigned: true })).status).toBe(401);
    expect(
      (
        await callBack(url, target.signing_secret, ok, {
          signature: 'v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=',
        })
      ).status,
    ).toBe(401);
    expect((await callBack(url, other.signing_secret, ok)).status).toBe(401);
    const stale = await callBack(url, target.signing_secret, ok, {
      timestamp: Math.floor(Date.now() / 1000) - 600,
    });
    expect(stale.status).toBe(401);
    expect(stale.body.detail).toContain('5 minutes');
    expect(
      (await callBack(`${stack.baseUrl}/api/jobs/deploy-nope-dev-999999/callback`, target.signing_secret, ok))
        .status,
    ).toBe(404);
    expect(await snapshot()).toEqual(before);
    // A bad body from the right signer is 400 and changes nothing either.
    expect((await callBack(url, target.signing_secret, { status: 'done' })).status).toBe(400);
    expect(await snapshot()).toEqual(before);
    expect((await callBack(url, target.signing_secret, ok)).status).toBe(202);
    await waitForStatus(stack, dep.id, 'succeeded');
    const finished = await callBack(url, target.signing_secret, { status: 'failed' });
    expect(finished.status).toBe(409);
    expect((await stack.orm.em.fork().findOneOrFail(Deployment, dep.id)).status).toBe('succeeded');
  });

  it('takes a callback captured from one job and replayed to another job of the same target as a duplicate', async () => {
    const { receiver, target, service, env } = await hookedEnv();
    const other = await provisionOn(stack, service.id, target.name, 'dev', { name: 'other' });
    await waitForEnvironment(stack, service.id, other.id);
    const a = await triggerDeployment(stack, service.id, env.id, { version: '7.0.0' });
    const b = await triggerDeployment(stack, service.id, other.id, { version: '7.0.0' });
    await receiver.waitFor('deployment.deploy', 2);
    const captured = { webhookId: 'cb-captured', timestamp: Math.floor(Date.now() / 1000) };
    const body = { status: 'succeeded' };
    expect(
      (
        await callBack(
          `${stack.baseUrl}/api/jobs/${a.job_id}/callback`,
          target.signing_secret,
          body,
          captured,
        )
      ).status,
    ).toBe(202);
    await waitForStatus(stack, a.id, 'succeeded');
    // The same signed request, sent to the other job: a duplicate, and b is still waiting.
    const replayed = await callBack(
      `${stack.baseUrl}/api/jobs/${b.job_id}/callback`,
      target.signing_secret,
      body,
      captured,
    );
    expect(replayed.status).toBe(202);
    expect(replayed.body.duplicate).toBe(true);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await stack.orm.em.fork().findOneOrFail(Deployment, b.id)).status).toBe('in_progress');
  });

  it('after a rotation: new requests are signed with the new secret, callbacks verify with either for the hour', async () => {
    const { receiver, target, service, env } = await hookedEnv();
    const rotated = await stack.http.post(`/api/targets/${target.name}/rotate-secret`).set(auth(admin));
    expect(rotated.status).toBe(200);
    const fresh: string = rotated.body.signing_secret;
    expect(fresh).toMatch(/^whsec_/);
    expect(fresh).not.toBe(target.signing_secret);
    receiver.secret = fresh;
    const dep = await triggerDeployment(stack, service.id, env.id, { version: '6.0.0' });
    const req = await receiver.waitFor('deployment.deploy');
    expect(req.verified).toBe(true);
    // Still signed by the old secret (a receiver not yet updated): accepted within the hour.
    const old = await callBack(req.body.callback_url, target.signing_secret, { status: 'in_progress' });
    expect(old.status).toBe(202);
    const viaNew = await callBack(req.body.callback_url, fresh, { status: 'succeeded' });
    expect(viaNew.status).toBe(202);
    await waitForStatus(stack, dep.id, 'succeeded');
    const entries = await stack.orm.em
      .fork()
      .find(AuditLog, { action: 'target.rotate_secret', targetId: target.name });
    expect(entries).toHaveLength(1);
    expect(JSON.stringify(entries[0]!.details)).not.toContain(fresh.slice(6, 20));
  });
});
