/**
 * Releases as one durable run (a parent `releaseVersion` with each stage's deployments as child
 * `deployVersion` runs) and soak gates, against the real Temporal dev server and PostgreSQL.
 */
import { AuditLog, Deployment, Release } from '../../src/domain/entities';
import {
  admin,
  auth,
  createTeam,
  deploySucceeded,
  serviceWithEnvironments,
  waitForStatus,
  type ServiceFixture,
} from '../support/fixtures';
import { eventually, startStack, tokenFor, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: true });
});
afterAll(async () => {
  await stack.close();
});

const approver = tokenFor('approver-ann', ['PLATFORM_ADMIN']);
const releaseUrl = (serviceId: number) => `/api/services/${serviceId}/releases`;

/** Sets a policy for the duration of `fn`, then puts the one it found back. */
async function withPolicy<T>(name: string, kind: string, config: unknown, fn: () => Promise<T>): Promise<T> {
  const before = (await stack.http.get('/api/policies?limit=200').set(auth(admin))).body.items.find(
    (p: { name: string }) => p.name === name,
  );
  const put = await stack.http
    .put(`/api/policies/${name}`)
    .set(auth(admin))
    .send({ kind, enabled: true, config });
  expect(put.status).toBe(200);
  try {
    return await fn();
  } finally {
    await stack.http
      .put(`/api/policies/${name}`)
      .set(auth(admin))
      .send({ kind: before.kind, enabled: before.enabled, config: before.config });
  }
}

/** Waits until release `id` has `status` (or one of them). */
async function releaseUntil(id: number, status: string | string[], timeoutMs = 60_000) {
  const wanted = typeof status === 'string' ? [status] : status;
  let last: unknown;
  return eventually(
    async () => {
      const res = await stack.http.get(`/api/releases/${id}`).set(auth(admin));
      last = res.body;
      return wanted.includes(res.body.status) ? res.body : undefined;
    },
    timeoutMs,
    () => `release ${id} ${wanted.join('|')} (last: ${JSON.stringify(last)?.slice(0, 600)})`,
  );
}

/** Waits until the release's prod deployment waits for approval; answers its id. */
async function prodWaiting(releaseId: number): Promise<number> {
  return eventually(
    async () => {
      const r = (await stack.http.get(`/api/releases/${releaseId}`).set(auth(admin))).body;
      const prod = r.stages.find((s: { tier: string }) => s.tier === 'prod');
      const d = prod?.deployments[0];
      return d?.status === 'awaiting_approval' ? (d.deployment_id as number) : undefined;
    },
    60_000,
    `release ${releaseId} waiting for a prod approval`,
  );
}

const deploymentsOf = (releaseId: number) =>
  stack.orm.em.fork().find(Deployment, { releaseId }, { orderBy: { id: 'asc' } });

