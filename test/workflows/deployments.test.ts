import { Approval, AuditLog, Deployment } from '../../src/domain/entities';
import { WORKFLOW_TYPES } from '../../src/workflows/contract';
import {
  admin,
  auth,
  createService,
  createTeam,
  deploySucceeded,
  readyEnvironment,
  waitForStatus,
} from '../support/fixtures';
import { eventually, startStack, tokenFor, uniq, type TestStack } from '../support/stack';

let stack: TestStack;
beforeAll(async () => {
  stack = await startStack({ worker: true });
});
afterAll(async () => {
  await stack.close();
});

const deployUrl = (s: number, e: number) => `/api/services/${s}/environments/${e}/deployments`;

/** A service of its own team with ready dev, staging and prod environments. */
async function pipeline() {
  const team = await createTeam(stack);
  const service = await createService(stack, team.name);
  const [dev, staging, prod] = await Promise.all([
    readyEnvironment(stack, service.id, 'dev'),
    readyEnvironment(stack, service.id, 'staging'),
    readyEnvironment(stack, service.id, 'prod'),
  ]);
  return { team, service, dev: dev!, staging: staging!, prod: prod! };
}

/** Walks `version` through dev and staging, then triggers prod; returns the prod deployment (awaiting approval). */
async function toProd(p: Awaited<ReturnType<typeof pipeline>>, version: string, requester = admin) {
  await deploySucceeded(stack, p.service.id, p.dev.id, version);
  await deploySucceeded(stack, p.service.id, p.staging.id, version);
  const res = await stack.http
    .post(deployUrl(p.service.id, p.prod.id))
    .set(auth(requester))
    .send({ version });
  expect(res.status).toBe(202);
  return waitForStatus(stack, res.body.id, 'awaiting_approval');
}

/** The job view once its run has closed: a row's end state commits in the run's last step, a moment before Temporal closes the run. */
const closedJob = (jobId: string) =>
  eventually(
    async () => {
      const res = await stack.http.get(`/api/jobs/${jobId}`).set(auth(admin));
      return res.body.status === 'running' ? undefined : res;
    },
    10_000,
    `job ${jobId} closed`,
  );

describe('seed examples 2 and 3', () => {
  it('provisions an environment (ready) and deploys to dev (succeeded), with a job view joined with Temporal', async () => {
    const service = await createService(stack);
    const env = await stack.http
      .post(`/api/services/${service.id}/environments`)
      .set(auth(admin))
      .send('{"name":"dev","tier":"dev"}');
    expect(env.status).toBe(202);
    expect(env.body).toMatchObject({
      status: 'provisioning',
      job_id: `provision-${service.name}-dev-${env.body.id}`,
    });
    await eventually(
      async () =>
        (await stack.http.get(`/api/services/${service.id}/environments/${env.body.id}`).set(auth(admin)))
          .body.status === 'ready',
    );
    const job = await closedJob(env.body.job_id);
    expect(job.body).toMatchObject({
      kind: 'provisioning',
      status: 'completed',
      resource: { type: 'environment', id: env.body.id },
    });

    const dep = await stack.http
      .post(deployUrl(service.id, env.body.id))
      .set(auth(admin))
      .send('{"version":"1.0.0","initiated_by":"deploy-bot"}');
    expect(dep.status).toBe(202);
    expect(dep.body).toMatchObject({
      status: 'pending',
      version: '1.0.0',
      initiated_by: 'deploy-bot',
      requested_by: 'root-admin',
      job_id: `deploy-${service.name}-dev-${dep.body.id}`,
    });
    expect(dep.body.temporal_ui_url).toContain(`/workflows/${dep.body.job_id}`);
    const done = await waitForStatus(stack, dep.body.id, 'succeeded');
    expect(done.timeline.map((t: { status: string }) => t.status)).toEqual([
      'pending',
      'in_progress',
      'succeeded',
    ]);
    const djob = await closedJob(dep.body.job_id);
    expect(djob.body).toMatchObject({ kind: 'deployment', status: 'completed', source: 'temporal' });
    expect(djob.body.closed_at).toEqual(expect.any(String));
    const history = await stack.http.get(deployUrl(service.id, env.body.id)).set(auth(admin));
    expect(history.body.items[0].id).toBe(dep.body.id);
    const audits = await stack.orm.em
      .fork()
      .find(
        AuditLog,
        { targetType: 'deployment', targetId: String(dep.body.id) },
        { orderBy: { id: 'asc' } },
      );
    expect(audits.map((a) => a.action)).toEqual([
      'deployment.create',
      'deployment.in_progress',
      'deployment.succeeded',
    ]);
    // The API's correlation id reached the activities through the interceptors.
    expect(new Set(audits.map((a) => a.correlationId))).toEqual(new Set([dep.headers['x-correlation-id']]));
    const desc = await stack.temporal.workflow.getHandle(dep.body.job_id).describe();
    expect(desc.searchAttributes['IdpStatus']).toEqual(['succeeded']);
    expect(desc.searchAttributes['IdpService']).toEqual([service.name]);
    expect(desc.memo).toMatchObject({ requested_by: 'root-admin' });
  });
});

