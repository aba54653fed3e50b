/**
 * Event webhooks against real receivers (HTTP servers in this process that verify each signature),
 * delivered by the platform's own runs on the real Temporal dev server; approval reminders.
 */
import { AuditLog, PlatformEvent, WebhookDelivery, WebhookSubscription } from '../../src/domain/entities';
import {
  admin,
  auth,
  createTeam,
  deploySucceeded,
  promoteToProd,
  serviceWithEnvironments,
  triggerDeployment,
  waitForStatus,
} from '../support/fixtures';
import { startReceiver, type Receiver } from '../support/receiver';
import { eventually, startStack, tokenFor, type TestStack } from '../support/stack';

let stack: TestStack;
const receivers: Receiver[] = [];
beforeAll(async () => {
  stack = await startStack({ worker: true });
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
  await stack.close();
});

async function subscribe(token: string, body: Record<string, unknown>) {
  const receiver = await startReceiver();
  receivers.push(receiver);
  const res = await stack.http
    .post('/api/webhooks')
    .set(auth(token))
    .send({ url: receiver.url, ...body });
  expect(res.status).toBe(201);
  receiver.secret = res.body.signing_secret;
  receiver.answer = () => ({ status: 204 });
  return { receiver, subscription: res.body };
}

/** The events the receiver got, without repeats (webhook-id), in arrival order. */
const delivered = (r: Receiver) => {
  const seen = new Set<string>();
  return r.received.filter((x) => !seen.has(x.headers['webhook-id']!) && seen.add(x.headers['webhook-id']!));
};