describe('a release', () => {
  let f: ServiceFixture;
  beforeAll(async () => {
    f = await serviceWithEnvironments(stack);
  });

  it('takes a version from nothing to prod after one approval, as a parent run with a child per deployment', async () => {
    const res = await stack.http.post(releaseUrl(f.service.id)).set(auth(admin)).send({ version: '1.0.0' });
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      job_id: `release-${f.service.name}-${res.body.id}`,
      status: 'pending',
      through: 'prod',
      version: '1.0.0',
      requested_by: 'root-admin',
    });
    expect(res.body.stages.map((s: { tier: string }) => s.tier)).toEqual(['dev', 'staging', 'prod']);
    const prodId = await prodWaiting(res.body.id);
    const approve = await stack.http
      .post(`/api/deployments/${prodId}/approvals`)
      .set(auth(approver))
      .send({ decision: 'approve' });
    expect(approve.status).toBe(202);
    const done = await releaseUntil(res.body.id, 'succeeded');
    expect(done.finished_at).toEqual(expect.any(String));
    for (const stage of done.stages) {
      expect(stage.status).toBe('succeeded');
      expect(stage.deployments).toHaveLength(1);
      expect(stage.deployments[0].status).toBe('succeeded');
    }
    const rows = await deploymentsOf(res.body.id);
    expect(rows.map((d) => [d.tier, d.status, d.releaseId])).toEqual([
      ['dev', 'succeeded', res.body.id],
      ['staging', 'succeeded', res.body.id],
      ['prod', 'succeeded', res.body.id],
    ]);
    // The Web UI shows the release with its children.
    for (const d of rows) {
      const child = await stack.temporal.workflow.getHandle(d.jobId).describe();
      expect(child.raw.workflowExecutionInfo?.parentExecution?.workflowId).toBe(res.body.job_id);
    }
    // The row's end commits in the run's last step, a moment before the run sets IdpStatus and closes.
    await stack.temporal.workflow.getHandle(res.body.job_id).result();
    const parent = await stack.temporal.workflow.getHandle(res.body.job_id).describe();
    expect(parent.searchAttributes['IdpKind']).toEqual(['release']);
    expect(parent.searchAttributes['IdpStatus']).toEqual(['succeeded']);
    const entries = await stack.orm.em
      .fork()
      .find(AuditLog, { targetType: 'release', targetId: String(res.body.id) }, { orderBy: { id: 'asc' } });
    expect(entries.map((e) => e.action)).toEqual([
      'release.create',
      'release.in_progress',
      'release.succeeded',
    ]);
    const job = await stack.http.get(`/api/jobs/${res.body.job_id}`).set(auth(admin));
    expect(job.body).toMatchObject({ kind: 'release', resource: { type: 'release', id: res.body.id } });
    const list = await stack.http.get(releaseUrl(f.service.id)).set(auth(admin));
    expect(list.body.items[0].id).toBe(res.body.id);
  });

  it('fails when prod is rejected, naming the rejection', async () => {
    const res = await stack.http.post(releaseUrl(f.service.id)).set(auth(admin)).send({ version: '1.1.0' });
    const prodId = await prodWaiting(res.body.id);
    await stack.http
      .post(`/api/deployments/${prodId}/approvals`)
      .set(auth(approver))
      .send({ decision: 'reject', comment: 'not during the demo' });
    const failed = await releaseUntil(res.body.id, 'failed');
    expect(failed.error).toContain(
      `deployment ${prodId} to 'prod' rejected: rejected by approver-ann: not during the demo`,
    );
    expect(failed.stages.map((s: { status: string }) => s.status)).toEqual([
      'succeeded',
      'succeeded',
      'failed',
    ]);
  });

  it('fails when staging fails, and never starts prod', async () => {
    const g = await serviceWithEnvironments(stack);
    await stack.http
      .patch(`/api/services/${g.service.id}/environments/${g.envs.staging.id}`)
      .set(auth(admin))
      .send({ config: { simulate: { fail: true } } });
    const res = await stack.http.post(releaseUrl(g.service.id)).set(auth(admin)).send({ version: '2.0.0' });
    const failed = await releaseUntil(res.body.id, 'failed');
    expect(failed.error).toContain("stage 'staging'");
    expect(failed.error).toContain('simulated deployment failure');
    expect(failed.stages.map((s: { status: string }) => s.status)).toEqual([
      'succeeded',
      'failed',
      'pending',
    ]);
    expect((await deploymentsOf(res.body.id)).map((d) => d.tier)).toEqual(['dev', 'staging']);
  });

  it('is cancelled during a soak: cancelled, no later stage', async () => {
    await withPolicy(
      'promotion_gates',
      'promotion_gates',
      { gates: [{ tier: 'dev', soak: '1h' }] },
      async () => {
        const g = await serviceWithEnvironments(stack);
        const res = await stack.http
          .post(releaseUrl(g.service.id))
          .set(auth(admin))
          .send({ version: '3.0.0' });
        const soaking = await eventually(
          async () => {
            const r = (await stack.http.get(`/api/releases/${res.body.id}`).set(auth(admin))).body;
            return r.stages[1].status === 'soaking' ? r : undefined;
          },
          30_000,
          'the soak before staging',
        );
        const soakUntil = Date.parse(soaking.stages[1].soak_until);
        expect(soakUntil - Date.now()).toBeGreaterThan(3_500_000);
        const cancel = await stack.http.post(`/api/releases/${res.body.id}/cancel`).set(auth(admin));
        expect(cancel.status).toBe(202);
        const ended = await releaseUntil(res.body.id, 'cancelled');
        expect(ended.stages.map((s: { status: string }) => s.status)).toEqual([
          'succeeded',
          'cancelled',
          'cancelled',
        ]);
        expect((await deploymentsOf(res.body.id)).map((d) => d.tier)).toEqual(['dev']);
        const again = await stack.http.post(`/api/releases/${res.body.id}/cancel`).set(auth(admin));
        expect(again.status).toBe(409);
      },
    );
  });

  it('waits a short soak out, durably, then goes on', async () => {
    await withPolicy(
      'promotion_gates',
      'promotion_gates',
      { gates: [{ tier: 'dev', soak: '3s' }] },
      async () => {
        const g = await serviceWithEnvironments(stack);
        const res = await stack.http
          .post(releaseUrl(g.service.id))
          .set(auth(admin))
          .send({ version: '3.1.0', through: 'staging' });
        expect(res.body.through).toBe('staging');
        const done = await releaseUntil(res.body.id, 'succeeded');
        const [dev, staging] = await deploymentsOf(res.body.id);
        expect(staging!.createdAt.getTime() - dev!.finishedAt!.getTime()).toBeGreaterThanOrEqual(2_900);
        expect(Date.parse(done.stages[1].soak_until)).toBeGreaterThanOrEqual(
          dev!.finishedAt!.getTime() + 2_900,
        );
      },
    );
  });

  it('runs two releases of one service at once: both complete, each environment deployed once per release', async () => {
    const g = await serviceWithEnvironments(stack);
    // Rollouts long enough that the second release finds each environment held by the first.
    for (const env of [g.envs.dev, g.envs.staging])
      await stack.http
        .patch(`/api/services/${g.service.id}/environments/${env.id}`)
        .set(auth(admin))
        .send({ config: { simulate: { delay_ms: 1500 } } });
    const [a, b] = await Promise.all(
      ['4.0.0', '4.1.0'].map((version) =>
        stack.http.post(releaseUrl(g.service.id)).set(auth(admin)).send({ version, through: 'staging' }),
      ),
    );
    expect([a!.status, b!.status]).toEqual([202, 202]);
    const [ra, rb] = await Promise.all([
      releaseUntil(a!.body.id, 'succeeded', 90_000),
      releaseUntil(b!.body.id, 'succeeded', 90_000),
    ]);
    for (const r of [ra, rb]) {
      const rows = await deploymentsOf(r.id);
      expect(rows.map((d) => [d.tier, d.status])).toEqual([
        ['dev', 'succeeded'],
        ['staging', 'succeeded'],
      ]);
    }
    // They took turns: in each environment, one release's deployment began after the other's ended.
    const all = await stack.orm.em
      .fork()
      .find(Deployment, { releaseId: { $in: [ra.id, rb.id] } }, { orderBy: { id: 'asc' } });
    for (const tier of ['dev', 'staging']) {
      const [first, second] = all
        .filter((d) => d.tier === tier)
        .sort((x, y) => x.createdAt.getTime() - y.createdAt.getTime());
      expect(second!.createdAt.getTime()).toBeGreaterThanOrEqual(first!.finishedAt!.getTime());
    }
    // No lock error reached anyone: no deployment of either release failed.
    const failed = await stack.orm.em
      .fork()
      .count(Deployment, { releaseId: { $in: [ra.id, rb.id] }, status: 'failed' });
    expect(failed).toBe(0);
  });

  it('answers the same release for the same Idempotency-Key (200), 409 for another body under it', async () => {
    const g = await serviceWithEnvironments(stack, { ready: false });
    const send = (version: string) =>
      stack.http
        .post(releaseUrl(g.service.id))
        .set(auth(admin))
        .set('Idempotency-Key', 'rel-once')
        .send({ version, through: 'dev' });
    const first = await send('5.0.0');
    const again = await send('5.0.0');
    expect([first.status, again.status]).toEqual([202, 200]);
    expect(again.body.id).toBe(first.body.id);
    expect((await send('5.0.1')).status).toBe(409);
    expect(await stack.orm.em.fork().count(Release, { serviceId: g.service.id })).toBe(1);
  });
});