describe('job ids', () => {
  it('never collide across services: svc-qa + eu and svc + qa-eu both provision, under distinct ids', async () => {
    const base = uniq('svcb');
    const a = await createService(stack, undefined, `${base}-qa`);
    const b = await createService(stack, undefined, base);
    const ea = await stack.http
      .post(`/api/services/${a.id}/environments`)
      .set(auth(admin))
      .send({ name: 'eu', tier: 'dev' });
    const eb = await stack.http
      .post(`/api/services/${b.id}/environments`)
      .set(auth(admin))
      .send({ name: 'qa-eu', tier: 'dev' });
    expect([ea.status, eb.status]).toEqual([202, 202]);
    expect(ea.body.job_id).toBe(`provision-${base}-qa-eu-${ea.body.id}`);
    expect(eb.body.job_id).toBe(`provision-${base}-qa-eu-${eb.body.id}`);
    expect(ea.body.job_id).not.toBe(eb.body.job_id);
    for (const [svc, env] of [
      [a, ea],
      [b, eb],
    ] as const) {
      await eventually(
        async () =>
          (await stack.http.get(`/api/services/${svc.id}/environments/${env.body.id}`).set(auth(admin))).body
            .status === 'ready',
      );
      // The job view, the workflow and the Web UI link name the same id.
      const job = await closedJob(env.body.job_id);
      expect(job.body).toMatchObject({
        job_id: env.body.job_id,
        resource: { type: 'environment', id: env.body.id },
      });
      expect(job.body.temporal_ui_url).toContain(`/workflows/${encodeURIComponent(env.body.job_id)}`);
      await expect(stack.temporal.workflow.getHandle(env.body.job_id).describe()).resolves.toMatchObject({
        workflowId: env.body.job_id,
      });
    }
  });
});

describe('promotion order', () => {
  it('refuses staging before dev and prod before staging with a hint naming the environment', async () => {
    const p = await pipeline();
    const staging = await stack.http
      .post(deployUrl(p.service.id, p.staging.id))
      .set(auth(admin))
      .send({ version: '2.0.0' });
    expect(staging.status).toBe(400);
    expect(staging.body.violations[0]).toMatchObject({ rule: 'promotion_order' });
    expect(staging.body.violations[0].hint).toContain("'dev'");
    await deploySucceeded(stack, p.service.id, p.dev.id, '2.0.0');
    const prod = await stack.http
      .post(deployUrl(p.service.id, p.prod.id))
      .set(auth(admin))
      .send({ version: '2.0.0' });
    expect(prod.status).toBe(400);
    expect(prod.body.violations[0].hint).toContain("'staging'");
    expect(await stack.orm.em.fork().count(Deployment, { environmentId: p.prod.id })).toBe(0);
    const ok = await stack.http
      .post(deployUrl(p.service.id, p.staging.id))
      .set(auth(admin))
      .send({ version: '2.0.0' });
    expect(ok.status).toBe(202);
  });

  it('refuses restricted keys in deployment config', async () => {
    const p = await pipeline();
    const res = await stack.http
      .post(deployUrl(p.service.id, p.dev.id))
      .set(auth(admin))
      .send({ version: '1', config: { nested: [{ ClientSecret: 'x' }] } });
    expect(res.status).toBe(400);
    expect(res.body.violations[0].field).toBe('config.nested[0].ClientSecret');
  });
});