describe('event webhooks', () => {
  it.each([
    ['a non-http(s) URL', { url: 'ftp://example.com/hook', events: ['*'] }, 400, 'body.url'],
    [
      'an unknown event type',
      { url: 'https://example.com/hook', events: ['deployment.exploded'] },
      400,
      'body.events.0',
    ],
  ])('refuse %s', async (_what, body, status, field) => {
    const before = await stack.orm.em.fork().count(WebhookSubscription, {});
    const res = await stack.http.post('/api/webhooks').set(auth(admin)).send(body);
    expect(res.status).toBe(status);
    expect(res.body.violations.map((v: { field: string }) => v.field)).toContain(field);
    expect(await stack.orm.em.fork().count(WebhookSubscription, {})).toBe(before);
  });

  it('refuse a TEAM_ADMIN a team they do not belong to (403, audited), and a DEVELOPER altogether', async () => {
    const team = await createTeam(stack);
    const res = await stack.http
      .post('/api/webhooks')
      .set(auth(tokenFor('ta-x', ['TEAM_ADMIN'], ['some-team'])))
      .send({ url: 'https://example.com/hook', events: ['*'], team: team.name });
    expect(res.status).toBe(403);
    expect(
      await stack.orm.em
        .fork()
        .count(AuditLog, { action: 'webhook.create', outcome: 'denied', actor: 'ta-x' }),
    ).toBe(1);
    const dev = await stack.http
      .post('/api/webhooks')
      .set(auth(tokenFor('dev-x', ['DEVELOPER'], [team.name])))
      .send({ url: 'https://example.com/hook', events: ['*'], team: team.name });
    expect(dev.status).toBe(403);
  });

  it("deliver signed events, each once with a stable webhook-id, and a TEAM_ADMIN's subscription only its team's", async () => {
    const [mine, other] = [await createTeam(stack), await createTeam(stack)];
    const teamAdmin = tokenFor('ta-mine', ['TEAM_ADMIN'], [mine.name]);
    const { receiver, subscription } = await subscribe(teamAdmin, {
      events: ['deployment.created', 'deployment.succeeded'],
    });
    expect(subscription).toMatchObject({
      team: mine.name,
      events: ['deployment.created', 'deployment.succeeded'],
    });
    expect(subscription.signing_secret).toMatch(/^whsec_/);
    const f = await serviceWithEnvironments(stack, { team: mine.name });
    const g = await serviceWithEnvironments(stack, { team: other.name });
    const d1 = await deploySucceeded(stack, f.service.id, f.envs.dev.id, '1.0.0');
    await deploySucceeded(stack, g.service.id, g.envs.dev.id, '1.0.0');
    await eventually(async () => delivered(receiver).length >= 2, 20_000, 'two deliveries');
    await new Promise((r) => setTimeout(r, 1000));
    const got = delivered(receiver);
    expect(got.map((x) => [x.body.type, x.body.data.id])).toEqual([
      ['deployment.created', d1.id],
      ['deployment.succeeded', d1.id],
    ]);
    for (const x of got) {
      expect(x.verified).toBe(true);
      expect(x.headers['webhook-id']).toBe(String(x.body.id));
      expect(x.body.data).toMatchObject({ id: d1.id, team: mine.name, service_id: f.service.id });
    }
    expect(got[1]!.body.data.status).toBe('succeeded');
    const list = await stack.http.get('/api/webhooks').set(auth(teamAdmin));
    expect(list.body.items.map((s: { id: number }) => s.id)).toContain(subscription.id);
    const seenByOther = await stack.http
      .get('/api/webhooks')
      .set(auth(tokenFor('ta-o', ['TEAM_ADMIN'], [other.name])));
    expect(seenByOther.body.items.map((s: { id: number }) => s.id)).not.toContain(subscription.id);
  });

  it('retry a receiver that answers 500, then 200: delivered, two attempts logged, the same webhook-id', async () => {
    const { receiver, subscription } = await subscribe(admin, { events: ['environment.ready'] });
    let calls = 0;
    receiver.answer = () => (++calls === 1 ? { status: 500 } : { status: 200 });
    const f = await serviceWithEnvironments(stack, { ready: false });
    await eventually(async () => receiver.received.length >= 2, 20_000, 'a retry');
    const first = receiver.received[0]!;
    const second = receiver.received[1]!;
    expect(second.headers['webhook-id']).toBe(first.headers['webhook-id']);
    expect(second.at - first.at).toBeGreaterThanOrEqual(900);
    const log = await eventually(async () => {
      const res = await stack.http.get(`/api/webhooks/${subscription.id}/deliveries`).set(auth(admin));
      return res.body.items.length >= 2 ? res.body.items : undefined;
    });
    const firstEvent = log.filter(
      (l: { event_id: number }) => String(l.event_id) === first.headers['webhook-id'],
    );
    expect(
      firstEvent.map((l: { attempt: number; status_code: number }) => [l.attempt, l.status_code]),
    ).toEqual([
      [2, 200],
      [1, 500],
    ]);
    expect(f.service.id).toBeGreaterThan(0);
  });

  it("deliver several resources' events at once, each resource's in order", async () => {
    const { receiver } = await subscribe(admin, { events: ['deployment.created', 'deployment.succeeded'] });
    let inFlight = 0;
    let most = 0;
    receiver.answer = async () => {
      most = Math.max(most, ++inFlight);
      await new Promise((r) => setTimeout(r, 300));
      inFlight -= 1;
      return { status: 204 };
    };
    const fixtures = await Promise.all([1, 2, 3, 4].map(() => serviceWithEnvironments(stack)));
    const deployed = await Promise.all(
      fixtures.map((f) => deploySucceeded(stack, f.service.id, f.envs.dev.id, '1.0.0')),
    );
    await eventually(async () => delivered(receiver).length >= 8, 30_000, 'eight deliveries');
    const got = delivered(receiver);
    for (const d of deployed) {
      expect(got.filter((x) => x.body.data.id === d.id).map((x) => x.body.type)).toEqual([
        'deployment.created',
        'deployment.succeeded',
      ]);
    }
    // One at a time, eight deliveries held 300 ms each could never overlap.
    expect(most).toBeGreaterThanOrEqual(2);
    expect(got.every((x) => x.verified)).toBe(true);
  });

  it('keep retrying a receiver that is down, without slowing deployments; a deleted subscription stops', async () => {
    const { receiver, subscription } = await subscribe(admin, { events: ['*'] });
    await receiver.close();
    const f = await serviceWithEnvironments(stack);
    const started = Date.now();
    for (const v of ['1.0.0', '1.0.1', '1.0.2']) await deploySucceeded(stack, f.service.id, f.envs.dev.id, v);
    const withDeadReceiver = Date.now() - started;
    const attempts = await eventually(
      async () => {
        const n = await stack.orm.em
          .fork()
          .count(WebhookDelivery, { subscriptionId: subscription.id, statusCode: null });
        return n >= 3 ? n : undefined;
      },
      20_000,
      'failed attempts logged',
    );
    expect(attempts).toBeGreaterThanOrEqual(3);
    const log = await stack.http.get(`/api/webhooks/${subscription.id}/deliveries`).set(auth(admin));
    expect(log.body.items[0].error).toMatch(/ECONNREFUSED/);
    // Deployments went on at their pace: three more with no subscriber at all take about as long.
    await stack.http.delete(`/api/webhooks/${subscription.id}`).set(auth(admin));
    const again = Date.now();
    for (const v of ['1.0.3', '1.0.4', '1.0.5']) await deploySucceeded(stack, f.service.id, f.envs.dev.id, v);
    const without = Date.now() - again;
    expect(withDeadReceiver).toBeLessThan(without * 2 + 2000);
    // Deleted: its run ended, no attempt follows.
    const handle = stack.temporal.workflow.getHandle(subscription.job_id);
    await eventually(
      async () => (await handle.describe()).status.name !== 'RUNNING',
      20_000,
      'the delivery run to end',
    );
    const n = await stack.orm.em.fork().count(WebhookDelivery, { subscriptionId: subscription.id });
    await new Promise((r) => setTimeout(r, 3000));
    expect(await stack.orm.em.fork().count(WebhookDelivery, { subscriptionId: subscription.id })).toBe(n);
    expect(
      (await stack.http.get(`/api/webhooks/${subscription.id}/deliveries`).set(auth(admin))).status,
    ).toBe(404);
  });
});