describe('bad releases', () => {
  it.each([
    [
      'a restricted config key',
      { version: '1.0.0', config: { db: { password: 'x' } } },
      400,
      'config.db.password',
    ],
    ['a through naming no tier', { version: '1.0.0', through: 'qa' }, 400, 'body.through'],
  ])('refuses %s, starts nothing, audits the refusal', async (_what, body, status, field) => {
    const f = await serviceWithEnvironments(stack, { ready: false });
    const res = await stack.http.post(releaseUrl(f.service.id)).set(auth(admin)).send(body);
    expect(res.status).toBe(status);
    expect(res.body.violations.map((v: { field: string }) => v.field)).toContain(field);
    expect(await stack.orm.em.fork().count(Release, { serviceId: f.service.id })).toBe(0);
    const refused = await stack.orm.em
      .fork()
      .count(AuditLog, { action: 'release.create', targetId: String(f.service.id), outcome: 'violation' });
    expect(refused).toBe(1);
  });

  it('refuses a service with no environment of a stage tier (400 naming it)', async () => {
    const team = await createTeam(stack);
    const svc = await stack.http
      .post('/api/services')
      .set(auth(admin))
      .send({
        name: `${team.name}-svc`,
        team: team.name,
        tags: { owner: 'x', data_sensitivity: 'internal' },
      });
    await stack.http
      .post(`/api/services/${svc.body.id}/environments`)
      .set(auth(admin))
      .send({ name: 'dev', tier: 'dev' });
    const res = await stack.http.post(releaseUrl(svc.body.id)).set(auth(admin)).send({ version: '1.0.0' });
    expect(res.status).toBe(400);
    expect(res.body.violations.map((v: { field: string }) => v.field)).toEqual([
      'stages.staging',
      'stages.prod',
    ]);
    expect(await stack.orm.em.fork().count(Release, { serviceId: svc.body.id })).toBe(0);
  });

  it('refuses a DEVELOPER of another team (403, audited), starting nothing', async () => {
    const team = await createTeam(stack);
    const f = await serviceWithEnvironments(stack, { team: team.name, ready: false });
    const dev = tokenFor('dev-dan', ['DEVELOPER'], ['some-other-team']);
    const res = await stack.http.post(releaseUrl(f.service.id)).set(auth(dev)).send({ version: '1.0.0' });
    expect(res.status).toBe(403);
    expect(await stack.orm.em.fork().count(Release, { serviceId: f.service.id })).toBe(0);
    expect(
      await stack.orm.em
        .fork()
        .count(AuditLog, { action: 'release.create', actor: 'dev-dan', outcome: 'denied' }),
    ).toBe(1);
  });
});