describe('prod approvals', () => {
  it('waits for approval, refuses self-approval (403, workflow untouched) and succeeds after an eligible approval', async () => {
    const p = await pipeline();
    const requester = tokenFor('req-admin', ['TEAM_ADMIN'], [p.team.name]);
    const d = await toProd(p, '3.0.0', requester);
    expect(d.approvals_required).toBe(1);
    const self = await stack.http
      .post(`/api/deployments/${d.id}/approvals`)
      .set(auth(requester))
      .send({ decision: 'approve' });
    expect(self.status).toBe(403);
    const dev = await stack.http
      .post(`/api/deployments/${d.id}/approvals`)
      .set(auth(tokenFor('dev1', ['DEVELOPER'], [p.team.name])))
      .send({ decision: 'approve' });
    expect(dev.status).toBe(403);
    const otherTeam = await stack.http
      .post(`/api/deployments/${d.id}/approvals`)
      .set(auth(tokenFor('ta2', ['TEAM_ADMIN'], ['elsewhere'])))
      .send({ decision: 'approve' });
    expect(otherTeam.status).toBe(403);
    expect(await stack.orm.em.fork().count(Approval, { deploymentId: d.id })).toBe(0);
    const approve = await stack.http
      .post(`/api/deployments/${d.id}/approvals`)
      .set(auth(admin))
      .send({ decision: 'approve', comment: 'ship it' });
    expect(approve.status).toBe(202);
    expect(approve.body.status).toBe('in_progress');
    expect(approve.body.approvals).toEqual([
      expect.objectContaining({ approver: 'root-admin', decision: 'approve', comment: 'ship it' }),
    ]);
    const done = await waitForStatus(stack, d.id, 'succeeded');
    expect(done.timeline.map((t: { status: string }) => t.status)).toEqual([
      'pending',
      'awaiting_approval',
      'in_progress',
      'succeeded',
    ]);
    const again = await stack.http
      .post(`/api/deployments/${d.id}/approvals`)
      .set(auth(admin))
      .send({ decision: 'approve' });
    expect(again.status).toBe(409);
  });

  it('needs two distinct approvers when the policy requires 2; one rejection ends it', async () => {
    const put = await stack.http
      .put('/api/policies/prod_approvals')
      .set(auth(admin))
      .send({ kind: 'prod_approvals', enabled: true, config: { tier: 'prod', required: 2, timeout: '1h' } });
    expect(put.status).toBe(200);
    try {
      const p = await pipeline();
      const d = await toProd(p, '4.0.0');
      expect(d.approvals_required).toBe(2);
      const a1 = await stack.http
        .post(`/api/deployments/${d.id}/approvals`)
        .set(auth(tokenFor('alice', ['TEAM_ADMIN'], [p.team.name])))
        .send({ decision: 'approve' });
      expect(a1.status).toBe(202);
      expect(a1.body.status).toBe('awaiting_approval');
      const dup = await stack.http
        .post(`/api/deployments/${d.id}/approvals`)
        .set(auth(tokenFor('alice', ['TEAM_ADMIN'], [p.team.name])))
        .send({ decision: 'approve' });
      expect(dup.status).toBe(409);
      const a2 = await stack.http
        .post(`/api/deployments/${d.id}/approvals`)
        .set(auth(tokenFor('bob', ['PLATFORM_ADMIN'])))
        .send({ decision: 'approve' });
      expect(a2.body.status).toBe('in_progress');
      expect(a2.body.approvals.map((a: { approver: string }) => a.approver)).toEqual(['alice', 'bob']);
      await waitForStatus(stack, d.id, 'succeeded');

      const r = await toProd(p, '4.1.0');
      const reject = await stack.http
        .post(`/api/deployments/${r.id}/approvals`)
        .set(auth(tokenFor('carol', ['TEAM_ADMIN'], [p.team.name])))
        .send({ decision: 'reject', comment: 'not today' });
      expect(reject.status).toBe(202);
      expect(reject.body.status).toBe('rejected');
      const job = await eventually(async () => {
        const j = await stack.http.get(`/api/jobs/${r.job_id}`).set(auth(admin));
        return j.body.status === 'failed' ? j.body : undefined;
      });
      expect(job.error).toContain('not today');
      // The lock was released: a new deployment to prod is accepted.
      const next = await stack.http
        .post(deployUrl(p.service.id, p.prod.id))
        .set(auth(admin))
        .send({ version: '4.0.0' });
      expect(next.status).toBe(202);
    } finally {
      await stack.http
        .put('/api/policies/prod_approvals')
        .set(auth(admin))
        .send({
          kind: 'prod_approvals',
          enabled: true,
          config: { tier: 'prod', required: 1, timeout: '24h' },
        });
    }
  });

  it('expires when nobody decides within the policy timeout', async () => {
    await stack.http
      .put('/api/policies/prod_approvals')
      .set(auth(admin))
      .send({ kind: 'prod_approvals', enabled: true, config: { tier: 'prod', required: 1, timeout: '2s' } });
    try {
      const p = await pipeline();
      const d = await toProd(p, '5.0.0');
      const expired = await waitForStatus(stack, d.id, 'expired', 20_000);
      expect(expired.finished_at).toEqual(expect.any(String));
      const late = await stack.http
        .post(`/api/deployments/${d.id}/approvals`)
        .set(auth(tokenFor('late', ['PLATFORM_ADMIN'])))
        .send({ decision: 'approve' });
      expect(late.status).toBe(409);
      expect(
        await stack.orm.em.fork().count(AuditLog, { action: 'deployment.expired', targetId: String(d.id) }),
      ).toBe(1);
    } finally {
      await stack.http
        .put('/api/policies/prod_approvals')
        .set(auth(admin))
        .send({
          kind: 'prod_approvals',
          enabled: true,
          config: { tier: 'prod', required: 1, timeout: '24h' },
        });
    }
  });
});