describe('the event outbox', () => {
  it('holds one event per announced change, with the resource as the API shows it, ids in commit order', async () => {
    const f = await serviceWithEnvironments(stack);
    const d = await triggerDeployment(stack, f.service.id, f.envs.dev.id, { version: '9.0.0' });
    const done = await waitForStatus(stack, d.id, 'succeeded');
    const events = await stack.orm.em
      .fork()
      .find(PlatformEvent, { resourceType: 'deployment', resourceId: d.id }, { orderBy: { id: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['deployment.created', 'deployment.succeeded']);
    expect(events[1]!.data).toEqual(JSON.parse(JSON.stringify(done)));
    const audits = await stack.orm.em.fork().count(AuditLog, {
      targetType: 'deployment',
      targetId: String(d.id),
      action: { $in: ['deployment.create', 'deployment.succeeded'] },
    });
    expect(audits).toBe(2);
  });
});

describe('approval reminders', () => {
  it('go out every remind_every while a prod deployment waits (at least two), none after the decision', async () => {
    const put = (config: Record<string, unknown>) =>
      stack.http
        .put('/api/policies/prod_approvals')
        .set(auth(admin))
        .send({ kind: 'prod_approvals', enabled: true, config });
    expect((await put({ tier: 'prod', required: 1, timeout: '24h', remind_every: '1s' })).status).toBe(200);
    try {
      const { receiver } = await subscribe(admin, { events: ['deployment.approval_reminder'] });
      const f = await serviceWithEnvironments(stack);
      const id = await promoteToProd(stack, f, '1.0.0');
      await eventually(async () => delivered(receiver).length >= 2, 20_000, 'two reminders');
      const approve = await stack.http
        .post(`/api/deployments/${id}/approvals`)
        .set(auth(tokenFor('appr', ['PLATFORM_ADMIN'])))
        .send({ decision: 'approve' });
      expect(approve.status).toBe(202);
      await waitForStatus(stack, id, 'succeeded');
      const count = await stack.orm.em
        .fork()
        .count(PlatformEvent, { type: 'deployment.approval_reminder', resourceId: id });
      await new Promise((r) => setTimeout(r, 2500));
      expect(
        await stack.orm.em
          .fork()
          .count(PlatformEvent, { type: 'deployment.approval_reminder', resourceId: id }),
      ).toBe(count);
      expect(count).toBeGreaterThanOrEqual(2);
      const reminders = delivered(receiver).filter((x) => x.body.data.id === id);
      expect(reminders.length).toBeGreaterThanOrEqual(2);
      expect(reminders.every((x) => x.body.data.status === 'awaiting_approval')).toBe(true);
    } finally {
      await put({ tier: 'prod', required: 1, timeout: '24h' });
    }
  });
});