describe('soak gates for manual triggers', () => {
  it('refuse a promotion until the version soaked in the tier before, saying when (ISO-8601 UTC)', async () => {
    await withPolicy(
      'promotion_gates',
      'promotion_gates',
      { gates: [{ tier: 'staging', soak: '4s' }] },
      async () => {
        const f = await serviceWithEnvironments(stack);
        await deploySucceeded(stack, f.service.id, f.envs.dev.id, '6.0.0');
        const staging = await deploySucceeded(stack, f.service.id, f.envs.staging.id, '6.0.0');
        const url = `/api/services/${f.service.id}/environments/${f.envs.prod.id}/deployments`;
        const early = await stack.http.post(url).set(auth(admin)).send({ version: '6.0.0' });
        expect(early.status).toBe(400);
        const v = early.body.violations[0];
        expect(v.rule).toBe('promotion_order');
        const ready = new Date(Date.parse(staging.finished_at) + 4000).toISOString();
        expect(v.message).toContain(`from ${ready}`);
        await eventually(async () => Date.now() > Date.parse(ready) + 200, 10_000, 'the soak to pass');
        const late = await stack.http.post(url).set(auth(admin)).send({ version: '6.0.0' });
        expect(late.status).toBe(202);
        await waitForStatus(stack, late.body.id, 'awaiting_approval');
      },
    );
  });
});