describe('idempotency and the environment lock', () => {
  it('20 concurrent triggers with one Idempotency-Key make one deployment and one workflow', async () => {
    const p = await pipeline();
    const key = uniq('key');
    const results = await Promise.all(
      Array.from({ length: 20 }, () =>
        stack.http
          .post(deployUrl(p.service.id, p.dev.id))
          .set(auth(admin))
          .set('Idempotency-Key', key)
          .send({ version: '6.0.0' }),
      ),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    expect(statuses.filter((s) => s === 200)).toHaveLength(19);
    expect(new Set(results.map((r) => r.body.job_id)).size).toBe(1);
    expect(await stack.orm.em.fork().count(Deployment, { environmentId: p.dev.id })).toBe(1);
    const runs = [];
    for await (const w of stack.temporal.workflow.list({
      query: `WorkflowId = '${results[0]!.body.job_id}'`,
    }))
      runs.push(w);
    expect(runs).toHaveLength(1);
    await waitForStatus(stack, results[0]!.body.id, 'succeeded');
    const replay = await stack.http
      .post(deployUrl(p.service.id, p.dev.id))
      .set(auth(admin))
      .set('Idempotency-Key', key)
      .send({ version: '6.0.0' });
    expect(replay.status).toBe(200);
    expect(replay.body.status).toBe('succeeded');
    const other = await stack.http
      .post(deployUrl(p.service.id, p.dev.id))
      .set(auth(admin))
      .set('Idempotency-Key', key)
      .send({ version: '6.0.1' });
    expect(other.status).toBe(409);
  });

  it('lets one of several concurrent different triggers hold the lock; the rest get 409 naming it', async () => {
    const p = await pipeline();
    await stack.http
      .put('/api/policies/prod_approvals')
      .set(auth(admin))
      .send({ kind: 'prod_approvals', enabled: true, config: { tier: 'prod', required: 1, timeout: '24h' } });
    await deploySucceeded(stack, p.service.id, p.dev.id, '7.0.0');
    await deploySucceeded(stack, p.service.id, p.staging.id, '7.0.0');
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        stack.http.post(deployUrl(p.service.id, p.prod.id)).set(auth(admin)).send({ version: '7.0.0' }),
      ),
    );
    const winners = results.filter((r) => r.status === 202);
    expect(winners).toHaveLength(1);
    for (const r of results.filter((x) => x.status !== 202)) {
      expect(r.status).toBe(409);
      expect(r.body.active_job_id).toBe(winners[0]!.body.job_id);
    }
    // Cancel releases it.
    await waitForStatus(stack, winners[0]!.body.id, 'awaiting_approval');
    const cancel = await stack.http.post(`/api/deployments/${winners[0]!.body.id}/cancel`).set(auth(admin));
    expect(cancel.status).toBe(202);
    const cancelled = await waitForStatus(stack, winners[0]!.body.id, 'cancelled');
    expect(cancelled.timeline.at(-1).status).toBe('cancelled');
    const job = await eventually(async () => {
      const j = await stack.http.get(`/api/jobs/${winners[0]!.body.job_id}`).set(auth(admin));
      return j.body.status === 'cancelled' ? j.body : undefined;
    });
    expect(job.kind).toBe('deployment');
    expect(
      (await stack.http.post(`/api/deployments/${winners[0]!.body.id}/cancel`).set(auth(admin))).status,
    ).toBe(409);
    const next = await stack.http
      .post(deployUrl(p.service.id, p.prod.id))
      .set(auth(admin))
      .send({ version: '7.0.0' });
    expect(next.status).toBe(202);
  });

  it('answers 409 for an environment that is not ready', async () => {
    const service = await createService(stack);
    const env = await stack.http
      .post(`/api/services/${service.id}/environments`)
      .set(auth(admin))
      .send({ name: 'slow', tier: 'dev', config: { simulate: { delay_ms: 3000 } } });
    const res = await stack.http
      .post(deployUrl(service.id, env.body.id))
      .set(auth(admin))
      .send({ version: '1' });
    expect(res.status).toBe(409);
    expect(res.body.detail).toContain('not ready');
  });
});

describe('failures and cancellation', () => {
  it('records a driver failure as failed, and a failed provisioning as failed', async () => {
    const p = await pipeline();
    const res = await stack.http
      .post(deployUrl(p.service.id, p.dev.id))
      .set(auth(admin))
      .send({ version: '8.0.0', config: { simulate: { fail: true } } });
    const failed = await waitForStatus(stack, res.body.id, 'failed');
    expect(failed.error).toContain('simulated deployment failure');
    const env = await stack.http
      .post(`/api/services/${p.service.id}/environments`)
      .set(auth(admin))
      .send({ name: 'broken', tier: 'dev', config: { simulate: { fail: true } } });
    const envFailed = await eventually(async () => {
      const e = await stack.http
        .get(`/api/services/${p.service.id}/environments/${env.body.id}`)
        .set(auth(admin));
      return e.body.status === 'failed' ? e.body : undefined;
    });
    expect(envFailed.error).toContain('simulated provisioning failure');
  });

  it('fails a run whose deployment row does not exist at once instead of retrying its first step forever', async () => {
    const handle = await stack.temporal.workflow.start(WORKFLOW_TYPES.deploy, {
      taskQueue: stack.config.TEMPORAL_TASK_QUEUE,
      workflowId: uniq('deploy-missing-row'),
      args: [
        {
          deploymentId: 2_000_000_000,
          service: 'ghost',
          environment: 'dev',
          tier: 'dev',
          version: '1.0.0',
          team: null,
          requestedBy: 'root-admin',
        },
      ],
    });
    const failure = await handle.result().then(
      () => undefined,
      (err: { name: string; cause?: { type?: string; nonRetryable?: boolean } }) => err,
    );
    expect(failure?.name).toBe('WorkflowFailedError');
    // The activity's error, not retried: the run closed within its first attempt.
    expect(failure?.cause?.type).toBe('NotFoundError');
  });

  it('cancels a deployment in progress; a developer may cancel only their own', async () => {
    const p = await pipeline();
    const devToken = tokenFor('dora', ['DEVELOPER'], [p.team.name]);
    const res = await stack.http
      .post(deployUrl(p.service.id, p.dev.id))
      .set(auth(devToken))
      .send({ version: '9.0.0', config: { simulate: { delay_ms: 20_000 } } });
    expect(res.status).toBe(202);
    await waitForStatus(stack, res.body.id, 'in_progress');
    const stranger = await stack.http
      .post(`/api/deployments/${res.body.id}/cancel`)
      .set(auth(tokenFor('dan', ['DEVELOPER'], [p.team.name])));
    expect(stranger.status).toBe(403);
    const own = await stack.http
      .post(`/api/deployments/${res.body.id}/cancel`)
      .set(auth(devToken))
      .send({ reason: 'wrong build' });
    expect(own.status).toBe(202);
    await waitForStatus(stack, res.body.id, 'cancelled', 15_000);
    expect(
      await stack.orm.em
        .fork()
        .count(AuditLog, { action: 'deployment.cancelled', targetId: String(res.body.id) }),
    ).toBe(1);
  });

  it('audits a deployment cancelled before its run started like one its run cancelled', async () => {
    const p = await pipeline();
    const run = await stack.http
      .post(deployUrl(p.service.id, p.dev.id))
      .set(auth(admin))
      .send({ version: '9.1.0', config: { simulate: { delay_ms: 20_000 } } });
    await waitForStatus(stack, run.body.id, 'in_progress');
    expect((await stack.http.post(`/api/deployments/${run.body.id}/cancel`).set(auth(admin))).status).toBe(
      202,
    );
    await waitForStatus(stack, run.body.id, 'cancelled', 15_000);

    // A pending row whose run was never started (its start's answer was lost, say): the API ends it.
    const em = stack.orm.em.fork();
    const now = new Date();
    const orphan = em.create(Deployment, {
      id: 1_900_000_000 + Math.floor(Math.random() * 1000),
      jobId: uniq('deploy-orphan'),
      serviceId: p.service.id,
      environmentId: p.staging.id,
      tier: 'staging',
      version: '9.1.0',
      status: 'pending',
      requestedBy: 'root-admin',
      team: p.team.name,
      correlationId: 'orphan',
      timeline: [{ status: 'pending', at: now.toISOString(), actor: 'root-admin' }],
      createdAt: now,
      updatedAt: now,
    });
    await em.flush();
    expect((await stack.http.post(`/api/deployments/${orphan.id}/cancel`).set(auth(admin))).status).toBe(202);
    expect((await stack.http.get(`/api/deployments/${orphan.id}`).set(auth(admin))).body.status).toBe(
      'cancelled',
    );

    const entry = async (id: number, jobId: string) => {
      const rows = await stack.orm.em
        .fork()
        .find(AuditLog, { action: 'deployment.cancelled', targetId: String(id) });
      expect(rows).toHaveLength(1);
      const e = rows[0]!;
      expect(e).toMatchObject({
        outcome: 'success',
        targetType: 'deployment',
        team: p.team.name,
        dedupeKey: `${jobId}:status:cancelled`,
      });
      expect(e.details).toMatchObject({ to: 'cancelled', job_id: jobId, detail: expect.any(String) });
      return e;
    };
    const byRun = await entry(run.body.id, run.body.job_id);
    const byApi = await entry(orphan.id, orphan.jobId);
    expect(byRun.details['from']).toBe('in_progress');
    expect(byApi.details['from']).toBe('pending');
    expect(byApi.actor).toBe('root-admin');
  });
});
